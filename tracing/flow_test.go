package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/consumers"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/internal/fixture/todo"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
	"github.com/recq/recq/tracing"
)

// setup turns tracing on for the test, into an in-memory exporter.
func setup(t *testing.T, opts ...tracing.Option) *tracetest.InMemoryExporter {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	shutdown, err := tracing.Setup(context.Background(), append(opts, tracing.WithExporter(exp))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return exp
}

// flow runs the todo aggregate and a projector of its events on a broker
// of its own, sends one CreateList and waits until the projector has
// handled ListCreated; fail, if not nil, is the projector's error.
func flow(t *testing.T, fail error) (cmdID string) {
	t.Helper()
	cmdID, _ = flowWith(t, func() error { return fail })
	return cmdID
}

// flowWith is flow with the projector's handler ending as handle does (it
// may panic); it returns the invoker too, for more commands.
func flowWith(t *testing.T, handle func() error) (cmdID string, iv *aggregates.Invoker) {
	t.Helper()
	addr, serde := testenv.Kafka(t), testenv.Serde(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := aggregates.EnsureTopics(ctx, streams.NewAdmin(testenv.Client(t, addr)), todo.Name, 2); err != nil {
		t.Fatal(err)
	}
	r, err := aggregates.NewRunner(todo.Aggregate(), serde, []string{addr})
	if err != nil {
		t.Fatal(err)
	}
	testenv.RunUntilCleanup(t, r.Run)
	handled := make(chan struct{}, 8)
	p := consumers.NewProjector("todo", "trace", 1, aggregates.EventsTopic(todo.Name))
	consumers.On(p, func(ctx context.Context, _ todo.ListCreated, _ consumers.Metadata) error {
		handled <- struct{}{}
		return handle()
	}, consumers.Retry(deadletter.Policy{Attempts: 2, Backoff: time.Millisecond}))
	pr, err := consumers.NewRunner(p, serde, []string{addr})
	if err != nil {
		t.Fatal(err)
	}
	testenv.RunUntilCleanup(t, pr.Run)
	iv, err = aggregates.NewInvoker(ctx, []string{addr}, serde)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(iv.Close)
	res, err := iv.Send(ctx, todo.Name, "L1", todo.CreateList{Name: "groceries"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-handled:
	case <-ctx.Done():
		t.Fatal("the projector did not handle ListCreated")
	}
	return res.CommandID, iv
}

// spans waits until the exporter holds a span named name, and returns
// all it holds by name (the first of each).
func spans(t *testing.T, exp *tracetest.InMemoryExporter, names ...string) map[string]tracetest.SpanStub {
	t.Helper()
	var byName map[string]tracetest.SpanStub
	testenv.Eventually(t, "the flow's spans", 30*time.Second, func() error {
		byName = map[string]tracetest.SpanStub{}
		for _, s := range exp.GetSpans() {
			if _, ok := byName[s.Name]; !ok {
				byName[s.Name] = s
			}
		}
		for _, n := range names {
			if _, ok := byName[n]; !ok {
				return fmt.Errorf("no span %q; have %v", n, keys(byName))
			}
		}
		return nil
	})
	return byName
}

func keys(m map[string]tracetest.SpanStub) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func attr(s tracetest.SpanStub, k string) attribute.Value {
	for _, a := range s.Attributes {
		if string(a.Key) == k {
			return a.Value
		}
	}
	return attribute.Value{}
}

// childOf fails unless child's parent is parent.
func childOf(t *testing.T, child, parent tracetest.SpanStub) {
	t.Helper()
	if child.Parent.SpanID() != parent.SpanContext.SpanID() || child.SpanContext.TraceID() != parent.SpanContext.TraceID() {
		t.Errorf("%q: parent %s/%s; want %q (%s/%s)", child.Name, child.Parent.TraceID(), child.Parent.SpanID(),
			parent.Name, parent.SpanContext.TraceID(), parent.SpanContext.SpanID())
	}
}

const (
	invoke      = "invoke todo"
	sendCmd     = "send todo.commands"
	processCmd  = "process todo.commands"
	handleCmd   = "todo.Handle(CreateList)"
	sendEvent   = "send todo.events"
	processEvt  = "process todo.events"
	handleEvent = "todo.trace.On(ListCreated)"
	sendReply   = "send recq.replies"
)

// One Send is one trace: the invoker's round trip, its command, the
// aggregate's handling, the event and the projector's handling of it, each
// the child of the one before. The projector's handler succeeds at its
// first attempt: that is the process span's (which names the handler),
// with no span of its own.
func TestOneSendIsOneTrace(t *testing.T) {
	exp := setup(t)
	cmdID := flow(t, nil)
	s := spans(t, exp, invoke, sendCmd, processCmd, handleCmd, sendEvent, processEvt, sendReply)
	root := s[invoke]
	if root.Parent.IsValid() || root.SpanKind != trace.SpanKindClient {
		t.Errorf("%q: parent %v, kind %v; want a root, client", invoke, root.Parent, root.SpanKind)
	}
	childOf(t, s[sendCmd], root)
	childOf(t, s[processCmd], s[sendCmd])
	childOf(t, s[handleCmd], s[processCmd])
	childOf(t, s[sendEvent], s[processCmd])
	childOf(t, s[sendReply], s[processCmd])
	childOf(t, s[processEvt], s[sendEvent])
	if _, ok := s[handleEvent]; ok {
		t.Errorf("a span %q for a first attempt that succeeded; want none", handleEvent)
	}
	for name, kind := range map[string]trace.SpanKind{sendCmd: trace.SpanKindProducer, sendEvent: trace.SpanKindProducer,
		processCmd: trace.SpanKindConsumer, processEvt: trace.SpanKindConsumer, handleCmd: trace.SpanKindInternal} {
		if s[name].SpanKind != kind {
			t.Errorf("%q: kind %v; want %v", name, s[name].SpanKind, kind)
		}
	}
	if got := attr(root, "messaging.message.id").AsString(); got != cmdID {
		t.Errorf("%q: message id %q; want the command id %q", invoke, got, cmdID)
	}
	// Every span names the flow: the command starts it.
	for _, name := range []string{invoke, sendCmd, processCmd, handleCmd, sendEvent, processEvt, sendReply} {
		if got := attr(s[name], "recq.correlation_id").AsString(); got != cmdID {
			t.Errorf("%q: correlation id %q; want the command's %q", name, got, cmdID)
		}
	}
	evt := s[processEvt]
	want := map[string]string{
		"messaging.system":              "kafka",
		"messaging.operation.type":      "process",
		"messaging.destination.name":    "todo.events",
		"messaging.consumer.group.name": "todo.trace.v1",
		"messaging.kafka.message.key":   "L1",
		"recq.correlation_id":           cmdID, // the flow's first message is the command
		"recq.aggregate_id":             "L1",
		"recq.type":                     "todo.ListCreated",
		"recq.handler":                  handleEvent,
	}
	for k, v := range want {
		if got := attr(evt, k).Emit(); got != v {
			t.Errorf("%q: %s = %q; want %q", processEvt, k, got, v)
		}
	}
	for _, k := range []string{"messaging.destination.partition.id", "messaging.kafka.offset", "messaging.message.id", "recq.causation_id"} {
		if attr(evt, k).Type() == attribute.INVALID {
			t.Errorf("%q: no %s", processEvt, k)
		}
	}
	if got := attr(evt, "recq.causation_id").AsString(); got != cmdID {
		t.Errorf("%q: causation %q; want the command %q", processEvt, got, cmdID)
	}
	if got, want := attr(s[sendEvent], "messaging.kafka.offset"), attr(evt, "messaging.kafka.offset"); got != want {
		t.Errorf("send span offset %v, process span offset %v: not the same record", got.Emit(), want.Emit())
	}
}

// With WithLinks the projector's process span starts a trace of its own,
// linked to the event's send span.
func TestProcessSpansLinkWithLinks(t *testing.T) {
	exp := setup(t, tracing.WithLinks())
	flow(t, nil)
	s := spans(t, exp, sendEvent, processEvt)
	evt := s[processEvt]
	if evt.Parent.IsValid() {
		t.Errorf("%q has parent %v; want a root", processEvt, evt.Parent.SpanID())
	}
	if len(evt.Links) != 1 || evt.Links[0].SpanContext.SpanID() != s[sendEvent].SpanContext.SpanID() {
		t.Errorf("%q links %v; want one, to %q", processEvt, evt.Links, sendEvent)
	}
}

// Each attempt of a failing handler is a span with its error, the child of
// the process span (the first made once it failed, from its start); the
// process span of the event that died ends with it too.
func TestHandlerErrorsAreRecorded(t *testing.T) {
	exp := setup(t)
	flow(t, deadletter.Permanent(errors.New("refused for good")))
	testenv.Eventually(t, "the dead event's process span", 30*time.Second, func() error {
		var process, handler int
		for _, s := range exp.GetSpans() {
			if s.Status.Code != codes.Error || !strings.Contains(s.Status.Description, "refused for good") {
				continue
			}
			if attr(s, "error.type").AsString() == "" {
				return fmt.Errorf("%q has no error.type", s.Name)
			}
			switch s.Name {
			case processEvt:
				process++
			case handleEvent:
				handler++
				if s.SpanKind != trace.SpanKindInternal || !s.StartTime.Before(s.EndTime) {
					return fmt.Errorf("%q: kind %v, from %v to %v; want internal, ending after it starts", s.Name, s.SpanKind, s.StartTime, s.EndTime)
				}
			}
		}
		if process != 1 || handler != 2 { // Attempts: 2
			return fmt.Errorf("failed spans: %d process, %d handler; want 1 and 2", process, handler)
		}
		return nil
	})
}

// A handler that fails once and then succeeds has a span per attempt: the
// first with its error, the second without, both children of the record's
// process span, which ends without error.
func TestRetriedHandlerHasASpanPerAttempt(t *testing.T) {
	exp := setup(t)
	var calls int
	flowWith(t, func() error {
		if calls++; calls == 1 {
			return errors.New("not yet")
		}
		return nil
	})
	testenv.Eventually(t, "the handler's two attempt spans", 30*time.Second, func() error {
		var process tracetest.SpanStub
		var attempts []tracetest.SpanStub
		for _, s := range exp.GetSpans() {
			switch s.Name {
			case processEvt:
				process = s
			case handleEvent:
				attempts = append(attempts, s)
			}
		}
		if !process.SpanContext.IsValid() || len(attempts) != 2 {
			return fmt.Errorf("%d attempt spans, process span ended: %v; want 2 and true", len(attempts), process.SpanContext.IsValid())
		}
		sort.Slice(attempts, func(i, j int) bool { return attempts[i].StartTime.Before(attempts[j].StartTime) })
		if attempts[0].Status.Code != codes.Error || attempts[1].Status.Code == codes.Error || process.Status.Code == codes.Error {
			return fmt.Errorf("statuses: attempts %v, %v, process %v; want error, not, not", attempts[0].Status.Code, attempts[1].Status.Code, process.Status.Code)
		}
		for _, a := range attempts {
			if a.Parent.SpanID() != process.SpanContext.SpanID() {
				return fmt.Errorf("attempt span's parent %s; want the process span %s", a.Parent.SpanID(), process.SpanContext.SpanID())
			}
		}
		return nil
	})
}

// Without an exporter, an OTLP endpoint or a Sentry DSN in the environment, Setup
// leaves tracing off.
func TestSetupWithoutEnvironmentIsOff(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("SENTRY_DSN", "")
	shutdown, err := tracing.Setup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	if tracing.Enabled() {
		t.Fatal("Setup without an exporter or OTEL_EXPORTER_OTLP_ENDPOINT turned tracing on")
	}
}

// A protocol recq does not export by is refused with what to set instead.
func TestSetupRefusesGRPC(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	_, err := tracing.Setup(context.Background())
	if err == nil || !strings.Contains(err.Error(), "http/protobuf") {
		t.Fatalf("Setup with OTEL_EXPORTER_OTLP_PROTOCOL=grpc: %v; want an error naming http/protobuf", err)
	}
	if tracing.Enabled() {
		t.Fatal("tracing on after a failed Setup")
	}
}
