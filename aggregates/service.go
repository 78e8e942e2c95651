package aggregates

import (
	"context"
	"fmt"
	"reflect"
)

// Service is a set of stateless command handlers (Evento's Service): each
// command is decided on its own, with no state to load and no version, and
// its events are written with the same exactly-once pipeline as an
// aggregate's: events, reply and command offset in one transaction. The
// command's key only spreads the work over partitions.
//
// A service remembers the command ids it handled while it keeps the key
// loaded; a command resent after a restart is handled again, so service
// handlers should be idempotent or let an aggregate decide.
type Service struct {
	agg *Aggregate[struct{}]
}

// NewService starts the definition of a service; name is used as an
// aggregate's is (topics <name>.commands and <name>.events).
func NewService(name string) *Service {
	a := New[struct{}](name)
	a.stateless = true
	return &Service{agg: a}
}

// Serve registers the handler of command type C.
func Serve[C any](s *Service, fn func(ctx context.Context, cmd C) ([]any, error)) {
	Create(s.agg, func(ctx context.Context, cmd C, _ *struct{}) ([]any, error) { return fn(ctx, cmd) })
}

// Events declares the event types the service emits, so runners can name
// them; a stateless service applies nothing.
func Events(s *Service, samples ...any) {
	for _, e := range samples {
		t := reflect.TypeOf(e)
		if _, dup := s.agg.events[t]; dup {
			panic(fmt.Sprintf("aggregates: service %s: event %v declared twice", s.agg.name, t))
		}
		s.agg.events[t] = func(*struct{}, any) {}
	}
}

// NewServiceRunner returns a runner of the service's commands.
func NewServiceRunner(s *Service, codec Codec, brokers []string, opts ...RunnerOption) (*Runner[struct{}], error) {
	return NewRunner(s.agg, codec, brokers, opts...)
}
