package tracing_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/internal/fixture/todo"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/tracing"
)

// sentryItem is what the tests read of an envelope's event or
// transaction.
type sentryItem struct {
	Type        string            `json:"type"`
	Level       string            `json:"level"`
	Message     string            `json:"message"`
	Transaction string            `json:"transaction"`
	Tags        map[string]string `json:"tags"`
	Contexts    struct {
		Trace struct {
			TraceID string `json:"trace_id"`
			SpanID  string `json:"span_id"`
		} `json:"trace"`
	} `json:"contexts"`
	Exception []struct { // sentry-go sends the chain as a list, the outermost last
		Type       string `json:"type"`
		Value      string `json:"value"`
		Stacktrace *struct {
			Frames []struct {
				Module   string `json:"module"`
				Function string `json:"function"`
			} `json:"frames"`
		} `json:"stacktrace"`
	} `json:"exception"`
	Spans []struct {
		TraceID     string `json:"trace_id"`
		Description string `json:"description"`
	} `json:"spans"`
}

// sentryServer stands in for Sentry: it records the events and
// transactions of the envelopes sentry-go's HTTP transport posts.
type sentryServer struct {
	mu    sync.Mutex
	items []sentryItem
}

// withSentry points SENTRY_DSN at a sentryServer of the test's, then
// sets tracing up (with an in-memory exporter, to compare spans).
func withSentry(t *testing.T) (*sentryServer, *tracetest.InMemoryExporter) {
	t.Helper()
	return sentryDSN(t), setup(t)
}

// sentryDSN sets SENTRY_DSN, and no OTLP endpoint, for a sentryServer on
// 127.0.0.1.
func sentryDSN(t *testing.T) *sentryServer {
	t.Helper()
	s := &sentryServer{}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	t.Setenv("SENTRY_DSN", "http://public@"+srv.Listener.Addr().String()+"/1")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	return s
}

// SENTRY_DSN alone turns tracing on, and the shutdown flushes Sentry: the
// transaction of a span ended just before it has arrived when it returns.
func TestSentryDSNAloneTurnsTracingOn(t *testing.T) {
	srv := sentryDSN(t)
	shutdown, err := tracing.Setup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !tracing.Enabled() {
		_ = shutdown(context.Background())
		t.Fatal("Setup with SENTRY_DSN left tracing off")
	}
	_, span := tracing.Start(context.Background(), "alone", trace.SpanKindInternal, tracing.Flow{})
	tracing.End(span, nil)
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for _, it := range srv.items {
		if it.Type == "transaction" && it.Transaction == "alone" {
			return
		}
	}
	t.Fatalf("Sentry has no transaction %q after the shutdown: %+v", "alone", srv.items)
}

func (s *sentryServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rd := bufio.NewReader(bytes.NewReader(body))
	_, _ = rd.ReadBytes('\n') // the envelope's header
	for {
		line, err := rd.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) == 0 {
			if err != nil {
				break
			}
			continue
		}
		var h struct {
			Type   string `json:"type"`
			Length *int   `json:"length"`
		}
		if json.Unmarshal(line, &h) != nil {
			break
		}
		var payload []byte
		if h.Length != nil {
			payload = make([]byte, *h.Length)
			if _, err := io.ReadFull(rd, payload); err != nil {
				break
			}
		} else {
			payload, _ = rd.ReadBytes('\n')
		}
		var it sentryItem
		if (h.Type == "event" || h.Type == "transaction") && json.Unmarshal(payload, &it) == nil {
			it.Type = h.Type
			s.mu.Lock()
			s.items = append(s.items, it)
			s.mu.Unlock()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{}`))
}

// flushed waits until sentry-go has sent all it holds (every capture is
// made before its span ends), and returns the items of type typ.
func (s *sentryServer) flushed(t *testing.T, typ string) []sentryItem {
	t.Helper()
	if !sentry.Flush(30 * time.Second) {
		t.Fatal("sentry-go did not send its events")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sentryItem
	for _, it := range s.items {
		if it.Type == typ {
			out = append(out, it)
		}
	}
	return out
}

// failedSpans waits until the process span of the flow's event has ended
// with an error, and returns the failed handler attempts.
func failedSpans(t *testing.T, exp *tracetest.InMemoryExporter) (process tracetest.SpanStub, attempts map[string]tracetest.SpanStub) {
	t.Helper()
	testenv.Eventually(t, "the dead event's process span", 30*time.Second, func() error {
		attempts = map[string]tracetest.SpanStub{}
		var ok bool
		for _, s := range exp.GetSpans() {
			switch {
			case s.Status.Code != codes.Error:
			case s.Name == processEvt:
				process, ok = s, true
			case s.Name == handleEvent:
				attempts[s.SpanContext.SpanID().String()] = s
			}
		}
		if !ok {
			return errors.New("no failed " + processEvt)
		}
		return nil
	})
	return process, attempts
}

// Each failed attempt of a handler is one event, linked to its span, with
// the record's tags; the last, which made the event dead, is the dead
// event's only one.
func TestSentryCapturesHandlerFailures(t *testing.T) {
	srv, exp := withSentry(t)
	cmdID := flow(t, deadletter.Permanent(errors.New("refused for good")))
	process, attempts := failedSpans(t, exp)
	events := srv.flushed(t, "event")
	if len(events) != 2 || len(attempts) != 2 { // Attempts: 2
		t.Fatalf("%d events for %d failed attempts; want 2 and 2: %+v", len(events), len(attempts), events)
	}
	want := map[string]string{
		"component":      "todo.trace",
		"group":          "todo.trace.v1",
		"handler":        handleEvent,
		"topic":          "todo.events",
		"partition":      attr(process, "messaging.destination.partition.id").Emit(),
		"offset":         attr(process, "messaging.kafka.offset").Emit(),
		"payload_type":   "todo.ListCreated",
		"aggregate_id":   "L1",
		"correlation_id": cmdID,
		"message_id":     attr(process, "messaging.message.id").Emit(),
	}
	outcomes := map[string]string{}
	for _, ev := range events {
		for k, v := range want {
			if ev.Tags[k] != v {
				t.Errorf("event of attempt %s: tag %s = %q; want %q", ev.Tags["attempt"], k, ev.Tags[k], v)
			}
		}
		if _, ok := ev.Tags["command_id"]; ok {
			t.Errorf("a consumed event's capture has a command_id tag: %v", ev.Tags)
		}
		span, ok := attempts[ev.Contexts.Trace.SpanID]
		if !ok || ev.Contexts.Trace.TraceID != span.SpanContext.TraceID().String() {
			t.Errorf("event of attempt %s: trace %s/%s; want one of the failed attempts' spans", ev.Tags["attempt"], ev.Contexts.Trace.TraceID, ev.Contexts.Trace.SpanID)
		}
		if n := len(ev.Exception); n == 0 || !strings.Contains(ev.Exception[n-1].Value, "refused for good") {
			t.Errorf("event of attempt %s: exception %+v; want the handler's error", ev.Tags["attempt"], ev.Exception)
		}
		outcomes[ev.Tags["attempt"]] = ev.Tags["outcome"] + "/" + ev.Level
	}
	if outcomes["1"] != "retried/warning" || outcomes["2"] != "dead/error" {
		t.Errorf("outcome/level by attempt: %v; want 1: retried/warning, 2: dead/error", outcomes)
	}
}

// A panicking handler is one event per attempt, with the panic's stack
// from the handler down, not also one for its dead event.
func TestSentryCapturesAPanicOnce(t *testing.T) {
	srv, exp := withSentry(t)
	flowWith(t, func() error { panic("boom") })
	_, attempts := failedSpans(t, exp)
	var events []sentryItem
	testenv.Eventually(t, "an event per panicking attempt", 30*time.Second, func() error {
		if events = srv.flushed(t, "event"); len(events) != len(attempts) {
			got := make([]string, len(events))
			for i, ev := range events {
				got[i] = ev.Tags["attempt"] + ":" + ev.Tags["outcome"]
			}
			return fmt.Errorf("%d events (%v) for %d panicking attempts; want one each", len(events), got, len(attempts))
		}
		return nil
	})
	dead := 0
	for _, ev := range events {
		if ev.Tags["outcome"] == "dead" {
			dead++
		}
		top := ev.Exception[len(ev.Exception)-1]
		if !strings.Contains(top.Value, "boom") || top.Stacktrace == nil || len(top.Stacktrace.Frames) == 0 {
			t.Fatalf("exception %+v; want the panic, with a stack", top)
		}
		frames := top.Stacktrace.Frames
		last := frames[len(frames)-1] // the innermost
		if last.Module != "github.com/recq/recq/tracing_test" || !strings.HasPrefix(last.Function, "TestSentryCapturesAPanicOnce") {
			t.Errorf("innermost frame %s.%s; want the panicking handler", last.Module, last.Function)
		}
		for _, f := range frames {
			if f.Module == "runtime/debug" {
				t.Errorf("the stack has the recovery's frame %s.%s", f.Module, f.Function)
			}
		}
	}
	if dead != 1 {
		t.Errorf("%d dead events; want 1", dead)
	}
}

// A rejected command is one event, at info level, with the command's tags
// and its Handle span as trace context; the invoker's error is not one.
func TestSentryCapturesARejectionAtInfo(t *testing.T) {
	srv, exp := withSentry(t)
	_, iv := flowWith(t, func() error { return nil })
	res, err := iv.Send(context.Background(), todo.Name, "L2", todo.CreateList{})
	if aggregates.Code(err) != "rejected" {
		t.Fatalf("Send of a nameless list: %v; want it rejected", err)
	}
	var handle tracetest.SpanStub
	testenv.Eventually(t, "the rejected command's spans", 30*time.Second, func() error {
		for _, s := range exp.GetSpans() {
			if s.Name == handleCmd && s.Status.Code == codes.Error {
				handle = s
			}
			if s.Name == processCmd && attr(s, "recq.rejection").Emit() != "" && handle.Name != "" {
				return nil
			}
		}
		return errors.New("no rejected " + processCmd)
	})
	events := srv.flushed(t, "event")
	if len(events) != 1 {
		t.Fatalf("%d events; want the rejection's: %+v", len(events), events)
	}
	ev := events[0]
	want := map[string]string{"outcome": "rejected", "component": "todo", "handler": handleCmd, "topic": "todo.commands",
		"payload_type": "todo.CreateList", "aggregate_id": "L2", "command_id": res.CommandID, "rejection": "rejected"}
	for k, v := range want {
		if ev.Tags[k] != v {
			t.Errorf("tag %s = %q; want %q", k, ev.Tags[k], v)
		}
	}
	if ev.Level != "info" || !strings.Contains(ev.Message, todo.ErrNoName.Error()) {
		t.Errorf("level %q, message %q; want info, with the rejection", ev.Level, ev.Message)
	}
	if ev.Contexts.Trace.TraceID != handle.SpanContext.TraceID().String() || ev.Contexts.Trace.SpanID != handle.SpanContext.SpanID().String() {
		t.Errorf("trace %s/%s; want %q's", ev.Contexts.Trace.TraceID, ev.Contexts.Trace.SpanID, handleCmd)
	}
}

// Sentry performance receives the flow's spans, in the trace of the flow.
func TestSentryReceivesTheFlowsSpans(t *testing.T) {
	srv, exp := withSentry(t)
	flow(t, nil)
	s := spans(t, exp, invoke, processCmd, handleCmd)
	traceID := s[invoke].SpanContext.TraceID().String()
	// A transaction is sent as its root span ends, after the exporter has
	// the span: wait for it.
	testenv.Eventually(t, "the flow's transaction", 30*time.Second, func() error {
		got := map[string]bool{}
		for _, tx := range srv.flushed(t, "transaction") {
			if tx.Contexts.Trace.TraceID != traceID {
				continue
			}
			got[tx.Transaction] = true
			for _, sp := range tx.Spans {
				got[sp.Description] = sp.TraceID == traceID
			}
		}
		for _, name := range []string{invoke, processCmd, handleCmd} {
			if !got[name] {
				return fmt.Errorf("no span %q in trace %s; have %v", name, traceID, got)
			}
		}
		return nil
	})
}

// A produced record carries sentry-trace, of the same trace as its
// traceparent.
func TestSentryTraceTravelsWithTraceparent(t *testing.T) {
	withSentry(t)
	ctx, span := tracing.Start(context.Background(), "test", trace.SpanKindInternal, tracing.Flow{})
	defer span.End()
	r := produce(t, context.Background(), &kgo.Record{Topic: "t", Value: []byte("v"), Context: ctx})[0]
	tp, st := traceparents(r), ""
	for _, h := range r.Headers {
		if h.Key == sentry.SentryTraceHeader {
			st = string(h.Value)
		}
	}
	traceID := span.SpanContext().TraceID().String()
	if len(tp) != 1 || !strings.Contains(tp[0], traceID) || !strings.HasPrefix(st, traceID+"-") {
		t.Errorf("traceparent %v, sentry-trace %q; want both of trace %s", tp, st, traceID)
	}
}
