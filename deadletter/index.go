package deadletter

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Status is where a dead event stands.
type Status string

const (
	// StatusPending: dead (or parked, or dead again after a redrive) and
	// waiting for a decision.
	StatusPending Status = "pending"
	// StatusRedriving: republished to the retry topic, not yet handled.
	StatusRedriving Status = "redriving"
	// StatusRedriven: handled successfully after a redrive.
	StatusRedriven Status = "redriven"
	// StatusDiscarded: dropped on purpose; it will not be handled.
	StatusDiscarded Status = "discarded"
)

// ParseStatus reads a Status.
func ParseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case StatusPending, StatusRedriving, StatusRedriven, StatusDiscarded:
		return st, nil
	}
	return "", fmt.Errorf("deadletter: unknown status %q (want pending, redriving, redriven or discarded)", s)
}

// Action names what was decided about a dead event.
type ActionKind string

const (
	ActionRedrive ActionKind = "redrive" // republished to the retry topic
	ActionDiscard ActionKind = "discard" // dropped
	ActionDone    ActionKind = "done"    // the redriven event was handled (written by the consumer)
)

// Action is one decision about a dead event, recorded on the actions topic
// (keyed by the event's id) with who took it, why and when.
type Action struct {
	ID     string     `json:"id"`
	Action ActionKind `json:"action"`
	// Generation is the entry's generation the action was taken on: a
	// later death (a higher generation) makes the entry pending again.
	Generation int       `json:"generation"`
	Who        string    `json:"who"`
	Why        string    `json:"why,omitempty"`
	At         time.Time `json:"at"`
	// Where a redrive put the event on the retry topic.
	RetryPartition int32 `json:"retry_partition,omitempty"`
	RetryOffset    int64 `json:"retry_offset,omitempty"`
}

func (a Action) record(topic string) *kgo.Record {
	v, _ := json.Marshal(a) // plain fields: cannot fail
	return &kgo.Record{Topic: topic, Key: []byte(a.ID), Value: v}
}

// Item is a dead event with its history: the latest entry, every action,
// and the status they give.
type Item struct {
	Entry   Entry    // the latest generation's entry
	Status  Status   `json:"status"`
	Actions []Action `json:"actions,omitempty"`
	seq     int64    // the first entry's offset in the queue: a key's order
	redrive *Action  // the redrive that counts for the latest generation
}

// Index holds every dead event of one consumer group, built from the dead
// event queue and the actions topic. It is safe for concurrent use.
type Index struct {
	mu    sync.Mutex
	items map[origin]*Item   // by id, unformatted: a consumer asks about every event
	byKey map[string][]*Item // items of each non-empty key, in queue order
	// early holds actions on ids whose entry has not been read yet: the
	// two topics are read concurrently, so an action can come first.
	early map[string][]Action
	// n is len(items): a consumer asks about every event, and most queues
	// are empty, so the answer for an empty one takes no lock.
	n atomic.Int64
}

// origin is where an event's original record sits: its id, unformatted.
type origin struct {
	topic     string
	partition int32
	offset    int64
}

// originOf parses an id; ok is false for one that ID did not make.
func originOf(id string) (o origin, ok bool) {
	t, p, off, err := ParseID(id)
	return origin{t, p, off}, err == nil
}

func newIndex() *Index {
	return &Index{items: map[origin]*Item{}, byKey: map[string][]*Item{}, early: map[string][]Action{}}
}

// apply reads one record of the queue or the actions topic and returns
// the key of the event it is about (whose parked events may be
// releasable). Records that are not recq's are reported and skipped.
func (x *Index) apply(group string, r *kgo.Record) ([]byte, error) {
	switch r.Topic {
	case Topic(group):
		e, err := ParseEntry(r)
		if err != nil {
			return nil, err
		}
		x.addEntry(e)
		return e.Key, nil
	case ActionsTopic(group):
		var a Action
		if err := json.Unmarshal(r.Value, &a); err != nil {
			return nil, fmt.Errorf("deadletter: %s/%d@%d is not an action: %v", r.Topic, r.Partition, r.Offset, err)
		}
		if _, ok := originOf(a.ID); !ok {
			return nil, fmt.Errorf("deadletter: %s/%d@%d is not an action: id %q", r.Topic, r.Partition, r.Offset, a.ID)
		}
		return x.addAction(a), nil
	}
	return nil, nil
}

// addEntry records e, whose id ParseEntry checked.
func (x *Index) addEntry(e Entry) {
	o, _ := originOf(e.ID)
	x.mu.Lock()
	defer x.mu.Unlock()
	it := x.items[o]
	if it == nil {
		it = &Item{seq: e.QueueOffset}
		x.items[o] = it
		x.n.Add(1)
		it.Actions = x.early[e.ID]
		delete(x.early, e.ID)
		if len(e.Key) > 0 {
			k := string(e.Key)
			x.byKey[k] = append(x.byKey[k], it)
		}
	} else if e.Generation < it.Entry.Generation {
		return // an older copy (a zombie's, say): the latest generation wins
	}
	it.Entry = e
	it.status()
}

// addAction records a and returns the key of its event (nil if unknown).
func (x *Index) addAction(a Action) []byte {
	o, _ := originOf(a.ID)
	x.mu.Lock()
	defer x.mu.Unlock()
	it := x.items[o]
	if it == nil {
		// Read before its entry (or its entry is gone, and this stays here).
		x.early[a.ID] = append(x.early[a.ID], a)
		return nil
	}
	it.Actions = append(it.Actions, a)
	it.status()
	return it.Entry.Key
}

// parkedKeys are the keys with pending parked events.
func (x *Index) parkedKeys() [][]byte {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out [][]byte
	for k, items := range x.byKey {
		for _, it := range items {
			if it.Status == StatusPending && it.Entry.Reason == ReasonParked {
				out = append(out, []byte(k))
				break
			}
		}
	}
	return out
}

// status derives the item's status from the actions on its latest
// generation, in order: pending until redriven or discarded; a redrive
// then counts until it is done. Only the first redrive of a generation
// counts: a second one (two consumers releasing the same parked event)
// changes nothing, and its retry record is skipped, so an event is never
// applied twice.
func (it *Item) status() {
	it.Status, it.redrive = StatusPending, nil
	for i := range it.Actions {
		a := &it.Actions[i]
		if a.Generation != it.Entry.Generation {
			continue // an earlier generation's, or a later one's read before its entry
		}
		switch {
		case a.Action == ActionRedrive && it.Status == StatusPending:
			it.Status, it.redrive = StatusRedriving, a
		case a.Action == ActionDone && it.Status == StatusRedriving:
			it.Status = StatusRedriven
		case a.Action == ActionDiscard && it.Status == StatusPending:
			it.Status = StatusDiscarded
		}
	}
}

// has reports whether the event at topic/partition/offset is in the queue
// (in any status): Get(ID(topic, partition, offset)) without formatting
// the id, for a consumer that asks about every event.
func (x *Index) has(topic string, partition int32, offset int64) bool {
	if x.n.Load() == 0 {
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	_, ok := x.items[origin{topic, partition, offset}]
	return ok
}

// Get returns a copy of the item with id.
func (x *Index) Get(id string) (Item, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	it := x.item(id)
	if it == nil {
		return Item{}, false
	}
	return it.copy(), true
}

// item is the item of id, or nil; x.mu is held.
func (x *Index) item(id string) *Item {
	o, ok := originOf(id)
	if !ok {
		return nil
	}
	return x.items[o]
}

func (it *Item) copy() Item {
	c := *it
	c.Actions, c.redrive = slices.Clone(it.Actions), nil
	return c
}

// blocker is the id of the first dead event of key that holds back the
// event at topic/partition/offset: one pending or being redriven, and not
// later in the same partition (a consumer that restarts reads again the
// events before a dead one, which it must not park). "" when none does,
// or key is empty (no order to keep).
func (x *Index) blocker(key []byte, topic string, partition int32, offset int64) string {
	if len(key) == 0 || x.n.Load() == 0 {
		return "" // asked for every event: no closure for an empty queue
	}
	return x.firstBlocking(key, func(it *Item) bool {
		if it.Entry.Topic == topic && it.Entry.Partition == partition && it.Entry.Offset > offset {
			return false
		}
		return it.Status == StatusPending || it.Status == StatusRedriving
	})
}

// blockerOfRedriven is blocker for a redriven event id: only a pending
// event of its key queued before it holds it back (the ones redriven with
// it come before it on the retry topic, in order).
func (x *Index) blockerOfRedriven(key []byte, id string) string {
	x.mu.Lock()
	it := x.item(id)
	x.mu.Unlock()
	if it == nil {
		return ""
	}
	return x.firstBlocking(key, func(o *Item) bool { return o.seq < it.seq && o.Status == StatusPending })
}

func (x *Index) firstBlocking(key []byte, blocks func(*Item) bool) string {
	if len(key) == 0 || x.n.Load() == 0 {
		return ""
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, it := range x.byKey[string(key)] {
		if blocks(it) {
			return it.Entry.ID
		}
	}
	return ""
}

// redriveAt reports whether the retry record at partition/offset is the
// current redrive of event id: generation is the event's latest and its
// redrive of that generation put it there. If so it returns the event's
// status: redriving (to be handled), or redriven (handled before: a
// consumer whose positions were lost, such as one on a memory store,
// handles it again as it rebuilds).
func (x *Index) redriveAt(id string, generation int, partition int32, offset int64) (Status, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	it := x.item(id)
	if it == nil || it.redrive == nil || it.Entry.Generation != generation {
		return "", false
	}
	return it.Status, it.redrive.RetryPartition == partition && it.redrive.RetryOffset == offset
}

// Releasable returns the events parked behind dead events of key that no
// longer hold them: when none of the key's events is pending for a reason
// of its own (a failure) or being redriven, its parked events, in order.
// A consumer redrives them: discarding or successfully redriving a key's
// dead event lets the rest of its sequence through.
func (x *Index) Releasable(key []byte) []Item {
	if len(key) == 0 {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []Item
	for _, it := range x.byKey[string(key)] {
		switch {
		case it.Status == StatusRedriving, it.Status == StatusPending && it.Entry.Reason != ReasonParked:
			return nil
		case it.Status == StatusPending:
			out = append(out, it.copy())
		}
	}
	return out
}

// Count is how many events have status st.
func (x *Index) Count(st Status) int {
	if x.n.Load() == 0 {
		return 0
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for _, it := range x.items {
		if it.Status == st {
			n++
		}
	}
	return n
}

// Filter selects items for List; zero fields select everything.
type Filter struct {
	Key    string
	Status Status
	IDs    []string
}

// List returns the items f selects, in queue order (by queue partition,
// then offset).
func (x *Index) List(f Filter) []Item {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []Item
	for _, it := range x.items {
		if (f.Key != "" && string(it.Entry.Key) != f.Key) || (f.Status != "" && it.Status != f.Status) ||
			(len(f.IDs) > 0 && !slices.Contains(f.IDs, it.Entry.ID)) {
			continue
		}
		out = append(out, it.copy())
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Entry.QueuePartition != b.Entry.QueuePartition {
			return a.Entry.QueuePartition < b.Entry.QueuePartition
		}
		if a.seq != b.seq {
			return a.seq < b.seq
		}
		return strings.Compare(a.Entry.ID, b.Entry.ID) < 0
	})
	return out
}

// HandledRedrives lists the events being redriven through partition of
// the retry topic whose retry records lie below next: a consumer that
// committed past them and stopped before recording them done.
func (x *Index) HandledRedrives(partition int32, next int64) []Redriven {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []Redriven
	for _, it := range x.items {
		if it.Status == StatusRedriving && it.redrive.RetryPartition == partition && it.redrive.RetryOffset < next {
			out = append(out, Redriven{ID: it.Entry.ID, Attempts: it.Entry.Attempts, Generation: it.Entry.Generation, FirstFailure: it.Entry.FirstFailure})
		}
	}
	return out
}
