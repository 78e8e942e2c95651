package streams

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Logger returns l (slog.Default() if nil) with a handler that adds, to
// every line logged with a context, the flow of the message that context
// is handling (correlation_id, causation_id: the message's cause, and
// message_id) and the trace (trace_id, span_id) when tracing is on. The
// components log through it, so a line about a record names its flow
// without the service's code; a service can use it for its own lines, with
// the *Context methods (InfoContext, LogAttrs, ...).
func Logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		l = slog.Default()
	}
	if _, ok := l.Handler().(flowHandler); ok {
		return l
	}
	return slog.New(flowHandler{l.Handler()})
}

type flowHandler struct{ slog.Handler }

func (h flowHandler) Handle(ctx context.Context, r slog.Record) error {
	if e, ok := MessageFromContext(ctx); ok {
		for _, a := range [...]struct{ k, v string }{{"correlation_id", e.CorrelationID}, {"causation_id", e.CausationID}, {"message_id", e.ID}} {
			if a.v != "" {
				r.AddAttrs(slog.String(a.k, a.v))
			}
		}
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h flowHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return flowHandler{h.Handler.WithAttrs(as)}
}

func (h flowHandler) WithGroup(name string) slog.Handler {
	return flowHandler{h.Handler.WithGroup(name)}
}
