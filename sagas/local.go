package sagas

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/recq/recq/sagas/store"
)

// Local runs a saga's handlers in process, without Kafka or stores, by
// the same rules as the Runner: association, start, skip, forwarding to
// an instance found by the index, copies, deadlines fired in due order by
// the events' times. It is what sagastest's fixture drives; events are
// given as values, and time passes only through Advance.
type Local[S any] struct {
	eng    engine[S]
	routes map[reflect.Type]*route[S]
	inst   map[string]*store.Instance
	index  map[string]string
	n      int64
}

// NewLocal prepares s to run in process, sending commands through sender.
func NewLocal[S any](s *Saga[S], sender Sender) (*Local[S], error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	l := &Local[S]{eng: engine[S]{saga: s, sender: sender}, routes: map[reflect.Type]*route[S]{},
		inst: map[string]*store.Instance{}, index: map[string]string{}}
	for _, r := range s.pending {
		l.routes[reflect.TypeOf(r.sample).Elem()] = r
	}
	return l, nil
}

// Handle handles evt, an event of a type the saga registered, as written
// at time at. It returns why it was skipped ("" when handled), or the
// error the Runner would retry or dead-letter.
func (l *Local[S]) Handle(ctx context.Context, evt any, at time.Time) (skipped string, err error) {
	r := l.routes[reflect.TypeOf(evt)]
	if r == nil {
		return "", fmt.Errorf("sagas: %s has no handler for %T", l.eng.saga.Group(), evt)
	}
	typ := reflect.TypeOf(evt).String()
	evt = r.own(evt)
	a, err := r.associate(evt)
	if err != nil {
		return "", err
	}
	l.n++
	ev := event{id: fmt.Sprintf("local-%d", l.n), typ: typ, at: at.UTC(), assoc: a, from: "local/0", offset: l.n, source: fmt.Sprintf("local/0@%d", l.n)}
	v, err := l.eng.locate(ctx, l, r, ev)
	if err == nil && v.forward != "" {
		ev.target = v.forward
		v, err = l.eng.locate(ctx, l, r, ev)
	}
	if err != nil || v.skip != "" {
		return v.skip, err
	}
	out, err := l.eng.handle(ctx, l, v.in, v.newID, 0, r, evt, ev)
	if err != nil || out == nil {
		return "", err
	}
	l.save(v.in, out)
	return "", nil
}

// Advance fires, in due order, every pending deadline due at or before to.
func (l *Local[S]) Advance(ctx context.Context, to time.Time) error {
	for {
		var next *store.Instance
		var d store.Deadline
		for _, in := range l.inst {
			for _, x := range in.Deadlines {
				if !x.Due.After(to) && (next == nil || x.Due.Before(d.Due)) {
					next, d = in, x
				}
			}
		}
		if next == nil {
			return nil
		}
		out, err := l.eng.fire(ctx, l, next, d.ID)
		if err != nil {
			return err
		}
		l.save(next, out)
	}
}

// Instance returns the instance id as stored (nil: none).
func (l *Local[S]) Instance(id string) *store.Instance { return l.inst[id] }

// Instances returns the ids of every instance, ended ones included.
func (l *Local[S]) Instances() []string { return slices.Sorted(maps.Keys(l.inst)) }

func (l *Local[S]) save(old, in *store.Instance) {
	if old != nil {
		for _, a := range old.Associations {
			delete(l.index, a)
		}
	}
	if !in.Ended {
		for _, a := range in.Associations {
			l.index[a] = in.ID
		}
	}
	l.inst[in.ID] = in
}

func (l *Local[S]) load(_ context.Context, id string) (*store.Instance, error) {
	return l.inst[id], nil
}

func (l *Local[S]) resolve(_ context.Context, assoc string) (*store.Instance, string, error) {
	return l.inst[assoc], l.index[assoc], nil
}

// take holds nothing: the fixture decodes every state, as a rebuild does.
func (l *Local[S]) take(*store.Instance) (S, bool) {
	var zero S
	return zero, false
}

func (l *Local[S]) keep(*store.Instance, S) {}
