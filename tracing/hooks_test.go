package tracing_test

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

// produce writes recs with a recq client (and its hooks) and returns them
// as a consumer reads them back.
func produce(t *testing.T, ctx context.Context, recs ...*kgo.Record) []*kgo.Record {
	t.Helper()
	addr := testenv.Kafka(t)
	testenv.Topic(t, addr, "t", 1)
	cl := testenv.Client(t, addr)
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	rd := testenv.Client(t, addr, kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []*kgo.Record
	for len(got) < len(recs) {
		fs := rd.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		got = append(got, fs.Records()...)
	}
	return got
}

func traceparents(r *kgo.Record) []string {
	var tps []string
	for _, h := range r.Headers {
		if h.Key == streams.HeaderTraceParent {
			tps = append(tps, string(h.Value))
		}
	}
	return tps
}

// Off, records go out as they were given: no trace header is added.
func TestOffAddsNoHeaders(t *testing.T) {
	got := produce(t, context.Background(), &kgo.Record{Topic: "t", Value: []byte("v")})
	if len(got[0].Headers) != 0 {
		t.Fatalf("headers %v; want none with tracing off", got[0].Headers)
	}
}

// A record produced with no span in its context but a trace in its
// headers (a redriven event) continues that trace: its send span is the
// child of the span its headers name, and replaces the header, once.
func TestSendContinuesTheTraceInTheHeaders(t *testing.T) {
	exp := setup(t)
	const upstream = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	// Two records share one headers slice with room to spare: setting the
	// header on one must not write into the other's.
	shared := make([]kgo.RecordHeader, 1, 4)
	shared[0] = kgo.RecordHeader{Key: streams.HeaderTraceParent, Value: []byte(upstream)}
	got := produce(t, context.Background(),
		&kgo.Record{Topic: "t", Value: []byte("a"), Headers: shared},
		&kgo.Record{Topic: "t", Value: []byte("b"), Headers: shared})
	if string(shared[0].Value) != upstream || len(shared[:cap(shared)][1].Key) != 0 {
		t.Fatalf("the shared headers changed: %v", shared[:cap(shared)])
	}
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans; want 2 send spans", len(spans))
	}
	for i, r := range got {
		tps := traceparents(r)
		if len(tps) != 1 {
			t.Fatalf("record %d: traceparent headers %v; want one", i, tps)
		}
		s := spans[i]
		if s.Name != "send t" || s.SpanKind != trace.SpanKindProducer {
			t.Errorf("span %q kind %v; want send t, producer", s.Name, s.SpanKind)
		}
		if s.Parent.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent.SpanID().String() != "00f067aa0ba902b7" {
			t.Errorf("span %d parent %s/%s; want the upstream span of the headers", i, s.Parent.TraceID(), s.Parent.SpanID())
		}
		if !strings.Contains(tps[0], s.SpanContext.SpanID().String()) {
			t.Errorf("record %d carries %s; want its send span %s", i, tps[0], s.SpanContext.SpanID())
		}
	}
}
