package integration

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/recq/recq/internal/fixture/todo"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/tracing"
)

// otlpSpan is what the receiver keeps of a span.
type otlpSpan struct {
	service, name, trace, id, parent string
	handler                          string // recq.handler
}

// otlpReceiver is an OTLP/HTTP trace receiver, as a collector's HTTP port
// would be: it decodes each export and keeps the spans.
type otlpReceiver struct {
	url     string
	mu      sync.Mutex
	spans   []otlpSpan
	metrics map[string]bool // service + " " + metric name
}

func startOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rv := &otlpReceiver{url: "http://" + ln.Addr().String(), metrics: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/metrics", rv.handler(&colmetrics.ExportMetricsServiceRequest{}, &colmetrics.ExportMetricsServiceResponse{}, func(req proto.Message) {
		for _, rm := range req.(*colmetrics.ExportMetricsServiceRequest).ResourceMetrics {
			service := attrString(rm.GetResource().GetAttributes(), "service.name")
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					rv.metrics[service+" "+m.Name] = true
				}
			}
		}
	}))
	mux.HandleFunc("POST /v1/traces", rv.handler(&coltrace.ExportTraceServiceRequest{}, &coltrace.ExportTraceServiceResponse{}, func(req proto.Message) {
		for _, rs := range req.(*coltrace.ExportTraceServiceRequest).ResourceSpans {
			service := attrString(rs.GetResource().GetAttributes(), "service.name")
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					rv.spans = append(rv.spans, otlpSpan{service: service, name: s.Name, trace: hex.EncodeToString(s.TraceId),
						id: hex.EncodeToString(s.SpanId), parent: hex.EncodeToString(s.ParentSpanId), handler: attrString(s.Attributes, "recq.handler")})
				}
			}
		}
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return rv
}

// handler decodes an export into a fresh copy of req, hands it to keep
// under the receiver's lock, and answers resp.
func (rv *otlpReceiver) handler(req, resp proto.Message, keep func(proto.Message)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		m := proto.Clone(req)
		if err == nil {
			err = proto.Unmarshal(body, m)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rv.mu.Lock()
		keep(m)
		rv.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(resp)
		_, _ = w.Write(b)
	}
}

func attrString(attrs []*commonpb.KeyValue, key string) string {
	for _, a := range attrs {
		if a.Key == key {
			return a.GetValue().GetStringValue()
		}
	}
	return ""
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
// the process before it. Their metrics reach the receiver by OTLP too.
func TestTracingOneTraceAcrossProcesses(t *testing.T) {
	rv := startOTLPReceiver(t)
	env := []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + rv.url, "OTEL_BSP_SCHEDULE_DELAY=50", "OTEL_METRIC_EXPORT_INTERVAL=200"}
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
	var processCmd, sendEvent, processEvent otlpSpan
	testenv.Eventually(t, "the runner's and the projector's spans at the receiver", time.Minute, func() error {
		for _, w := range []struct {
			s             *otlpSpan
			service, name string
		}{
			{&processCmd, "todo-runner", "process todo.commands"},
			{&sendEvent, "todo-runner", "send todo.events"},
			{&processEvent, "todo-projector", "process todo.events"},
		} {
			var ok bool
			if *w.s, ok = rv.span(w.service, w.name); !ok {
				return fmt.Errorf("no span %q from %s yet", w.name, w.service)
			}
		}
		return nil
	})
	testenv.Eventually(t, "the projector's metrics at the receiver", time.Minute, func() error {
		rv.mu.Lock()
		defer rv.mu.Unlock()
		for _, m := range []string{"todo-projector messaging.client.consumed.messages", "todo-projector messaging.process.duration",
			"todo-runner messaging.client.sent.messages"} {
			if !rv.metrics[m] {
				return fmt.Errorf("no %s yet", m)
			}
		}
		return nil
	})
	// The handler succeeded at its first attempt: the process span names
	// it, and it has no span of its own.
	if processEvent.handler != "todo.stats.On(ListCreated)" {
		t.Errorf("the projector's process span names handler %q; want todo.stats.On(ListCreated)", processEvent.handler)
	}
	if _, ok := rv.span("todo-projector", "todo.stats.On(ListCreated)"); ok {
		t.Error("a handler span for a first attempt that succeeded; want none")
	}
	trace := invoke.SpanContext.TraceID().String()
	for _, c := range []struct {
		what          string
		span          otlpSpan
		parent, named string
	}{
		{"the runner's process span", processCmd, sendCmd.SpanContext.SpanID().String(), "the test's send todo.commands"},
		{"the runner's event send span", sendEvent, processCmd.id, "its process todo.commands"},
		{"the projector's process span", processEvent, sendEvent.id, "the runner's send todo.events"},
	} {
		if c.span.trace != trace {
			t.Errorf("%s is in trace %s; want the invoker's %s", c.what, c.span.trace, trace)
		}
		if c.span.parent != c.parent {
			t.Errorf("%s has parent %s; want %s (%s)", c.what, c.span.parent, c.parent, c.named)
		}
	}
}

// recq dev --metrics-addr reports every group's lag from its committed
// offsets: a stopped projector's lag rises with what is published while it
// is down, and falls to zero once it is back and caught up. The projector's
// own -metrics-addr counts what it consumed.
func TestMetricsLagOfAStoppedProjector(t *testing.T) {
	const group = "todo.stats.v1"
	metrics := testenv.FreeAddr(t)
	e := newStatsEnvAt(t, testenv.Redis(t), t.TempDir(), "--metrics-addr", metrics)
	url := "http://" + metrics + "/metrics"
	labels := []string{`messaging_consumer_group_name="` + group + `"`, `messaging_destination_name="todo.events"`}
	lagIs := func(what string, want float64) {
		t.Helper()
		testenv.Eventually(t, what, time.Minute, func() error {
			if got, n := testenv.Scrape(t, url).Sum("recq_consumer_lag", labels...); got != want || n == 0 {
				return fmt.Errorf("lag %v over %d partitions; want %v", got, n, want)
			}
			return nil
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	own := testenv.FreeAddr(t) // the projector's own metrics
	p := e.projector(1, "lag", "-metrics-addr", own)
	if err := e.publish(ctx, 2000, 20, 500, 0); err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(group, time.Minute)
	lagIs("no lag once caught up", 0)
	testenv.Eventually(t, "the projector's own counts", time.Minute, func() error {
		s := testenv.Scrape(t, "http://"+own+"/metrics")
		if got, _ := s.Sum("messaging_client_consumed_messages_total", labels...); got != 2000 {
			return fmt.Errorf("consumed %v; want 2000", got)
		}
		if got, n := s.Sum("recq_consumer_lag", labels...); got != 0 || n != 8 {
			return fmt.Errorf("its own lag %v over %d partitions; want 0 over 8", got, n)
		}
		return nil
	})
	if err := p.Stop(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := e.publish(ctx, 1000, 20, 500, 0); err != nil {
		t.Fatal(err)
	}
	lagIs("the stopped projector's lag", 1000)
	e.projector(1, "lag")
	e.waitCaughtUp(group, time.Minute)
	lagIs("no lag once back and caught up", 0)
}
