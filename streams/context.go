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

// A MessageSource gives the envelope of the message being handled when
// asked, so a consumer loop need not read every record's envelope.
type MessageSource interface {
	HandledEnvelope() Envelope
}

// ContextWithMessageSource is ContextWithMessage for consumer loops: src
// is asked for the envelope only when something publishes, and a loop can
// keep one context for a whole batch, pointing src at each record in turn.
// Such a context is valid only while its handler runs (not in goroutines
// that outlive it): afterwards it names a later message.
func ContextWithMessageSource(ctx context.Context, src MessageSource) context.Context {
	return context.WithValue(ctx, handledKey{}, src)
}

// MessageFromContext returns the envelope stored by ContextWithMessage or
// ContextWithMessageSource.
func MessageFromContext(ctx context.Context) (Envelope, bool) {
	switch e := ctx.Value(handledKey{}).(type) {
	case Envelope:
		return e, true
	case MessageSource:
		return e.HandledEnvelope(), true
	}
	return Envelope{}, false
}

// Stamp completes r's envelope from ctx: a message id when r has none, and the
// correlation and causation ids of the message being handled (see the package
// documentation). Headers already set on r win, so callers can override.
func Stamp(ctx context.Context, r *kgo.Record) {
	handled, _ := MessageFromContext(ctx)
	_, hasID := Header(r, HeaderID)
	_, hasCorr := Header(r, HeaderCorrelationID)
	_, hasCause := Header(r, HeaderCausationID)
	_, hasCtx := Header(r, HeaderContext)
	// Every value this adds lives in one buffer and the headers grow once:
	// two allocations per record, whatever is added. Header values are
	// never mutated, so sharing one backing array is safe.
	buf := make([]byte, 0, idLen+len(handled.CorrelationID)+len(handled.ID)+len(handled.Context))
	// Always a new slice: appending in place could write into the spare
	// capacity of a headers slice that other records share.
	r.Headers = append(make([]kgo.RecordHeader, 0, len(r.Headers)+4), r.Headers...)
	add := func(key string, value []byte) {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: key, Value: value})
	}
	var id []byte
	if hasID {
		v, _ := Header(r, HeaderID)
		id = []byte(v)
	} else {
		buf = appendID(buf)
		id = buf[len(buf)-idLen:]
		add(HeaderID, id)
	}
	if !hasCorr {
		corr := id // a new flow: its correlation id is its first message's id
		if c := handled.CorrelationID; c != "" {
			buf = append(buf, c...)
			corr = buf[len(buf)-len(c):]
		} else if c := handled.ID; c != "" {
			buf = append(buf, c...)
			corr = buf[len(buf)-len(c):]
		}
		add(HeaderCorrelationID, corr)
	}
	if c := handled.ID; !hasCause && c != "" {
		buf = append(buf, c...)
		add(HeaderCausationID, buf[len(buf)-len(c):])
	}
	if c := handled.Context; !hasCtx && c != "" {
		buf = append(buf, c...)
		add(HeaderContext, buf[len(buf)-len(c):])
	}
}
