package sagas_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/sagas"
	"github.com/recq/recq/sagas/store"
)

const inspectGroup = "shop.fulfilment.v1"

// inspectStore is a memory store holding ins, saved in one state batch
// (the only way memory-store writes apply).
func inspectStore(t *testing.T, ins ...*store.Instance) store.Store {
	t.Helper()
	ctx := context.Background()
	st := store.NewMemory()
	l, err := st.Positions().Claim(ctx, inspectGroup, state.Partition{Topic: sagas.RoutedTopic(inspectGroup)})
	if err != nil {
		t.Fatal(err)
	}
	b := st.Positions().Begin(l)
	for _, in := range ins {
		if err := b.Do(ctx, func(ctx context.Context) error { st.Save(ctx, inspectGroup, nil, in); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(ctx, int64(len(ins))); err != nil {
		t.Fatal(err)
	}
	return st
}

func inspectFixture(t *testing.T) (running, ended *store.Instance, st store.Store) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	running = &store.Instance{ID: "order=o1", Partition: 3, State: json.RawMessage(`{"amount":30}`),
		Associations: []string{"order=o1", "payment=p1", "ship=a/b c"},
		Deadlines:    []store.Deadline{{ID: "d1", Name: "payment-due", Due: t0.Add(time.Hour)}},
		Seen:         map[string]int64{"order=o1|shop.orders.events/3": 7},
		History:      []store.Handled{{ID: "e1", Type: "shop.OrderPlaced", At: t0, Source: "shop.orders.events/3@7"}},
		Started:      t0, Updated: t0.Add(time.Minute)}
	ended = &store.Instance{ID: "order=o2", Partition: 1, Ended: true,
		History: []store.Handled{{ID: "d2", Type: "deadline payment-due", At: t0}}, Started: t0, Updated: t0}
	return running, ended, inspectStore(t, running, ended)
}

type answer struct {
	code  int
	ctype string
	body  string
}

func get(t *testing.T, url string) answer {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

// asJSON is v marshalled, for comparing instances by what they say
// (times compared as written).
func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The handler's routes, statuses and bodies, read as plain HTTP.
func TestInspectHandlerServesJSON(t *testing.T) {
	running, ended, st := inspectFixture(t)
	srv := httptest.NewServer(sagas.InspectHandler(inspectGroup, st))
	t.Cleanup(srv.Close)
	base := srv.URL + "/sagas/" + inspectGroup

	list := func(query string, want ...*store.Instance) {
		t.Helper()
		a := get(t, base+query)
		if a.code != http.StatusOK || a.ctype != "application/json" {
			t.Fatalf("GET %s: %+v", query, a)
		}
		var got []*store.Instance
		if err := json.Unmarshal([]byte(a.body), &got); err != nil {
			t.Fatalf("GET %s: %v in %q", query, err, a.body)
		}
		if want == nil {
			want = []*store.Instance{}
		}
		if asJSON(t, got) != asJSON(t, want) {
			t.Fatalf("GET %s:\n got %s\nwant %s", query, asJSON(t, got), asJSON(t, want))
		}
	}
	list("", running)
	list("?ended=true", ended)
	list("?ended=false", running)
	list("?association=payment%3Dp1", running) // through the index
	list("?association=order=o1", running)     // by its id, unescaped '='
	list("?association=payment=p9")            // leads nowhere
	list("?association=order=o2")              // ended, so not among the running
	list("?association=order=o2&ended=true", ended)

	if a := get(t, base+"/order=o1"); a.code != http.StatusOK || a.ctype != "application/json" ||
		strings.TrimSpace(a.body) != asJSON(t, running) {
		t.Fatalf("GET one: %+v\nwant %s", a, asJSON(t, running))
	}

	errorJSON := func(path string, code int, msg string) {
		t.Helper()
		a := get(t, srv.URL+path)
		var e map[string]string
		if a.code != code || a.ctype != "application/json" || json.Unmarshal([]byte(a.body), &e) != nil ||
			len(e) != 1 || !strings.Contains(e["error"], msg) {
			t.Fatalf("GET %s: want %d and {\"error\": ...%q...}, got %+v", path, code, msg, a)
		}
	}
	errorJSON("/sagas/"+inspectGroup+"/order=o9", http.StatusNotFound, `no instance "order=o9" in saga `+inspectGroup)
	errorJSON("/sagas/shop.other.v1/order=o1", http.StatusNotFound, `no saga group "shop.other.v1"`)
	errorJSON("/sagas/shop.other.v1", http.StatusNotFound, `no saga group "shop.other.v1"`)
	errorJSON("/sagas/"+inspectGroup+"?association=nokey", http.StatusBadRequest, `association "nokey": want key=value`)

	// An empty group is an empty array, not null.
	empty := httptest.NewServer(sagas.InspectHandler(inspectGroup, store.NewMemory()))
	t.Cleanup(empty.Close)
	if a := get(t, empty.URL+"/sagas/"+inspectGroup); a.code != http.StatusOK || strings.TrimSpace(a.body) != "[]" {
		t.Fatalf("empty group: %+v", a)
	}
	// Read only.
	resp, err := http.Post(base, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %s", resp.Status)
	}
}

// failing is a reader whose store is down.
type failing struct{}

func (failing) Load(context.Context, string, string) (*store.Instance, error) {
	return nil, errors.New("store: load instance on Redis at 127.0.0.1:1: connection refused")
}

func (failing) List(context.Context, string, store.Filter) ([]*store.Instance, error) {
	return nil, errors.New("store: list instances on Redis at 127.0.0.1:1: connection refused")
}

// The client reads back exactly what the store holds, and every failure
// is an error starting "sagas: " (never an absent instance).
func TestInspectClientReadsWhatTheStoreHolds(t *testing.T) {
	ctx := context.Background()
	running, ended, st := inspectFixture(t)
	srv := httptest.NewServer(sagas.InspectHandler(inspectGroup, st))
	t.Cleanup(srv.Close)
	c := sagas.NewInspectClient(srv.URL, srv.Client())

	for _, id := range []string{running.ID, ended.ID} {
		want, _ := st.Load(ctx, inspectGroup, id)
		got, err := c.Load(ctx, inspectGroup, id)
		if err != nil || asJSON(t, got) != asJSON(t, want) {
			t.Fatalf("load %s: %v\n got %s\nwant %s", id, err, asJSON(t, got), asJSON(t, want))
		}
	}
	// Ids and associations with characters a URL escapes.
	odd := &store.Instance{ID: "ship=a/b c?d#e", Associations: []string{"ship=a/b c?d#e", "x=1&y=2"}}
	oddSt := inspectStore(t, odd)
	oddSrv := httptest.NewServer(sagas.InspectHandler(inspectGroup, oddSt))
	t.Cleanup(oddSrv.Close)
	oc := sagas.NewInspectClient(oddSrv.URL+"/", nil)
	if got, err := oc.Load(ctx, inspectGroup, odd.ID); err != nil || got == nil || got.ID != odd.ID {
		t.Fatalf("load %q: %+v %v", odd.ID, got, err)
	}
	if got, err := oc.List(ctx, inspectGroup, store.Filter{Association: "x=1&y=2"}); err != nil || len(got) != 1 || got[0].ID != odd.ID {
		t.Fatalf("list by %q: %+v %v", "x=1&y=2", got, err)
	}
	for _, f := range []store.Filter{{}, {Ended: true}, {Association: "payment=p1"}, {Association: "order=o2", Ended: true}, {Association: "none=1"}} {
		want, _ := st.List(ctx, inspectGroup, f)
		got, err := c.List(ctx, inspectGroup, f)
		if err != nil || asJSON(t, got) != asJSON(t, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("list %+v: %v\n got %s\nwant %s", f, err, asJSON(t, got), asJSON(t, want))
		}
	}
	if got, err := c.Load(ctx, inspectGroup, "order=o9"); err != nil || got != nil {
		t.Fatalf("load of an absent instance: want nil, nil; got %+v, %v", got, err)
	}

	sagasErr := func(what string, err error, msg string) {
		t.Helper()
		if err == nil || !strings.HasPrefix(err.Error(), "sagas: ") || !strings.Contains(err.Error(), msg) {
			t.Fatalf("%s: want an error starting %q and saying %q, got %v", what, "sagas: ", msg, err)
		}
	}
	// Another group is an error, not an absent instance.
	_, err := c.Load(ctx, "shop.other.v1", running.ID)
	sagasErr("load from another group", err, `no saga group "shop.other.v1"`)
	_, err = c.List(ctx, inspectGroup, store.Filter{Association: "nokey"})
	sagasErr("bad association", err, "want key=value")

	down := httptest.NewServer(sagas.InspectHandler(inspectGroup, failing{}))
	t.Cleanup(down.Close)
	dc := sagas.NewInspectClient(down.URL, nil)
	_, err = dc.Load(ctx, inspectGroup, "order=o1")
	sagasErr("store down (load)", err, "500 Internal Server Error: store: load instance on Redis at 127.0.0.1:1")
	_, err = dc.List(ctx, inspectGroup, store.Filter{})
	sagasErr("store down (list)", err, "store: list instances")

	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()
	_, err = sagas.NewInspectClient(goneURL, nil).List(ctx, inspectGroup, store.Filter{})
	sagasErr("service down", err, "cannot reach the saga service at "+goneURL)

	notSagas := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.Copy(w, bytes.NewReader([]byte("<html>hello</html>")))
	}))
	t.Cleanup(notSagas.Close)
	_, err = sagas.NewInspectClient(notSagas.URL, nil).Load(ctx, inspectGroup, "order=o1")
	sagasErr("not an inspect handler", err, "answered what is not saga instances")

	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.List(ctx2, inspectGroup, store.Filter{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: want context.Canceled, got %v", err)
	}
	sagasErr("cancelled", err, "")
}
