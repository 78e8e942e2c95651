package deadletter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/recq/recq/schema"
)

// Kind says what a failure means for the event that caused it.
type Kind uint8

const (
	// KindPermanent: the event itself is bad (it does not decode, a
	// handler rejects it or panics on it). After the policy's attempts it
	// goes to the dead event queue and its partition moves on.
	KindPermanent Kind = iota + 1
	// KindTransient: something the handler depends on is down. The
	// partition pauses and retries the event without advancing, by default
	// without limit, so an outage fills no dead event queue.
	KindTransient
)

func (k Kind) String() string {
	switch k {
	case KindPermanent:
		return "permanent"
	case KindTransient:
		return "transient"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ParseKind reads Kind.String's output.
func ParseKind(s string) (Kind, error) {
	switch s {
	case "permanent":
		return KindPermanent, nil
	case "transient":
		return KindTransient, nil
	}
	return 0, fmt.Errorf("deadletter: unknown error kind %q (want permanent or transient)", s)
}

type marked struct {
	err  error
	kind Kind
}

func (m *marked) Error() string { return m.err.Error() }
func (m *marked) Unwrap() error { return m.err }

// Permanent marks err as the event's fault: no retry will help, so after
// the policy's attempts the event is dead. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &marked{err: err, kind: KindPermanent}
}

// Transient marks err as a dependency's fault: the event is retried
// until it succeeds (or the policy's transient limit). Transient(nil) is
// nil.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &marked{err: err, kind: KindTransient}
}

// PanicError is a handler panic, recovered: permanent, with the stack.
type PanicError struct {
	Value any
	Stack string
}

func (p *PanicError) Error() string { return fmt.Sprintf("handler panicked: %v", p.Value) }

// Classify says whether err is transient or permanent. The outermost mark
// (Permanent, Transient) wins. Unmarked, these are transient: an
// unavailable schema registry, context deadlines, network errors
// (net.Error, refused or reset connections, unexpected EOF); and these
// permanent: panics and payloads that cannot be
// decoded (not Confluent-framed, unknown schema id, incompatible or
// malformed Avro). Everything else is permanent: a handler that returns
// an error about an event is taken at its word, after the policy's
// attempts. Mark errors from your own dependencies with Transient.
func Classify(err error) Kind {
	var m *marked
	if errors.As(err, &m) {
		return m.kind
	}
	var p *PanicError
	switch {
	case errors.As(err, &p),
		errors.Is(err, schema.ErrNotFramed), errors.Is(err, schema.ErrUnknownSchemaID),
		errors.Is(err, schema.ErrIncompatible), errors.Is(err, schema.ErrMalformed),
		errors.Is(err, schema.ErrInvalidValue):
		return KindPermanent
	}
	var ne net.Error
	switch {
	case errors.Is(err, schema.ErrRegistryUnavailable),
		errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed):
		return KindTransient
	}
	return KindPermanent
}

// Undecodable reports whether err says the payload cannot be decoded,
// which makes the event dead at the first attempt: decoding it again
// gives the same answer.
func Undecodable(err error) bool {
	return errors.Is(err, schema.ErrNotFramed) || errors.Is(err, schema.ErrUnknownSchemaID) ||
		errors.Is(err, schema.ErrIncompatible) || errors.Is(err, schema.ErrMalformed) ||
		errors.Is(err, schema.ErrUnsupportedType)
}
