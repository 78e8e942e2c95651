package sagas

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/recq/recq/streams"
)

// Saga is a named, versioned process manager with state S: event handlers,
// each finding its instance by an association, and deadline handlers.
// Register them with Start, On and OnDeadline before NewRunner.
type Saga[S any] struct {
	app, name string
	full      string // Name(), made once: each handler call names it
	version   int
	topics    []string
	pending   []*route[S]
	deadlines map[string]func(ctx context.Context, in *Instance[S]) error
}

// New defines a saga reading topics. Its consumer group is
// <app>.<name>.v<version>; bumping the version rebuilds every instance
// from the beginning of the topics (commands it sends again carry the ids
// the old version gave them, so aggregates apply them once).
func New[S any](app, name string, version int, topics ...string) *Saga[S] {
	return &Saga[S]{app: app, name: name, full: app + "." + name, version: version, topics: topics, deadlines: map[string]func(context.Context, *Instance[S]) error{}}
}

// Group is the saga's consumer group: <app>.<name>.v<version>.
func (s *Saga[S]) Group() string { return fmt.Sprintf("%s.%s.v%d", s.app, s.name, s.version) }

// Name is <app>.<name>: what command ids are derived from, so that every
// version of the saga derives the same ones.
func (s *Saga[S]) Name() string { return s.full }

// Topics are the event topics the saga reads.
func (s *Saga[S]) Topics() []string { return s.topics }

// Association finds a saga instance from an event of type E: Key names
// it ("order"), Value reads it from the event (the order id).
type Association[E any] struct {
	Key   string
	Value func(E) string
}

// By is the association key with the value read from an event by value.
func By[E any](key string, value func(E) string) Association[E] {
	return Association[E]{Key: key, Value: value}
}

// Handler handles an event of type E for the instance in (its State, its
// actions). An error drops what it did to the instance; the event is
// retried and, when it fails for good, goes to the dead event queue.
type Handler[S, E any] func(ctx context.Context, evt E, in *Instance[S]) error

// route is one event type's registration.
type route[S any] struct {
	sample any    // *E, for the codec's type name
	typ    string // E's Go type, for errors
	key    string
	start  bool
	// An event in hand is an *E, decoded or given (own), so that passing it
	// around as an any does not copy it to the heap again.
	decode func(ctx context.Context, codec streams.Codec, topic string, value []byte) (any, error)
	own    func(evt any) any // an E given by value, as the *E the others take
	value  func(evt any) string
	run    func(ctx context.Context, evt any, in *Instance[S]) error
}

// Start registers fn for events of type E that start an instance: when no
// instance has the association, one is created, its id "key=value" of the
// association (an ended instance's id is never reused, so a late copy of
// its start event starts nothing). When one has it, fn handles the event
// for it like On.
func Start[S, E any](s *Saga[S], a Association[E], fn Handler[S, E]) { register(s, a, fn, true) }

// On registers fn for events of type E of the instance that has the
// association; an event for which none has it is skipped. A second
// registration for a type replaces the first.
func On[S, E any](s *Saga[S], a Association[E], fn Handler[S, E]) { register(s, a, fn, false) }

func register[S, E any](s *Saga[S], a Association[E], fn Handler[S, E], start bool) {
	var sample E
	r := &route[S]{sample: &sample, typ: fmt.Sprintf("%T", sample), key: a.Key, start: start,
		decode: func(ctx context.Context, codec streams.Codec, topic string, value []byte) (any, error) {
			evt := new(E)
			err := codec.Decode(ctx, topic, value, evt)
			return evt, err
		},
		own: func(evt any) any { e := evt.(E); return &e },
		run: func(ctx context.Context, evt any, in *Instance[S]) error { return fn(ctx, *evt.(*E), in) },
	}
	if a.Value != nil {
		r.value = func(evt any) string { return a.Value(*evt.(*E)) }
	}
	s.pending = append(s.pending, r)
}

// OnDeadline registers fn for the deadline called name (Instance.Schedule):
// it runs once the deadline is due, unless cancelled first. A deadline
// without a handler is dropped when due.
func OnDeadline[S any](s *Saga[S], name string, fn func(ctx context.Context, in *Instance[S]) error) {
	s.deadlines[name] = fn
}

// Validate reports a definition that cannot run (its name and version are
// checked by NewRunner, as a consumer group's).
func (s *Saga[S]) Validate() error {
	// The name and version are checked with the consumer underneath
	// (consumers.Consumer.Validate), at NewRunner.
	var errs []error
	if len(s.topics) == 0 {
		errs = append(errs, errors.New("no topics: name the event topics it reads"))
	}
	starts := 0
	for _, r := range s.pending {
		if r.start {
			starts++
		}
		if err := checkKey(r.key); err != nil || r.value == nil {
			errs = append(errs, fmt.Errorf("handler for %T: association %q: want a key without '=', spaces or newlines and a Value function (sagas.By)", r.sample, r.key))
		}
	}
	if starts == 0 {
		errs = append(errs, errors.New("no Start handler: nothing would ever create an instance; register one with sagas.Start"))
	}
	for name := range s.deadlines {
		if name == "" || strings.ContainsAny(name, "\n") {
			errs = append(errs, fmt.Errorf("deadline %q: want a non-empty name without newlines", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sagas: %s: %w", s.Group(), err)
	}
	return nil
}

func checkKey(k string) error {
	if k == "" || strings.ContainsAny(k, "= \n") {
		return fmt.Errorf("association key %q: want a non-empty key without '=', spaces or newlines", k)
	}
	return nil
}

// association is "key=value", checked.
func association(key, value string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	if value == "" || strings.Contains(value, "\n") {
		return "", fmt.Errorf("association %s: value %q: want a non-empty value without newlines", key, value)
	}
	return key + "=" + value, nil
}
