package schema_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/recq/recq/schema"
	"github.com/recq/recq/schema/registry"
)

// testRegistry is recq's registry on an in-memory store, served over real
// HTTP, counting the requests it receives.
type testRegistry struct {
	client *sr.Client

	mu   sync.Mutex
	hits map[string]int // "GET /schemas/ids/1" → requests
}

func newRegistry(t testing.TB) *testRegistry {
	t.Helper()
	srv, err := registry.New(registry.NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	r := &testRegistry{hits: map[string]int{}}
	h := srv.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.hits[req.Method+" "+req.URL.Path]++
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(ts.Close)
	t.Cleanup(func() { _ = srv.Close() })
	if r.client, err = sr.NewClient(sr.URLs(ts.URL)); err != nil {
		t.Fatal(err)
	}
	return r
}

// requests counts the requests whose "METHOD /path" starts with prefix.
func (r *testRegistry) requests(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for k, v := range r.hits {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

func newSerde(t testing.TB, r *testRegistry, opts ...schema.Option) *schema.Serde {
	t.Helper()
	s, err := schema.NewSerde(r.client, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ptr[T any](v T) *T { return &v }
