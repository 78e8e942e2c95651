package deadletter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
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

func (m *marked) Error() string   { return m.err.Error() }
func (m *marked) Unwrap() error   { return m.err }
func (m *marked) Permanent() bool { return m.kind == KindPermanent }

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

// Permanent: a panic is the event's fault.
func (p *PanicError) Permanent() bool { return true }

// Classify says whether err is transient or permanent. An error in err's
// chain that says what it is wins, the outermost first: one with a
// Permanent() bool method (Permanent and Transient marks, panics, and
// package schema's errors: an undecodable payload is permanent, an
// unavailable registry transient). Otherwise these are transient: context
// deadlines and network errors (net.Error, refused or reset connections,
// unexpected EOF). Everything else is permanent: a handler that returns an
// error about an event is taken at its word, after the policy's attempts.
// Mark errors from your own dependencies with Transient, or give them a
// Permanent() bool method.
func Classify(err error) Kind {
	var says interface{ Permanent() bool }
	if errors.As(err, &says) {
		if says.Permanent() {
			return KindPermanent
		}
		return KindTransient
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed):
		return KindTransient
	}
	return KindPermanent
}

// Undecodable reports whether err says the payload cannot be decoded (an
// error in its chain with an Undecodable() bool method reporting true, as
// package schema's do), which makes the event dead at the first attempt:
// decoding it again gives the same answer.
func Undecodable(err error) bool {
	var says interface{ Undecodable() bool }
	return errors.As(err, &says) && says.Undecodable()
}

// ReasonFor is the Reason of an event that died of err: a panic, a payload
// that cannot be decoded, or else the handler's error.
func ReasonFor(err error) Reason {
	var pe *PanicError
	switch {
	case errors.As(err, &pe):
		return ReasonPanic
	case Undecodable(err):
		return ReasonUndecodable
	}
	return ReasonHandler
}
