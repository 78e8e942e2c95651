package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/recq/recq/tracing"
)

// A request is a server span named after its route, the child of the
// caller's span; a 5xx is an error.
func TestHTTPHandlerSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	shutdown, err := tracing.Setup(context.Background(), tracing.WithExporter(exp))
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /subjects/{subject}/versions", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("[1]")) })
	mux.HandleFunc("GET /broken", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	srv := httptest.NewServer(tracing.HTTPHandler(mux))
	defer srv.Close()
	get := func(path string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get("/subjects/orders-value/versions")
	get("/broken")
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans; want 2", len(spans))
	}
	ok, broken := spans[0], spans[1]
	if ok.Name != "GET /subjects/{subject}/versions" || ok.SpanKind != trace.SpanKindServer {
		t.Errorf("span %q kind %v; want the route, server", ok.Name, ok.SpanKind)
	}
	if ok.Parent.SpanID().String() != "00f067aa0ba902b7" || ok.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("parent %s in trace %s; want the caller's span", ok.Parent.SpanID(), ok.SpanContext.TraceID())
	}
	want := map[attribute.Key]attribute.Value{"http.route": attribute.StringValue("/subjects/{subject}/versions"),
		"http.response.status_code": attribute.IntValue(200), "http.request.method": attribute.StringValue("GET")}
	for _, a := range ok.Attributes {
		if v, found := want[a.Key]; found && v != a.Value {
			t.Errorf("%s = %v; want %v", a.Key, a.Value.Emit(), v.Emit())
		}
		delete(want, a.Key)
	}
	if len(want) > 0 {
		t.Errorf("missing attributes %v", want)
	}
	if ok.Status.Code == codes.Error || broken.Status.Code != codes.Error {
		t.Errorf("statuses %v and %v; want the 500 alone an error", ok.Status, broken.Status)
	}
}
