package integration

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/recq/recq/internal/fixture/todo"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/tracing"
)

// otlpSpan is what the receiver keeps of a span.
type otlpSpan struct {
	service, name, trace, id, parent string
}

// otlpReceiver is an OTLP/HTTP trace receiver, as a collector's HTTP port
// would be: it decodes each export and keeps the spans.
type otlpReceiver struct {
	url   string
	mu    sync.Mutex
	spans []otlpSpan
}

func startOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rv := &otlpReceiver{url: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rv.mu.Lock()
		defer rv.mu.Unlock()
		for _, rs := range req.ResourceSpans {
			var service string
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					service = a.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					rv.spans = append(rv.spans, otlpSpan{service: service, name: s.Name, trace: hex.EncodeToString(s.TraceId),
						id: hex.EncodeToString(s.SpanId), parent: hex.EncodeToString(s.ParentSpanId)})
				}
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		_, _ = w.Write(b)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return rv
}

// span finds the span of service named name.
func (rv *otlpReceiver) span(service, name string) (otlpSpan, bool) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	for _, s := range rv.spans {
		if s.service == service && s.name == name {
			return s, true
		}
	}
	return otlpSpan{}, false
}

// One Send is one trace across processes: the test's invoker, the todo
// runner binary and the stats projector binary export their spans by
// OTLP/HTTP (the runner's and the projector's to a receiver the test runs,
// as a collector would), and each hop's span is the child of the span of
// the process before it.
func TestTracingOneTraceAcrossProcesses(t *testing.T) {
	rv := startOTLPReceiver(t)
	env := []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + rv.url, "OTEL_BSP_SCHEDULE_DELAY=50"}
	e := newStatsEnv(t, testenv.Redis(t))
	runner := testenv.StartEnv(t, env, "todo runner: ready", testenv.Binary(t, "github.com/recq/recq/internal/fixture/todo/runner"),
		"-brokers", e.dev.Addr, "-registry", e.dev.Registry, "-partitions", "8", "-instance", "traced")
	projector := e.projectorEnv(env, 1, "traced")
	dumpOnFailure(t, map[string]*testenv.Proc{"todo runner": runner, "todo projector": projector})

	exp := tracetest.NewInMemoryExporter()
	shutdown, err := tracing.Setup(context.Background(), tracing.WithExporter(exp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := todoInvoker(ctx, t, e.dev).Send(ctx, todo.Name, "traced-list", todo.CreateList{Name: "traced"}); err != nil {
		t.Fatal(err)
	}
	var sendCmd, invoke tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		switch s.Name {
		case "send todo.commands":
			sendCmd = s
		case "invoke todo":
			invoke = s
		}
	}
	if !sendCmd.SpanContext.IsValid() || !invoke.SpanContext.IsValid() {
		t.Fatalf("the test's own spans: %v", exp.GetSpans())
	}
	var processCmd, sendEvent, processEvent, handler otlpSpan
	testenv.Eventually(t, "the runner's and the projector's spans at the receiver", time.Minute, func() error {
		for _, w := range []struct {
			s             *otlpSpan
			service, name string
		}{
			{&processCmd, "todo-runner", "process todo.commands"},
			{&sendEvent, "todo-runner", "send todo.events"},
			{&processEvent, "todo-projector", "process todo.events"},
			{&handler, "todo-projector", "todo.stats.On(ListCreated)"},
		} {
			var ok bool
			if *w.s, ok = rv.span(w.service, w.name); !ok {
				return fmt.Errorf("no span %q from %s yet", w.name, w.service)
			}
		}
		return nil
	})
	trace := invoke.SpanContext.TraceID().String()
	for _, c := range []struct {
		what          string
		span          otlpSpan
		parent, named string
	}{
		{"the runner's process span", processCmd, sendCmd.SpanContext.SpanID().String(), "the test's send todo.commands"},
		{"the runner's event send span", sendEvent, processCmd.id, "its process todo.commands"},
		{"the projector's process span", processEvent, sendEvent.id, "the runner's send todo.events"},
		{"the projector's handler span", handler, processEvent.id, "its process todo.events"},
	} {
		if c.span.trace != trace {
			t.Errorf("%s is in trace %s; want the invoker's %s", c.what, c.span.trace, trace)
		}
		if c.span.parent != c.parent {
			t.Errorf("%s has parent %s; want %s (%s)", c.what, c.span.parent, c.parent, c.named)
		}
	}
}
