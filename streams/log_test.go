package streams_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/recq/recq/streams"
)

// A line logged with a context names the flow of the message it handles
// and its trace; one without says nothing of either.
func TestLoggerAddsTheFlowAndTrace(t *testing.T) {
	var buf bytes.Buffer
	log := streams.Logger(slog.New(slog.NewTextHandler(&buf, nil))).With("group", "g")
	if streams.Logger(log).Handler() != log.Handler() {
		t.Fatal("Logger wrapped its own handler twice")
	}
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := streams.ContextWithMessage(context.Background(), streams.Envelope{ID: "m1", CorrelationID: "c1", CausationID: "p1"})
	ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	log.InfoContext(ctx, "handled")
	log.Info("idle")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := "group=g correlation_id=c1 causation_id=p1 message_id=m1 trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7"
	if len(lines) != 2 || !strings.HasSuffix(lines[0], want) {
		t.Fatalf("lines %q; want the first to end with %q", lines, want)
	}
	if strings.Contains(lines[1], "correlation_id") || strings.Contains(lines[1], "trace_id") {
		t.Fatalf("a line without a context names a flow: %q", lines[1])
	}
}
