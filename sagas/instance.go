package sagas

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/sagas/store"
)

// Sender sends commands to aggregates and waits for their answer:
// *aggregates.Invoker, or a test's recorder (sagastest).
type Sender interface {
	Send(ctx context.Context, aggregate, id string, cmd any, opts ...aggregates.SendOption) (aggregates.Result, error)
}

// Instance is one saga instance as a handler sees it: its State, which the
// handler changes in place, and its actions. What a handler does to it
// counts only if the handler returns nil.
type Instance[S any] struct {
	State S

	id      string
	trigger string    // the id of the record being handled (event or deadline)
	now     time.Time // its time
	sends   int
	assoc   []string
	due     []store.Deadline
	ended   bool
	saga    string // <app>.<name>, for command ids
	sender  Sender
	timeout time.Duration
}

// ID is the instance's id: the "key=value" association that started it.
func (in *Instance[S]) ID() string { return in.id }

// Now is the time of what is being handled: the event's timestamp, or a
// deadline's due time. Deadlines are scheduled from it, so the same events
// schedule the same deadlines on every rebuild.
func (in *Instance[S]) Now() time.Time { return in.now }

// Associations are the instance's associations ("key=value").
func (in *Instance[S]) Associations() []string { return slices.Clone(in.assoc) }

// Associate makes events with this association find the instance too (an
// order saga that later answers to its payment id). It panics on a key or
// value that cannot be one (empty, '=' in the key, newlines), which the
// runner treats like a handler's error.
func (in *Instance[S]) Associate(key, value string) {
	a := must(association(key, value))
	if !slices.Contains(in.assoc, a) {
		in.assoc = append(in.assoc, a)
	}
}

// Dissociate stops events with this association from finding the
// instance (its own id included).
func (in *Instance[S]) Dissociate(key, value string) {
	a := must(association(key, value))
	in.assoc = slices.DeleteFunc(in.assoc, func(s string) bool { return s == a })
}

// Schedule sets the deadline called name to fire after d from Now,
// replacing a pending one of that name. Its handler (OnDeadline) runs once,
// when it is due, unless Cancel comes first, across restarts and
// rebalances.
func (in *Instance[S]) Schedule(name string, d time.Duration) {
	in.Cancel(name)
	id := derive(in.saga, in.id, in.trigger, "deadline", name)
	in.due = append(in.due, store.Deadline{ID: id, Name: name, Due: in.now.Add(d).UTC().Truncate(time.Millisecond)})
}

// Cancel drops the pending deadline called name, if any.
func (in *Instance[S]) Cancel(name string) {
	in.due = slices.DeleteFunc(in.due, func(d store.Deadline) bool { return d.Name == name })
}

// Deadline reports when the deadline called name is due, if it is pending.
func (in *Instance[S]) Deadline(name string) (time.Time, bool) {
	for _, d := range in.due {
		if d.Name == name {
			return d.Due, true
		}
	}
	return time.Time{}, false
}

// End ends the instance once the handler returns: its state, associations
// and deadlines are deleted; what it handled is kept for a while, so late
// copies of its events are known.
func (in *Instance[S]) End() { in.ended = true }

// Ended reports whether End was called.
func (in *Instance[S]) Ended() bool { return in.ended }

// Send sends cmd to the aggregate id and waits for its answer (bounded by
// the runner's WithSendTimeout). The command's id is derived from the
// instance, the record being handled and the number of this Send in the
// handler, so a handler run again (a retry, a crash, a rebuild) sends the
// same ids and the aggregate applies each once (a second answer says
// Result.Duplicate). A rejection comes back as the error, for the handler
// to react to (compensate); a missing answer is an error the handler
// should return, so that it is retried.
func (in *Instance[S]) Send(ctx context.Context, aggregate, id string, cmd any, opts ...aggregates.SendOption) (aggregates.Result, error) {
	in.sends++
	cid := derive(in.saga, in.id, in.trigger, "command", fmt.Sprint(in.sends))
	if in.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, in.timeout)
		defer cancel()
	}
	return in.sender.Send(ctx, aggregate, id, cmd, append(slices.Clone(opts), aggregates.WithCommandID(cid))...)
}

// derive makes a stable id (a name-based UUID) from parts.
func derive(parts ...string) string {
	b := []byte{}
	for _, p := range parts {
		b = append(b, p...)
		b = append(b, 0)
	}
	return uuid.NewSHA1(idSpace, b).String()
}

// idSpace is the UUID namespace of recq's saga ids.
var idSpace = uuid.MustParse("6f1d2c1e-6a8b-5d0e-9c55-3b9a7f0e2d41")

func must(a string, err error) string {
	if err != nil {
		panic(fmt.Sprintf("sagas: %v", err))
	}
	return a
}
