package todo

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/recq/recq/consumers/state"
)

// A change is what one event does to a list's view. The projector turns
// each event into one and hands it to the read model, which applies it
// with the batch (exactly once with either store).
type change struct {
	list    string
	version int64
	event   any
}

// readModel is where the projector keeps the views and the projection
// reads them: memoryModel (rebuilt at every start) or redisModel.
type readModel interface {
	// queue applies ch when the handler's batch commits (ctx is the
	// handler's).
	queue(ctx context.Context, ch change)
	list(ctx context.Context, id string) (ListView, bool, error)
	byOwner(ctx context.Context, owner string) ([]ListView, error)
	all(ctx context.Context) ([]ListView, error)
}

// apply folds a change into a view (the memory store's; the Redis store
// writes the same changes as commands).
func apply(v *ListView, ch change) {
	v.Version = ch.version
	switch e := ch.event.(type) {
	case ListCreated:
		v.ID, v.Title, v.Owner, v.Items = ch.list, e.Title, e.Owner, []ItemView{}
	case ListRenamed:
		v.Title = e.Title
	case ItemAdded:
		v.Items = append(v.Items, ItemView{ID: e.ItemID, Text: e.Text})
	case ItemChecked:
		setDone(v, e.ItemID, true)
	case ItemUnchecked:
		setDone(v, e.ItemID, false)
	case ItemRemoved:
		v.Items = slices.DeleteFunc(v.Items, func(it ItemView) bool { return it.ID == e.ItemID })
	case ListDeleted:
		v.Archived = true
	}
}

func setDone(v *ListView, item string, done bool) {
	for i := range v.Items {
		if v.Items[i].ID == item {
			v.Items[i].Done = done
		}
	}
}

// matches reports whether a list's title or one of its items contains
// text, case-insensitively.
func matches(v ListView, text string) bool {
	text = strings.ToLower(text)
	if strings.Contains(strings.ToLower(v.Title), text) {
		return true
	}
	return slices.ContainsFunc(v.Items, func(it ItemView) bool { return strings.Contains(strings.ToLower(it.Text), text) })
}

// memoryModel keeps the views in process memory; the projector rebuilds
// them from the events at every start (state.NewMemory positions).
type memoryModel struct {
	mu    sync.RWMutex
	lists map[string]*ListView
}

func newMemoryModel() *memoryModel { return &memoryModel{lists: map[string]*ListView{}} }

func (m *memoryModel) queue(ctx context.Context, ch change) {
	state.OnCommit(ctx, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		v := m.lists[ch.list]
		if v == nil {
			v = &ListView{}
			m.lists[ch.list] = v
		}
		apply(v, ch)
	})
}

func (m *memoryModel) list(_ context.Context, id string) (ListView, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.lists[id]
	if !ok {
		return ListView{}, false, nil
	}
	return clone(*v), true, nil
}

func (m *memoryModel) byOwner(ctx context.Context, owner string) ([]ListView, error) {
	all, _ := m.all(ctx)
	return slices.DeleteFunc(all, func(v ListView) bool { return v.Owner != owner }), nil
}

func (m *memoryModel) all(context.Context) ([]ListView, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]ListView, 0, len(m.lists))
	for _, v := range m.lists {
		out = append(out, clone(*v))
	}
	sortViews(out)
	return out, nil
}

func clone(v ListView) ListView {
	v.Items = slices.Clone(v.Items)
	return v
}

func sortViews(vs []ListView) {
	slices.SortFunc(vs, func(a, b ListView) int { return strings.Compare(a.ID, b.ID) })
}
