package aggregates

import (
	"context"
	"errors"
	"fmt"
	"reflect"
)

// Sentinel errors of command handling. A handler's own error is returned
// wrapped in a *RejectedError.
var (
	ErrNotFound       = errors.New("aggregate does not exist")
	ErrDeleted        = errors.New("aggregate is deleted")
	ErrConflict       = errors.New("aggregate version conflict")
	ErrUnknownCommand = errors.New("no handler for command")
	ErrUnknownEvent   = errors.New("no handler for event")
	// ErrUndecodable answers a command the runner cannot read (not
	// Confluent-framed Avro, an unknown schema id, no key, a malformed
	// header): the sender must fix and resend it. It is not a business
	// rejection, and never the answer to an infrastructure outage, which
	// the runner retries instead.
	ErrUndecodable = errors.New("command cannot be read")
)

// RejectedError is a command rejected by its handler.
type RejectedError struct {
	Command string // the command's Go type; empty in an Invoker's answer
	Err     error
}

func (e *RejectedError) Error() string {
	if e.Command == "" {
		return fmt.Sprintf("command rejected: %v", e.Err)
	}
	return fmt.Sprintf("command %s rejected: %v", e.Command, e.Err)
}
func (e *RejectedError) Unwrap() error { return e.Err }

// Deletable is implemented by states that can be marked deleted.
type Deletable interface{ IsDeleted() bool }

// Aggregate is the definition of an aggregate type with state S.
type Aggregate[S any] struct {
	name      string
	stateless bool // a Service: no history, no versions
	commands  map[reflect.Type]commandHandler[S]
	events    map[reflect.Type]func(*S, any)
}

type commandHandler[S any] struct {
	create bool
	fn     func(context.Context, any, *S) ([]any, error)
}

// New starts the definition of an aggregate type; name is used in topic
// names (<name>.commands, <name>.events) and errors.
func New[S any](name string) *Aggregate[S] {
	return &Aggregate[S]{
		name:     name,
		commands: map[reflect.Type]commandHandler[S]{},
		events:   map[reflect.Type]func(*S, any){},
	}
}

// Handle registers the handler of command type C, which runs only on an
// existing aggregate.
func Handle[C, S any](a *Aggregate[S], fn func(ctx context.Context, cmd C, state *S) ([]any, error)) {
	register(a, false, fn)
}

// Create registers the handler of command type C, which may also run on an
// aggregate that does not exist yet (its state is then S's zero value).
func Create[C, S any](a *Aggregate[S], fn func(ctx context.Context, cmd C, state *S) ([]any, error)) {
	register(a, true, fn)
}

func register[C, S any](a *Aggregate[S], create bool, fn func(context.Context, C, *S) ([]any, error)) {
	t := reflect.TypeFor[C]()
	if _, dup := a.commands[t]; dup {
		panic(fmt.Sprintf("aggregates: %s: command %v registered twice", a.name, t))
	}
	a.commands[t] = commandHandler[S]{create: create, fn: func(ctx context.Context, cmd any, s *S) ([]any, error) {
		return fn(ctx, cmd.(C), s)
	}}
}

// Apply registers the event-sourcing handler of event type E.
func Apply[E, S any](a *Aggregate[S], fn func(state *S, evt E)) {
	t := reflect.TypeFor[E]()
	if _, dup := a.events[t]; dup {
		panic(fmt.Sprintf("aggregates: %s: event %v registered twice", a.name, t))
	}
	a.events[t] = func(s *S, evt any) { fn(s, evt.(E)) }
}

// CommandTypes lists the registered command types (for decoding by name).
func (a *Aggregate[S]) CommandTypes() []reflect.Type { return keys(a.commands) }

// EventTypes lists the registered event types.
func (a *Aggregate[S]) EventTypes() []reflect.Type { return keys(a.events) }

func keys[V any](m map[reflect.Type]V) []reflect.Type {
	out := make([]reflect.Type, 0, len(m))
	for t := range m {
		out = append(out, t)
	}
	return out
}

// Instance is one aggregate's state as rebuilt from its events.
type Instance[S any] struct {
	State   S
	Version int64 // number of events applied; 0: the aggregate does not exist
}

// Exists reports whether the aggregate has any event.
func (in *Instance[S]) Exists() bool { return in.Version > 0 }

// Deleted reports whether the state marks the aggregate deleted.
func (in *Instance[S]) Deleted() bool {
	d, ok := any(&in.State).(Deletable)
	return ok && d.IsDeleted()
}

// Apply applies events in order, each raising the version by one.
func (a *Aggregate[S]) Apply(in *Instance[S], events ...any) error {
	for _, e := range events {
		h, ok := a.events[reflect.TypeOf(e)]
		if !ok {
			return fmt.Errorf("aggregates: %s: event %T: %w (register it with aggregates.Apply)", a.name, e, ErrUnknownEvent)
		}
		h(&in.State, e)
		in.Version++
	}
	return nil
}

// AnyVersion is the expectation of a command that accepts any version.
const AnyVersion int64 = -1

// Decide runs cmd against in and returns the events it causes, without
// applying them. expected is the version the caller expects, or AnyVersion.
// Rejections are ErrUnknownCommand, ErrNotFound, ErrDeleted, ErrConflict or
// a *RejectedError from the handler.
func (a *Aggregate[S]) Decide(ctx context.Context, in *Instance[S], cmd any, expected int64) ([]any, error) {
	h, ok := a.commands[reflect.TypeOf(cmd)]
	switch {
	case !ok:
		return nil, fmt.Errorf("aggregates: %s: command %T: %w (register it with aggregates.Handle or Create)", a.name, cmd, ErrUnknownCommand)
	case !in.Exists() && !h.create:
		return nil, fmt.Errorf("aggregates: %s: command %T: %w (only creation commands run on a new aggregate)", a.name, cmd, ErrNotFound)
	case in.Deleted():
		return nil, fmt.Errorf("aggregates: %s: command %T: %w", a.name, cmd, ErrDeleted)
	case expected != AnyVersion && expected != in.Version:
		return nil, fmt.Errorf("aggregates: %s: command %T expects version %d, aggregate is at %d: %w", a.name, cmd, expected, in.Version, ErrConflict)
	}
	// The handler gets a copy, so a handler that assigns to the state's
	// fields by mistake cannot change it (maps and slices are still shared;
	// Fixture catches handlers that change those).
	state := in.State
	events, err := h.fn(ctx, cmd, &state)
	if err != nil {
		return nil, &RejectedError{Command: reflect.TypeOf(cmd).String(), Err: err}
	}
	for _, e := range events {
		if _, ok := a.events[reflect.TypeOf(e)]; !ok {
			return nil, fmt.Errorf("aggregates: %s: command %T produced event %T: %w (register it with aggregates.Apply)", a.name, cmd, e, ErrUnknownEvent)
		}
	}
	return events, nil
}
