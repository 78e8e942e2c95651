package registry_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/recq/recq/schema/registry"
)

// Schemas used across the tests: v2 adds an optional field to v1 (backward
// and forward compatible), bad adds a required one (not backward compatible).
const (
	userV1  = `{"type":"record","name":"User","fields":[{"name":"id","type":"long"}]}`
	userV2  = `{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"email","type":["null","string"],"default":null}]}`
	userBad = `{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"age","type":"int"}]}`
	order   = `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"sku","type":"string"}]}`
)

func avro(text string) sr.Schema { return sr.Schema{Schema: text} }

// quiet is a logger for servers whose tests provoke errors on purpose.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// start serves a registry on store over real HTTP and returns a client
// for it and its URL.
func start(t *testing.T, store registry.Store, opts ...registry.Option) (*sr.Client, string) {
	t.Helper()
	srv, err := registry.New(store, append([]registry.Option{registry.WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatalf("registry.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		_ = srv.Close()
	})
	cl, err := sr.NewClient(sr.URLs(hs.URL))
	if err != nil {
		t.Fatalf("sr.NewClient: %v", err)
	}
	return cl, hs.URL
}

// newClient serves a registry on a fresh memory store.
func newClient(t *testing.T, opts ...registry.Option) *sr.Client {
	t.Helper()
	cl, _ := start(t, registry.NewMemoryStore(), opts...)
	return cl
}

// wantError checks that err is the registry's error JSON with the given
// HTTP status and error code, and nothing else in the body.
func wantError(t *testing.T, err error, status, code int) {
	t.Helper()
	var re *sr.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error = %v, want HTTP %d with error_code %d", err, status, code)
	}
	if re.StatusCode != status || re.ErrorCode != code {
		t.Fatalf("HTTP %d error_code %d (%s), want HTTP %d error_code %d", re.StatusCode, re.ErrorCode, re.Raw, status, code)
	}
	var body map[string]any
	if err := json.Unmarshal(re.Raw, &body); err != nil || len(body) != 2 || body["message"] == "" {
		t.Fatalf("error body %s, want exactly {\"error_code\":N,\"message\":\"...\"}", re.Raw)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// rawBody is a request body for sr.Client.Do sent as written, for bodies
// the client's types cannot express.
func rawBody(s string) json.RawMessage { return json.RawMessage(s) }

func register(t *testing.T, cl *sr.Client, subject, schema string) int {
	t.Helper()
	return must[int](t)(cl.RegisterSchema(t.Context(), subject, avro(schema), -1, -1))
}

// sameJSON reports whether two JSON texts hold the same value: the
// registry answers with schemas in its canonical form.
func sameJSON(a, b string) bool {
	var va, vb any
	return json.Unmarshal([]byte(a), &va) == nil && json.Unmarshal([]byte(b), &vb) == nil && reflect.DeepEqual(va, vb)
}

// serve runs one request through h without a network.
func serve(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// do sends a raw request, for what the sr client cannot express.
func do(t *testing.T, method, url, contentType string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}
