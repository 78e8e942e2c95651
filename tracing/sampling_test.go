package tracing_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/recq/recq/streams"
	"github.com/recq/recq/tracing"
)

// handleAndPublish handles a record carrying traceparent tp as the
// consumers loop does (a process span, a handler span) and publishes one
// record under the handler's context; it returns what was published and
// whether either span recorded.
func handleAndPublish(t *testing.T, tp string) (*kgo.Record, bool) {
	t.Helper()
	in := &kgo.Record{Topic: "in", Key: []byte("k")}
	if tp != "" {
		in.Headers = []kgo.RecordHeader{{Key: streams.HeaderTraceParent, Value: []byte(tp)}}
	}
	ctx, process := tracing.Process(context.Background(), in, "g", streams.FlowOf)
	hctx, handler := tracing.Start(ctx, "g.On(E)", trace.SpanKindInternal, tracing.Flow{})
	got := produce(t, hctx, &kgo.Record{Topic: "t", Value: []byte("v")})
	recorded := process.IsRecording() || handler.IsRecording()
	tracing.End(handler, nil)
	tracing.End(process, nil)
	return got[0], recorded
}

const (
	unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	sampled   = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
)

// Under the default sampler (parent-based), a record whose trace is not
// sampled gets no span, and what its handler publishes carries the same
// unsampled trace on.
func TestUnsampledTraceMakesNoSpansAndPassesOn(t *testing.T) {
	t.Setenv("OTEL_TRACES_SAMPLER", "")
	exp := setup(t)
	out, recorded := handleAndPublish(t, unsampled)
	if recorded {
		t.Error("a span recorded under an unsampled parent")
	}
	if tps := traceparents(out); len(tps) != 1 || tps[0] != unsampled {
		t.Errorf("published record's traceparent %v; want the upstream's %s", tps, unsampled)
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans exported; want none", n)
	}
}

// With always_off nothing records, whatever the upstream says, and the
// upstream's trace is passed on as it is; a record without one gets none.
func TestAlwaysOffMakesNoSpans(t *testing.T) {
	t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
	exp := setup(t)
	out, recorded := handleAndPublish(t, sampled)
	if recorded {
		t.Error("a span recorded with always_off")
	}
	if tps := traceparents(out); len(tps) != 1 || tps[0] != sampled {
		t.Errorf("published record's traceparent %v; want the upstream's %s", tps, sampled)
	}
	if out, _ := handleAndPublish(t, ""); len(traceparents(out)) != 0 {
		t.Errorf("a record with no upstream trace got %v", traceparents(out))
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans exported; want none", n)
	}
}

// A sampled upstream under the default sampler is recorded: the process
// and handler spans, and the published record's send span, its child.
func TestSampledTraceRecords(t *testing.T) {
	t.Setenv("OTEL_TRACES_SAMPLER", "")
	exp := setup(t)
	out, recorded := handleAndPublish(t, sampled)
	if !recorded {
		t.Fatal("no span recorded under a sampled parent")
	}
	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d spans; want send, handler and process", len(spans))
	}
	send := spans[0]
	if tps := traceparents(out); len(tps) != 1 || tps[0] != "00-4bf92f3577b34da6a3ce929d0e0e4736-"+send.SpanContext.SpanID().String()+"-01" {
		t.Errorf("published record's traceparent %v; want its send span %s", tps, send.SpanContext.SpanID())
	}
}
