// Package store holds saga stores: where a saga runner keeps each
// instance (its state, associations, pending deadlines and what it has
// handled), the index from association to instance, and the positions of
// its consumer group, all moved together.
//
// # Contract
//
//   - Positions is a consumers/state Store: the saga runner's batches
//     claim, fence and commit through it. Save queues an instance's new
//     form in the batch of the handler's context, so the instance, the
//     association index and the position are applied in one atomic step,
//     or not at all (a fenced lease applies nothing).
//   - Load returns what the last applied Save left (nil when none). An
//     ended instance is kept, without its associations and deadlines, for
//     at least the store's ended retention, so a late copy of an event is
//     known as handled.
//   - Resolve returns, for each association value asked, the instance
//     whose id it is and the id the index gives for it, in order, in one
//     round trip however many are asked. The index holds every association
//     of every instance not ended, and nothing else.
//   - Deadlines returns the pending deadlines of the instances whose home
//     is the given partition, as the last applied Saves left them.
//   - List returns the instances of a group, ended ones with Filter.Ended.
//
// # Stores
//
// NewMemory keeps everything in process memory: a process starts with no
// positions, so a saga on it rebuilds its instances from its topics on
// every start. NewRedis keeps each instance as one JSON string
// <prefix><group>:i:<id>, the index in the hash <prefix><group>:assoc and
// the deadlines of each partition in the sorted set
// <prefix><group>:due:<partition> (score: due time in ms), written with
// the position by the consumers/state Redis store's script; it needs one
// Redis primary, not Cluster. Its batches fold the saves of a batch by
// key, so each instance is written once per batch (fold.go).
//
// storetest is the conformance suite both stores pass.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/recq/recq/consumers/state"
)

// ErrNotFound is returned by readers for an instance that does not exist.
var ErrNotFound = errors.New("store: no such saga instance")

// Instance is one saga instance as stored.
type Instance struct {
	ID string `json:"id"`
	// Partition is the instance's home: the partition of the saga's routed
	// topic its records are handled from.
	Partition int32 `json:"partition"`
	// State is the saga's state type as JSON; empty once ended.
	State json.RawMessage `json:"state,omitempty"`
	// Associations are "key=value" strings, its own id among them until
	// removed; none once ended.
	Associations []string   `json:"associations,omitempty"`
	Deadlines    []Deadline `json:"deadlines,omitempty"`
	// Seen maps each association and source partition
	// ("key=value|topic/partition") to the offset of the last source record
	// handled through it: a copy of a handled event is known by it.
	Seen map[string]int64 `json:"seen,omitempty"`
	// History holds the last HistoryLimit records handled, oldest first.
	History []Handled `json:"history,omitempty"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	Ended   bool      `json:"ended,omitempty"`
}

// HistoryLimit bounds Instance.History.
const HistoryLimit = 20

// Deadline is a pending deadline.
type Deadline struct {
	ID   string    `json:"id"`
	Name string    `json:"name"`
	Due  time.Time `json:"due"`
}

// Handled is one record an instance handled.
type Handled struct {
	ID   string    `json:"id"`   // the event's recq-id, or the deadline's id
	Type string    `json:"type"` // the event's type name, or "deadline <name>"
	At   time.Time `json:"at"`   // the event's time, or the deadline's due time
	// Source is where the event was written (topic/partition@offset); empty
	// for a deadline.
	Source string `json:"source,omitempty"`
}

// Resolved is what Resolve found for one association value.
type Resolved struct {
	Own     *Instance // the instance whose id the value is (nil: none)
	Indexed string    // the instance id the index gives for it ("": none)
}

// Due is a pending deadline of an instance.
type Due struct {
	Instance string
	Deadline
}

// Filter selects instances for List.
type Filter struct {
	Association string // "key=value": only the instance it leads to (by id or index)
	Ended       bool   // the ended instances instead of the running ones
}

// Reader reads a group's instances (the CLI's need).
type Reader interface {
	Load(ctx context.Context, group, id string) (*Instance, error)
	List(ctx context.Context, group string, f Filter) ([]*Instance, error)
}

// Store keeps saga instances; see the package documentation.
type Store interface {
	Reader
	// Positions is the consumer-state store the runner commits through.
	Positions() state.Store
	Resolve(ctx context.Context, group string, assocs ...string) ([]Resolved, error)
	Deadlines(ctx context.Context, group string, partition int32) ([]Due, error)
	// Save queues, in the batch of ctx (a handler's context), the change of
	// an instance from old (nil: new) to in, index and deadlines included.
	Save(ctx context.Context, group string, old, in *Instance)
}

// diff lists what is in a but not in b.
func diff(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

func associations(in *Instance) []string {
	if in == nil || in.Ended {
		return nil
	}
	return in.Associations
}

func deadlines(in *Instance) []Deadline {
	if in == nil || in.Ended {
		return nil
	}
	return in.Deadlines
}

func matches(in *Instance, f Filter) bool {
	if in.Ended != f.Ended {
		return false
	}
	return f.Association == "" || in.ID == f.Association || slices.Contains(in.Associations, f.Association)
}
