package sagas_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/sagas/store"
	"github.com/recq/recq/tracing"
)

// A saga is one more hop of the flow's trace: the event it starts on, its
// routing, the command it sends and the second aggregate's handling of it
// are all in the trace of the event's producer, each the child of the one
// before.
func TestSagaHopIsInTheTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	shutdown, err := tracing.Setup(context.Background(), tracing.WithExporter(exp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })
	w := newWorld(t)
	s := orderSagaDef(time.Hour)
	w.run(t, s, store.NewMemory())
	ctx, root := tracing.Start(context.Background(), "place order", trace.SpanKindClient, tracing.Flow{})
	if err := w.pub.PublishValue(ctx, ordersTopic, "o1", OrderPlaced{Order: "o1", Amount: 5}); err != nil {
		t.Fatal(err)
	}
	tracing.End(root, nil)
	routed := s.Group() + ".routed"
	chain := []string{"send " + ordersTopic, "process " + ordersTopic, "send " + routed, "process " + routed,
		"invoke ledger", "send ledger.commands", "process ledger.commands", "ledger.Handle(Charge)"}
	var byName map[string]tracetest.SpanStub
	byID := map[trace.SpanID]tracetest.SpanStub{}
	testenv.Eventually(t, "the saga's hop in the trace", 30*time.Second, func() error {
		byName = map[string]tracetest.SpanStub{}
		for _, sp := range exp.GetSpans() {
			if sp.SpanContext.TraceID() == root.SpanContext().TraceID() {
				byName[sp.Name], byID[sp.SpanContext.SpanID()] = sp, sp
			}
		}
		for _, n := range chain {
			if _, ok := byName[n]; !ok {
				return fmt.Errorf("no span %q in the trace yet", n)
			}
		}
		return nil
	})
	parentOf := map[string]string{
		"send " + ordersTopic:     "place order",
		"process " + ordersTopic:  "send " + ordersTopic,
		"process " + routed:       "send " + routed,
		"process ledger.commands": "send ledger.commands",
		"send ledger.commands":    "invoke ledger",
	}
	byName["place order"] = tracetest.SpanStub{SpanContext: root.SpanContext()}
	for child, parent := range parentOf {
		if got, want := byName[child].Parent.SpanID(), byName[parent].SpanContext.SpanID(); got != want {
			t.Errorf("%q has parent %s; want %q (%s)", child, got, parent, want)
		}
	}
	// The routed record is sent while its event is handled.
	under := func(name, ancestor string) bool {
		want := byName[ancestor].SpanContext.SpanID()
		for sp, ok := byName[name], true; ok; sp, ok = byID[sp.Parent.SpanID()] {
			if sp.Parent.SpanID() == want {
				return true
			}
		}
		return false
	}
	if !under("send "+routed, "process "+ordersTopic) || !under("invoke ledger", "process "+routed) {
		t.Errorf("the routing or the command is not under the saga's handling: %v", byName)
	}
}
