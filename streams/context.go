package streams

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

type handledKey struct{}

// ContextWithMessage returns a context carrying the envelope of the message
// being handled, so records published with it continue its flow.
func ContextWithMessage(ctx context.Context, handled Envelope) context.Context {
	return context.WithValue(ctx, handledKey{}, handled)
}

// ContextWithCorrelationID starts (or joins) a flow with a known correlation
// id, e.g. an incoming HTTP request id, when no message is being handled.
func ContextWithCorrelationID(ctx context.Context, correlationID string) context.Context {
	return ContextWithMessage(ctx, Envelope{CorrelationID: correlationID})
}

// MessageFromContext returns the envelope stored by ContextWithMessage.
func MessageFromContext(ctx context.Context) (Envelope, bool) {
	e, ok := ctx.Value(handledKey{}).(Envelope)
	return e, ok
}

// Stamp completes r's envelope from ctx: a message id when r has none, and the
// correlation and causation ids of the message being handled (see the package
// documentation). Headers already set on r win, so callers can override.
func Stamp(ctx context.Context, r *kgo.Record) {
	if cap(r.Headers)-len(r.Headers) < 2 {
		// Room for id and correlation id at once: one allocation, not two growths.
		r.Headers = append(make([]kgo.RecordHeader, 0, len(r.Headers)+4), r.Headers...)
	}
	var id []byte
	if v, ok := Header(r, HeaderID); ok {
		id = []byte(v)
	} else {
		id = newID()
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderID, Value: id})
	}
	handled, _ := MessageFromContext(ctx)
	if _, ok := Header(r, HeaderCorrelationID); !ok {
		corr := id // a new flow: header values are never mutated, so sharing is safe
		if handled.CorrelationID != "" {
			corr = []byte(handled.CorrelationID)
		} else if handled.ID != "" {
			corr = []byte(handled.ID)
		}
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderCorrelationID, Value: corr})
	}
	if _, ok := Header(r, HeaderCausationID); !ok && handled.ID != "" {
		SetHeader(r, HeaderCausationID, handled.ID)
	}
	if _, ok := Header(r, HeaderContext); !ok && handled.Context != "" {
		SetHeader(r, HeaderContext, handled.Context)
	}
}
