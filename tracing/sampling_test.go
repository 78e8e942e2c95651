package tracing_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
	"github.com/recq/recq/tracing"
)

// handleAndPublish handles a record carrying traceparent tp as the
// consumers loop does (a process span naming its handler, whose first
// attempt has no span of its own) and publishes one record under the
// process span's context; it returns what was published and whether the
// span recorded.
func handleAndPublish(t *testing.T, tp string) (*kgo.Record, bool) {
	t.Helper()
	in := &kgo.Record{Topic: "in", Key: []byte("k")}
	if tp != "" {
		in.Headers = []kgo.RecordHeader{{Key: streams.HeaderTraceParent, Value: []byte(tp)}}
	}
	ctx, process := tracing.Process(context.Background(), in, "g", "g.On(E)", streams.FlowOf)
	got := produce(t, ctx, &kgo.Record{Topic: "t", Value: []byte("v")})
	recorded := process.IsRecording()
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
// span, and the published record's send span, its child.
func TestSampledTraceRecords(t *testing.T) {
	t.Setenv("OTEL_TRACES_SAMPLER", "")
	exp := setup(t)
	out, recorded := handleAndPublish(t, sampled)
	if !recorded {
		t.Fatal("no span recorded under a sampled parent")
	}
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans; want send and process", len(spans))
	}
	send, process := spans[0], spans[1]
	if send.Parent.SpanID() != process.SpanContext.SpanID() {
		t.Errorf("send span's parent %s; want the process span %s", send.Parent.SpanID(), process.SpanContext.SpanID())
	}
	if tps := traceparents(out); len(tps) != 1 || tps[0] != "00-4bf92f3577b34da6a3ce929d0e0e4736-"+send.SpanContext.SpanID().String()+"-01" {
		t.Errorf("published record's traceparent %v; want its send span %s", tps, send.SpanContext.SpanID())
	}
}

// A consumers loop keeps one context per batch for the records it makes no
// span for (tracing.Upstream): what each record's handler publishes
// carries that record's trace, not the one before it in the batch. The
// three records are produced in one call to one partition, so they are
// usually handled in one batch.
func TestLoopPassesOnEachRecordsOwnTrace(t *testing.T) {
	const other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00" // unsampled too
	for _, c := range []struct {
		sampler string
		spans   bool // the record without a trace gets a root span (parent-based, roots sampled)
	}{{"always_off", false}, {"", true}} {
		t.Run("sampler="+c.sampler, func(t *testing.T) {
			t.Setenv("OTEL_TRACES_SAMPLER", c.sampler)
			exp := setup(t)
			addr, serde, _, r := relay(t, "pass", "on")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// A plain client: the records keep the traces given here.
			raw, err := kgo.NewClient(kgo.SeedBrokers(addr))
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			var recs []*kgo.Record
			for n, tp := range []string{unsampled, "", other} {
				v, typ, err := serde.Encode(ctx, "in", Tick{N: n})
				if err != nil {
					t.Fatal(err)
				}
				rec := &kgo.Record{Topic: "in", Value: v}
				streams.Envelope{Type: typ}.Write(rec)
				if tp != "" {
					streams.SetHeader(rec, streams.HeaderTraceParent, tp)
				}
				recs = append(recs, rec)
			}
			if err := raw.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			testenv.RunUntilCleanup(t, r.Run)
			rd := testenv.Client(t, addr, kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			got := map[string][]string{}
			for len(got) < 3 {
				fs := rd.PollFetches(ctx)
				if err := fs.Err(); err != nil {
					t.Fatal(err)
				}
				fs.EachRecord(func(o *kgo.Record) { got[string(o.Key)] = traceparents(o) })
			}
			for key, want := range map[string]string{"0": unsampled, "2": other} {
				if tps := got[key]; len(tps) != 1 || tps[0] != want {
					t.Errorf("published for record %s: traceparent %v; want its own %s", key, tps, want)
				}
			}
			switch tps := got["1"]; {
			case !c.spans && len(tps) != 0:
				t.Errorf("published for the record without a trace: traceparent %v; want none", tps)
			case c.spans && (len(tps) != 1 || strings.Contains(tps[0], "4bf92f3577b34da6a3ce929d0e0e4736")):
				t.Errorf("published for the record without a trace: traceparent %v; want one of a new trace", tps)
			}
			if n := len(exp.GetSpans()); !c.spans && n != 0 {
				t.Errorf("%d spans with always_off; want none", n)
			}
		})
	}
}
