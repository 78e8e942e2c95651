package store

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/recq/recq/consumers/state"
)

// memory keeps instances in process memory; its writes are state.OnCommit
// functions, so they apply inside the memory state store's atomic step.
type memory struct {
	pos state.Store
	mu  sync.RWMutex
	g   map[string]*memGroup
}

type memGroup struct {
	inst  map[string]*Instance
	assoc map[string]string
}

// NewMemory returns a Store in process memory: every start rebuilds the
// instances from the saga's topics. Ended instances are kept for the
// process's life.
func NewMemory() Store { return &memory{pos: state.NewMemory(), g: map[string]*memGroup{}} }

func (m *memory) Positions() state.Store { return m.pos }

func (m *memory) group(name string) *memGroup {
	g := m.g[name]
	if g == nil {
		g = &memGroup{inst: map[string]*Instance{}, assoc: map[string]string{}}
		m.g[name] = g
	}
	return g
}

func (m *memory) Load(_ context.Context, group, id string) (*Instance, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if g := m.g[group]; g != nil {
		return clone(g.inst[id]), nil
	}
	return nil, nil
}

func (m *memory) Resolve(_ context.Context, group string, assocs ...string) ([]Resolved, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Resolved, len(assocs))
	if g := m.g[group]; g != nil {
		for i, a := range assocs {
			out[i] = Resolved{Own: clone(g.inst[a]), Indexed: g.assoc[a]}
		}
	}
	return out, nil
}

func (m *memory) Deadlines(_ context.Context, group string, partition int32) ([]Due, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Due
	if g := m.g[group]; g != nil {
		for _, in := range g.inst {
			if in.Partition == partition {
				for _, d := range deadlines(in) {
					out = append(out, Due{Instance: in.ID, Deadline: d})
				}
			}
		}
	}
	return out, nil
}

func (m *memory) List(_ context.Context, group string, f Filter) ([]*Instance, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []*Instance
	if g := m.g[group]; g != nil {
		for _, in := range g.inst {
			if matches(in, f) {
				out = append(out, clone(in))
			}
		}
	}
	slices.SortFunc(out, func(a, b *Instance) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (m *memory) Save(ctx context.Context, group string, old, in *Instance) {
	in = clone(in)
	state.OnCommit(ctx, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		g := m.group(group)
		for _, a := range diff(associations(old), associations(in)) {
			delete(g.assoc, a)
		}
		for _, a := range associations(in) {
			g.assoc[a] = in.ID
		}
		g.inst[in.ID] = in
	})
}

// clone copies in deeply enough that neither side's changes reach the
// other (the runner keeps its own copies).
func clone(in *Instance) *Instance {
	if in == nil {
		return nil
	}
	c := *in
	c.State = slices.Clone(in.State)
	c.Associations = slices.Clone(in.Associations)
	c.Deadlines = slices.Clone(in.Deadlines)
	c.History = slices.Clone(in.History)
	c.Seen = maps.Clone(in.Seen)
	return &c
}
