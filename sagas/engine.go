package sagas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"time"

	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/sagas/store"
)

// engine decides what records do to instances: the part of the runner
// that knows no Kafka, shared with the test fixture (sagastest).
type engine[S any] struct {
	saga    *Saga[S]
	sender  Sender
	timeout time.Duration
	// decodes: S is a type whose values the instances keep (decoded.go).
	decodes bool
}

// instances is where the engine finds instances: the runner's cache over
// the store, or the fixture's map.
type instances[S any] interface {
	load(ctx context.Context, id string) (*store.Instance, error)
	resolve(ctx context.Context, assoc string) (own *store.Instance, indexed string, err error)
	// take and keep hold the state value a form's JSON was marshalled
	// from (decoded.go); take reports false when it is not held.
	take(in *store.Instance) (S, bool)
	keep(out *store.Instance, s S)
}

// event is a record of an event type being handled.
type event struct {
	id     string    // recq-id
	typ    string    // recq-type
	at     time.Time // the event's time (the source record's timestamp)
	assoc  string    // "key=value"
	target string    // set when forwarded to an instance found by the index
	// where the source record is: its partition ("topic/partition") and
	// offset, which tell a copy from a new event, and the two as
	// "topic/partition@offset" for the history.
	from   string
	offset int64
	source string
}

// verdict is what an event does.
type verdict struct {
	skip    string          // why it is not handled, if it is not
	forward string          // the instance to send it to (found by the index)
	in      *store.Instance // the instance to handle it for (nil: a new one)
	newID   string          // the id of the new instance
}

// locate finds the instance an event of route r is for.
func (e *engine[S]) locate(ctx context.Context, is instances[S], r *route[S], ev event) (verdict, error) {
	if ev.target != "" {
		in, err := is.load(ctx, ev.target)
		switch {
		case err != nil:
			return verdict{}, err
		case in == nil || in.Ended:
			return verdict{skip: "its instance " + ev.target + " has ended"}, nil
		case !slices.Contains(in.Associations, ev.assoc):
			return verdict{skip: "instance " + ev.target + " no longer has association " + ev.assoc}, nil
		}
		return verdict{in: in}, nil
	}
	own, indexed, err := is.resolve(ctx, ev.assoc)
	switch {
	case err != nil:
		return verdict{}, err
	case own != nil && !own.Ended && slices.Contains(own.Associations, ev.assoc):
		return verdict{in: own}, nil
	case indexed != "" && indexed != ev.assoc:
		return verdict{forward: indexed}, nil
	case own != nil && own.Ended:
		return verdict{skip: "instance " + own.ID + " has ended"}, nil
	case own != nil:
		return verdict{skip: "instance " + own.ID + " no longer has association " + ev.assoc}, nil
	case r.start:
		return verdict{newID: ev.assoc}, nil
	}
	return verdict{skip: "no instance has association " + ev.assoc}, nil
}

// seenKey is where an instance keeps the offset of the last source record
// it handled through an association: the records of one source partition
// with one association reach it in their order.
func (ev event) seenKey() string { return ev.assoc + "|" + ev.from }

// handle applies an event to in (nil: a new instance id at partition):
// first the deadlines due by the event's time, then the handler. It
// returns the instance's new form, or nil when the event is a copy of one
// it handled.
func (e *engine[S]) handle(ctx context.Context, is instances[S], in *store.Instance, id string, partition int32, r *route[S], evt any, ev event) (*store.Instance, error) {
	seen := ev.seenKey()
	if in == nil {
		in = &store.Instance{ID: id, Partition: partition, Associations: []string{id}, Started: ev.at}
	} else if last, ok := in.Seen[seen]; ok && ev.offset <= last {
		return nil, nil
	}
	out, err := e.fireDue(ctx, is, in, ev.at)
	if err != nil {
		return nil, err
	}
	if !out.Ended {
		if out, err = e.run(ctx, is, out, ev.id, ev.at, evt, r.run); err != nil {
			return nil, err
		}
	}
	if out == in {
		// Ended, with nothing fired: run and fire return new forms.
		cp := *out
		out = &cp
	}
	out.Seen = maps.Clone(out.Seen)
	if out.Seen == nil {
		out.Seen = map[string]int64{}
	}
	out.Seen[seen] = ev.offset
	out.History = appendHistory(out.History, store.Handled{ID: ev.id, Type: ev.typ, At: ev.at, Source: ev.source})
	return out, nil
}

// fireDue fires, in order, the deadlines of in due at or before at: an
// event later than a deadline finds it fired, however late the event is
// handled, so the outcome follows the events' times.
func (e *engine[S]) fireDue(ctx context.Context, is instances[S], in *store.Instance, at time.Time) (*store.Instance, error) {
	for !in.Ended {
		i := slices.IndexFunc(in.Deadlines, func(d store.Deadline) bool { return !d.Due.After(at) })
		if i < 0 {
			return in, nil
		}
		for j, d := range in.Deadlines {
			if d.Due.Before(in.Deadlines[i].Due) {
				i = j
			}
		}
		var err error
		if in, err = e.fire(ctx, is, in, in.Deadlines[i].ID); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// fire runs the pending deadline id of in; nil when it is not pending (a
// second firing, or cancelled).
func (e *engine[S]) fire(ctx context.Context, is instances[S], in *store.Instance, id string) (*store.Instance, error) {
	i := slices.IndexFunc(in.Deadlines, func(d store.Deadline) bool { return d.ID == id })
	if in.Ended || i < 0 {
		return nil, nil
	}
	d := in.Deadlines[i]
	out := *in
	out.Deadlines = slices.Delete(slices.Clone(in.Deadlines), i, i+1)
	if fn := e.saga.deadlines[d.Name]; fn != nil {
		x, err := e.run(ctx, is, &out, d.ID, d.Due, nil, func(ctx context.Context, _ any, x *Instance[S]) error { return fn(ctx, x) })
		if err != nil {
			return nil, fmt.Errorf("deadline %s (%s) of %s: %w", d.Name, d.ID, in.ID, err)
		}
		out = *x
	}
	out.History = appendHistory(out.History, store.Handled{ID: d.ID, Type: "deadline " + d.Name, At: d.Due})
	return &out, nil
}

// run calls fn with evt and the instance in and returns its new form.
func (e *engine[S]) run(ctx context.Context, is instances[S], in *store.Instance, trigger string, at time.Time, evt any, fn func(context.Context, any, *Instance[S]) error) (_ *store.Instance, err error) {
	x := &Instance[S]{id: in.ID, trigger: trigger, now: at, assoc: slices.Clone(in.Associations),
		due: slices.Clone(in.Deadlines), saga: e.saga.Name(), sender: e.sender, timeout: e.timeout}
	if s, ok := is.take(in); ok {
		x.State = s
	} else if len(in.State) > 0 {
		if err := json.Unmarshal(in.State, &x.State); err != nil {
			return nil, deadletter.Permanent(fmt.Errorf("sagas: instance %s: its stored state does not read as %T: %w", in.ID, x.State, err))
		}
	}
	defer func() {
		if v := recover(); v != nil {
			err = &deadletter.PanicError{Value: v, Stack: string(debug.Stack())}
		}
	}()
	if err := fn(ctx, evt, x); err != nil {
		return nil, err
	}
	out := *in
	out.Updated = at
	if x.ended {
		out.Ended, out.State, out.Associations, out.Deadlines = true, nil, nil, nil
		return &out, nil
	}
	b, err := json.Marshal(x.State)
	if err != nil {
		return nil, deadletter.Permanent(fmt.Errorf("sagas: instance %s: state %T does not marshal to JSON: %w", in.ID, x.State, err))
	}
	out.State, out.Associations, out.Deadlines = b, x.assoc, x.due
	if e.decodes && keepable(b) {
		is.keep(&out, x.State)
	}
	return &out, nil
}

// appendHistory appends e to h in h's array when it has room: copying the
// history on every event cost several per cent of a saga's CPU. It is
// safe because an instance's forms are derived in one line, each from the
// latest (the member's own, or a fresh one from the store): an append
// writes past the end of every form still held (the latest, the forms a
// batch will write), and a failed attempt's form, whose entry a retry
// overwrites, is dropped.
func appendHistory(h []store.Handled, e store.Handled) []store.Handled {
	h = append(h, e)
	if len(h) > store.HistoryLimit {
		h = h[len(h)-store.HistoryLimit:]
	}
	return h
}

// errNoValue is an association function's empty answer.
var errNoValue = errors.New("the association value is empty")

// value runs r's association function on evt, turning a panic or an
// empty value into a permanent error that names the event: it goes to the
// dead event queue, never silently skipped.
func (r *route[S]) associate(evt any) (a string, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = deadletter.Permanent(fmt.Errorf("sagas: association %q of %s panicked: %v; fix the association function, then redrive the event with recq dlq redrive", r.key, r.typ, v))
		}
	}()
	v := r.value(evt)
	if v == "" {
		return "", deadletter.Permanent(fmt.Errorf("sagas: association %q of %s: %w: the event does not say which instance it is for; fix the producer or the association function, then redrive it with recq dlq redrive", r.key, r.typ, errNoValue))
	}
	if a, err = association(r.key, v); err != nil {
		return "", deadletter.Permanent(fmt.Errorf("sagas: %s: %w", r.typ, err))
	}
	return a, nil
}
