package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/recq/recq/examples/todo"
	"github.com/recq/recq/internal/testenv"
)

// todoEnv runs the TodoList service binary (examples/todo/service) on
// recq dev, with Redis when given one, and talks to it over HTTP.
type todoEnv struct {
	t       *testing.T
	dev     *testenv.Dev
	bin     string
	http    string // host:port of the API
	redis   string
	extra   []string // more flags for the service
	mu      sync.Mutex
	service *testenv.Proc
	hc      *http.Client
}

func newTodoEnv(t *testing.T, rs *testenv.RedisServer, extra ...string) *todoEnv {
	t.Helper()
	e := &todoEnv{t: t, dev: testenv.StartDev(t, t.TempDir()), bin: testenv.Binary(t, "github.com/recq/recq/examples/todo/service"),
		http: testenv.FreeAddr(t), hc: &http.Client{Timeout: 15 * time.Second}, extra: extra}
	if rs != nil {
		e.redis = rs.Addr
	}
	e.start()
	return e
}

// start starts the service (again, after a kill) with instance id a.
func (e *todoEnv) start() {
	e.t.Helper()
	args := []string{"--brokers", e.dev.Addr, "--registry", e.dev.Registry, "--http-addr", e.http, "--instance", "a"}
	if e.redis != "" {
		args = append(args, "--redis", "redis://"+e.redis+"/0")
	}
	p := testenv.Start(e.t, "todo service: ready", e.bin, append(args, e.extra...)...)
	e.mu.Lock()
	e.service = p
	e.mu.Unlock()
	dumpOnFailure(e.t, map[string]*testenv.Proc{"todo service": p})
}

func (e *todoEnv) proc() *testenv.Proc {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.service
}

// do sends one request and returns its status and body; err is a
// transport failure (no answer).
func (e *todoEnv) do(ctx context.Context, method, path, key string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+e.http+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// must sends a request with an idempotency key until it is answered with
// a status other than 503 (a transport failure or a 503 is sent again with
// the same key, as a client riding out a restart would) and fails the
// test unless that status is want. It returns the body and how many
// attempts it took.
func (e *todoEnv) must(ctx context.Context, want int, method, path, key string, body any) ([]byte, int) {
	for attempt := 1; ; attempt++ {
		status, out, err := e.do(ctx, method, path, key, body)
		switch {
		case err == nil && status == want:
			return out, attempt
		case err == nil && status != http.StatusServiceUnavailable:
			e.t.Errorf("%s %s (key %s): %d %s, want %d", method, path, key, status, out, want)
			return out, attempt
		case ctx.Err() != nil:
			e.t.Errorf("%s %s (key %s): no answer before the deadline: %v %d %s", method, path, key, err, status, out)
			return nil, attempt
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// created returns the id of a 201's body.
func created(t *testing.T, body []byte) string {
	t.Helper()
	var v struct{ ID string }
	if err := json.Unmarshal(body, &v); err != nil || v.ID == "" {
		t.Errorf("201 body %q: want {\"id\": ...} (%v)", body, err)
	}
	return v.ID
}

// list reads a list's view through the API.
func (e *todoEnv) list(ctx context.Context, id string) todo.ListView {
	var v todo.ListView
	out, _ := e.must(ctx, http.StatusOK, "GET", "/lists/"+id, "", nil)
	if err := json.Unmarshal(out, &v); err != nil {
		e.t.Errorf("GET /lists/%s: %q: %v", id, out, err)
	}
	return v
}

func keyf(format string, a ...any) string { return fmt.Sprintf(format, a...) }
