package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/recq/recq/internal/testenv"
)

// Bad input and refused commands are a 4xx with {"error","code"}; a
// broker that is down is a 503 within the command timeout, never a hang,
// and /healthz says so until it is back.
func TestTodoAPIErrors(t *testing.T) {
	e := newTodoEnv(t, nil, "--command-timeout", "2s")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	expect := func(method, path string, body any, status int, code string) {
		t.Helper()
		got, out, err := e.do(ctx, method, path, "", body)
		var v struct{ Error, Code string }
		if err != nil || got != status || json.Unmarshal(out, &v) != nil || v.Code != code || v.Error == "" {
			t.Errorf("%s %s: %d %s (%v), want %d with code %q and an error", method, path, got, out, err, status, code)
		}
	}
	expect("POST", "/lists", "not an object", http.StatusBadRequest, "bad_request")
	expect("POST", "/lists", map[string]any{"title": "t", "colour": "red"}, http.StatusBadRequest, "bad_request")
	expect("POST", "/lists", map[string]string{"title": " ", "owner": "o"}, http.StatusUnprocessableEntity, "no_title")
	expect("GET", "/lists/nope", nil, http.StatusNotFound, "not_found")
	expect("POST", "/lists/nope/items", map[string]string{"text": "x"}, http.StatusNotFound, "not_found")
	list := created(t, mustBody(e.must(ctx, http.StatusCreated, "POST", "/lists", "c", map[string]string{"title": "t", "owner": "o"})))
	expect("POST", "/lists/"+list+"/items", map[string]string{"text": ""}, http.StatusUnprocessableEntity, "no_text")
	expect("POST", "/lists/"+list+"/items/nope/check", nil, http.StatusNotFound, "no_such_item")
	for i := range 100 {
		e.must(ctx, http.StatusCreated, "POST", "/lists/"+list+"/items", fmt.Sprint("i", i), map[string]string{"text": "x"})
	}
	expect("POST", "/lists/"+list+"/items", map[string]string{"text": "one too many"}, http.StatusUnprocessableEntity, "full")
	e.must(ctx, http.StatusNoContent, "DELETE", "/lists/"+list, "d", nil)
	expect("PATCH", "/lists/"+list, map[string]string{"title": "again"}, http.StatusConflict, "deleted")

	e.dev.Proc.Kill9()
	start := time.Now()
	expect("POST", "/lists", map[string]string{"title": "t", "owner": "o"}, http.StatusServiceUnavailable, "unavailable")
	t.Logf("a command with the broker down answered 503 after %v", time.Since(start).Round(time.Millisecond))
	testenv.Eventually(t, "/healthz 503 while the broker is down", time.Minute, func() error {
		if s, out, err := e.do(ctx, "GET", "/healthz", "", nil); err != nil || s != http.StatusServiceUnavailable || !strings.Contains(string(out), "broker") {
			return fmt.Errorf("%d %.200s %v", s, out, err)
		}
		return nil
	})
	e.dev.Restart(t)
	testenv.Eventually(t, "/healthz 200 once the broker is back", time.Minute, func() error {
		if s, out, err := e.do(ctx, "GET", "/healthz", "", nil); err != nil || s != http.StatusOK {
			return fmt.Errorf("%d %.200s %v", s, out, err)
		}
		return nil
	})
	e.must(ctx, http.StatusCreated, "POST", "/lists", "after", map[string]string{"title": "t", "owner": "o"})
}
