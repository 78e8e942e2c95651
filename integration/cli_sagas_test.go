package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/sagas"
	"github.com/recq/recq/sagas/store"
)

// recq sagas list and show, from a Redis saga store and from a service's
// InspectHandler, and their errors.
func TestCLISagas(t *testing.T) {
	srv := testenv.Redis(t)
	c := testenv.RedisClient(t, srv.Addr)
	st, err := store.NewRedis(c)
	if err != nil {
		t.Fatal(err)
	}
	const group = "shop.fulfilment.v1"
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	running := &store.Instance{ID: "order=O-1", Partition: 2, State: json.RawMessage(`{"amount":30}`),
		Associations: []string{"order=O-1", "payment=P-1"},
		Deadlines:    []store.Deadline{{ID: "d-1", Name: "payment-due", Due: t0.Add(15 * time.Minute)}},
		History:      []store.Handled{{ID: "e-1", Type: "shop.OrderPlaced", At: t0, Source: "shop.orders.events/2@7"}}, Started: t0, Updated: t0}
	ended := &store.Instance{ID: "order=O-2", Partition: 5, Ended: true,
		History: []store.Handled{{ID: "e-2", Type: "shop.OrderPlaced", At: t0}, {ID: "d-2", Type: "deadline payment-due", At: t0}}, Started: t0, Updated: t0}
	mem := store.NewMemory()
	for _, s := range []store.Store{st, mem} {
		ctx := context.Background()
		l, err := s.Positions().Claim(ctx, group, state.Partition{Topic: sagas.RoutedTopic(group)})
		if err != nil {
			t.Fatal(err)
		}
		b := s.Positions().Begin(l)
		for _, in := range []*store.Instance{running, ended} {
			if err := b.Do(ctx, func(ctx context.Context) error { s.Save(ctx, group, nil, in); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(ctx, 2); err != nil {
			t.Fatal(err)
		}
	}
	web := httptest.NewServer(sagas.InspectHandler(group, mem))
	t.Cleanup(web.Close)
	bin := testenv.Recq(t)
	redisURL := "redis://" + srv.Addr

	for _, from := range [][]string{{"--redis", redisURL}, {"--http", web.URL}} {
		list := testenv.Run(t, "", bin, append([]string{"sagas", "list", group}, from...)...)
		if list.Code != 0 || !strings.Contains(list.Stdout, "order=O-1") || strings.Contains(list.Stdout, "order=O-2") ||
			!strings.Contains(list.Stdout, "1 (next payment-due") || !strings.Contains(list.Stdout, "1 instances") {
			t.Fatalf("list %v: %+v", from, list)
		}
		js := testenv.Run(t, "", bin, append([]string{"sagas", "list", group, "--ended", "-o", "json"}, from...)...)
		var got store.Instance
		if js.Code != 0 || json.Unmarshal([]byte(js.Stdout), &got) != nil || got.ID != "order=O-2" || !got.Ended || len(got.History) != 2 {
			t.Fatalf("list --ended -o json %v: %+v", from, js)
		}
		byAssoc := testenv.Run(t, "", bin, append([]string{"sagas", "list", group, "--association", "payment=P-1", "-o", "json"}, from...)...)
		if byAssoc.Code != 0 || strings.Count(byAssoc.Stdout, "\n") != 1 || !strings.Contains(byAssoc.Stdout, `"id":"order=O-1"`) {
			t.Fatalf("list --association %v: %+v", from, byAssoc)
		}
		show := testenv.Run(t, "", bin, append([]string{"sagas", "show", group, "order=O-1"}, from...)...)
		for _, want := range []string{"order=O-1 (running)", `"amount": 30`, "payment=P-1", "payment-due", "in 1", "shop.OrderPlaced", "e-1", "shop.orders.events/2@7"} {
			if show.Code != 0 || !strings.Contains(show.Stdout, want) {
				t.Fatalf("show %v: want %q in %+v", from, want, show)
			}
		}
		showJS := testenv.Run(t, "", bin, append([]string{"sagas", "show", group, "order=O-1", "-o", "json"}, from...)...)
		got = store.Instance{}
		if showJS.Code != 0 || json.Unmarshal([]byte(showJS.Stdout), &got) != nil || got.ID != "order=O-1" ||
			!bytes.Equal(compactSagaJSON(got.State), []byte(`{"amount":30}`)) || len(got.Deadlines) != 1 || len(got.History) != 1 || !got.Started.Equal(t0) {
			t.Fatalf("show -o json %v: %+v", from, showJS)
		}
		missing := testenv.Run(t, "", bin, append([]string{"sagas", "show", group, "order=O-9"}, from...)...)
		if missing.Code != 1 || !strings.Contains(missing.Stderr, "no instance order=O-9 in saga "+group+" (list them with: recq sagas list "+group+")") {
			t.Fatalf("show of a missing instance %v: %+v", from, missing)
		}
	}

	dead := testenv.FreeAddr(t)
	silent := testenv.SilentAddr(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no source", []string{"sagas", "list", group}, 2, "say where the instances are: --redis"},
		{"both sources", []string{"sagas", "list", group, "--redis", redisURL, "--http", web.URL}, 2, "give --redis or --http, not both"},
		{"bad association", []string{"sagas", "list", group, "--redis", redisURL, "--association", "O-1"}, 2, "want KEY=VALUE"},
		{"bad redis url", []string{"sagas", "list", group, "--redis", "http://x"}, 2, "want redis://host:port/db"},
		{"unreachable redis", []string{"sagas", "list", group, "--redis", "redis://" + dead}, 1, "cannot reach Redis at " + dead},
		{"silent redis", []string{"sagas", "show", group, "order=O-1", "--redis", "redis://" + silent, "--timeout", "2s"}, 1, "cannot reach Redis at " + silent},
		{"unreachable service", []string{"sagas", "list", group, "--http", "http://" + dead}, 1, "cannot reach the saga service"},
		{"other group", []string{"sagas", "list", "shop.other.v1", "--http", web.URL}, 1, `no saga group "shop.other.v1" here`},
		{"missing name", []string{"sagas", "show", group, "--redis", redisURL}, 2, "accepts 2 arg(s), received 1"},
	} {
		res := testenv.Run(t, "", bin, tc.args...)
		if res.Code != tc.code || !strings.Contains(res.Stderr, tc.msg) {
			t.Errorf("%s: want exit %d and %q, got %+v", tc.name, tc.code, tc.msg, res)
		}
	}
}

func compactSagaJSON(b []byte) []byte {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return b
	}
	return out.Bytes()
}
