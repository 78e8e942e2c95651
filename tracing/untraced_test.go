package tracing_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/recq/recq/consumers"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
	"github.com/recq/recq/tracing"
)

// A handler registered with Untraced has no process or handler span, and
// what it publishes still joins the flow's trace: its send span is the
// child of the handled record's.
func TestUntracedHandlerPublishesIntoTheTrace(t *testing.T) {
	exp := setup(t)
	_, _, pub, r := relay(t, "hot", "path", consumers.Untraced())
	testenv.RunUntilCleanup(t, r.Run)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rctx, root := tracing.Start(ctx, "root", trace.SpanKindClient, tracing.Flow{})
	if err := pub.PublishValue(rctx, "in", "k", Tick{N: 1}); err != nil {
		t.Fatal(err)
	}
	tracing.End(root, nil)
	var byName map[string]tracetest.SpanStub
	testenv.Eventually(t, "the handler's send span", 30*time.Second, func() error {
		byName = map[string]tracetest.SpanStub{}
		for _, s := range exp.GetSpans() {
			byName[s.Name] = s
		}
		if _, ok := byName["send out"]; !ok {
			return fmt.Errorf("no send out span; have %v", keys(byName))
		}
		return nil
	})
	for _, n := range []string{"process in", "hot.path.On(Tick)"} {
		if _, ok := byName[n]; ok {
			t.Errorf("span %q of an untraced handler", n)
		}
	}
	childOf(t, byName["send out"], byName["send in"])
	if byName["send out"].SpanContext.TraceID() != root.SpanContext().TraceID() {
		t.Errorf("send out is in trace %s; want the root's %s", byName["send out"].SpanContext.TraceID(), root.SpanContext().TraceID())
	}
}

// relay is a projector <app>.<name>.v1 reading topic "in" that publishes
// each Tick to "out", keyed by its N, on a new broker; pub publishes with
// serde. The runner is not started.
func relay(t *testing.T, app, name string, opts ...consumers.HandlerOption) (addr string, serde *schema.Serde, pub *streams.Publisher, r *consumers.Runner) {
	t.Helper()
	addr, serde = testenv.Kafka(t), testenv.Serde(t)
	testenv.Topic(t, addr, "in", 1)
	testenv.Topic(t, addr, "out", 1)
	pub, err := streams.NewPublisher([]string{addr}, streams.WithCodec(serde))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close(context.Background()) })
	p := consumers.NewProjector(app, name, 1, "in")
	consumers.On(p, func(ctx context.Context, e Tick, _ consumers.Metadata) error {
		return pub.PublishValue(ctx, "out", strconv.Itoa(e.N), e)
	}, opts...)
	if r, err = consumers.NewRunner(p, serde, []string{addr}); err != nil {
		t.Fatal(err)
	}
	return addr, serde, pub, r
}
