package testenv

import (
	"net/http/httptest"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/recq/recq/schema"
	"github.com/recq/recq/schema/registry"
)

// Serde returns a serde that registers schemas on its own: recq's registry
// on an in-memory store, served over real HTTP until the test ends.
func Serde(t testing.TB) *schema.Serde {
	t.Helper()
	_, serde := Registry(t)
	return serde
}

// Registry serves recq's registry on an in-memory store over real HTTP
// until the test ends, and returns its URL and a serde on it that registers
// schemas on its own, with opts.
func Registry(t testing.TB, opts ...schema.Option) (string, *schema.Serde) {
	t.Helper()
	srv, err := registry.New(registry.NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	cl, err := sr.NewClient(sr.URLs(hs.URL))
	if err != nil {
		t.Fatal(err)
	}
	serde, err := schema.NewSerde(cl, append([]schema.Option{schema.WithAutoRegister(true)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return hs.URL, serde
}
