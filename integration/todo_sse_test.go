package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sseEvent is one server-sent event as a client reads it.
type sseEvent struct {
	ID      int64
	Type    string // of the list's event
	Version int64
}

// openEvents opens a list's event stream, resuming after lastID (0: from
// the start), and returns its events as they arrive.
func (e *todoEnv) openEvents(ctx context.Context, list string, lastID int64) (<-chan sseEvent, func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+e.http+"/lists/"+list+"/events", nil)
	if lastID > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(lastID, 10))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		e.t.Fatalf("events: %d %s", resp.StatusCode, ct)
	}
	out := make(chan sseEvent, 100)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				ev.ID, _ = strconv.ParseInt(strings.TrimPrefix(line, "id: "), 10, 64)
			case strings.HasPrefix(line, "data: "):
				var d struct {
					Type    string
					Version int64
				}
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d)
				ev.Type, ev.Version = d.Type, d.Version
			case line == "" && ev.ID != 0:
				out <- ev
				ev = sseEvent{}
			}
		}
	}()
	return out, cancel
}

// next reads n events from the stream, failing the test on a timeout.
func next(t *testing.T, events <-chan sseEvent, n int) []sseEvent {
	t.Helper()
	var got []sseEvent
	for len(got) < n {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the stream ended after %v", got)
			}
			got = append(got, ev)
		case <-time.After(20 * time.Second):
			t.Fatalf("%d events of %d after 20 s: %v", len(got), n, got)
		}
	}
	return got
}

// A list's event stream gives its changes in order, each with its version
// as id, live as they are projected, and resumes after Last-Event-ID with
// exactly the changes missed.
func TestTodoEventsStreamInOrderAndResumes(t *testing.T) {
	e := newTodoEnv(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	list := created(t, mustBody(e.must(ctx, http.StatusCreated, "POST", "/lists", "c", map[string]string{"title": "t", "owner": "o"})))
	events, stop := e.openEvents(ctx, list, 0)
	check := func(got []sseEvent, from int64, types ...string) {
		t.Helper()
		for i, ev := range got {
			if ev.ID != from+int64(i) || ev.Version != ev.ID || ev.Type != types[i] {
				t.Fatalf("event %d: %+v, want id and version %d, type %s (all: %+v)", i, ev, from+int64(i), types[i], got)
			}
		}
	}
	check(next(t, events, 1), 1, "ListCreated")
	var item string
	for i := range 3 {
		item = created(t, mustBody(e.must(ctx, http.StatusCreated, "POST", "/lists/"+list+"/items", keyf("i%d", i), map[string]string{"text": "x"})))
	}
	e.must(ctx, http.StatusNoContent, "POST", "/lists/"+list+"/items/"+item+"/check", "k", nil)
	check(next(t, events, 4), 2, "ItemAdded", "ItemAdded", "ItemAdded", "ItemChecked")
	stop()

	// Missed while disconnected, then live again.
	e.must(ctx, http.StatusNoContent, "PATCH", "/lists/"+list, "r", map[string]string{"title": "renamed"})
	e.must(ctx, http.StatusNoContent, "POST", "/lists/"+list+"/items/"+item+"/uncheck", "u", nil)
	events, stop = e.openEvents(ctx, list, 5)
	defer stop()
	check(next(t, events, 2), 6, "ListRenamed", "ItemUnchecked")
	e.must(ctx, http.StatusNoContent, "DELETE", "/lists/"+list, "d", nil)
	check(next(t, events, 1), 8, "ListDeleted")

	status, body, err := e.do(ctx, "GET", "/lists/"+list+"/events?after=x", "", nil)
	if err != nil || status != http.StatusBadRequest || !strings.Contains(string(body), "Last-Event-ID") {
		t.Fatalf("a bad ?after=: %d %s %v, want 400 saying what it wants", status, body, err)
	}
}
