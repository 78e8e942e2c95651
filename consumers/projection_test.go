package consumers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/recq/recq/consumers"
	"github.com/recq/recq/health"
)

type (
	GetBalance struct{ Account string }
	Balance    struct {
		Account string
		Amount  int64
		Events  int64
	}
	CountAccounts struct{}
)

// ledgerProjection answers queries over a memory projector's ledger.
func ledgerProjection(r *consumers.Runner, read func() ledger) *consumers.Projection {
	p := consumers.NewProjection("ledger", r)
	consumers.Query(p, func(_ context.Context, q GetBalance) (Balance, error) {
		l := read()
		n, ok := l.Count[q.Account]
		if !ok {
			return Balance{}, fmt.Errorf("account %s: %w", q.Account, consumers.ErrNotFound)
		}
		return Balance{Account: q.Account, Amount: l.Balance[q.Account], Events: n}, nil
	})
	consumers.Query(p, func(_ context.Context, _ CountAccounts) (int, error) { return len(read().Count), nil })
	return p
}

func TestProjectionAskConsistentReadsOwnWrites(t *testing.T) {
	b := newBank(t, 4)
	c, read := memoryProjector("reads", 1)
	r, _ := start(t, b, c)
	proj := ledgerProjection(r, read)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waitHead(t, r)
	for i := range 20 {
		// A deposit to a new account, then a consistent read: it must be
		// there at once, without polling.
		acct := fmt.Sprintf("fresh-%d", i)
		must(t, b.pub.Publish(ctx, b.record(ctx, acct, Deposited{Amount: int64(i + 1)})))
		got, err := consumers.Ask[Balance](ctx, proj, GetBalance{Account: acct}, consumers.Consistent(acct))
		if err != nil || got.Amount != int64(i+1) || got.Events != 1 {
			t.Fatalf("consistent read of %s: %+v %v", acct, got, err)
		}
	}
	if _, err := consumers.Ask[Balance](ctx, proj, GetBalance{Account: "nobody"}); !errors.Is(err, consumers.ErrNotFound) {
		t.Fatalf("missing account: want ErrNotFound, got %v", err)
	}
	if _, err := consumers.Ask[Balance](ctx, proj, struct{ X int }{}); !errors.Is(err, consumers.ErrUnknownQuery) {
		t.Fatalf("unknown query: want ErrUnknownQuery, got %v", err)
	}
	if _, err := consumers.Ask[string](ctx, proj, CountAccounts{}); err == nil || !strings.Contains(err.Error(), "answers int") {
		t.Fatalf("wrong answer type: %v", err)
	}
}

func TestProjectionHTTP(t *testing.T) {
	b := newBank(t, 2)
	c, read := memoryProjector("http", 1)
	r, _ := start(t, b, c)
	srv := httptest.NewServer(ledgerProjection(r, read).Handler())
	defer srv.Close()
	hs := httptest.NewServer(health.Handler(r))
	defer hs.Close()
	ctx := context.Background()
	must(t, b.pub.Publish(ctx, b.record(ctx, "acct-1", Deposited{Amount: 42})))

	for _, tc := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/GetBalance?consistent=true&key=acct-1", `{"Account":"acct-1"}`, 200, `"Amount":42`},
		{"POST", "/GetBalance?consistent=1", `{"Account":"acct-1"}`, 200, `"Events":1`},
		{"POST", "/GetBalance", `{"Account":"nobody"}`, 404, "not found"},
		{"POST", "/GetBalance", `{"Acount":"typo"}`, 400, "unknown field"},
		{"POST", "/GetBalance", `{`, 400, "GetBalance"},
		{"POST", "/GetBalance?consistent=true&timeout=soon", `{}`, 400, "timeout"},
		{"POST", "/Nope", `{}`, 404, "GET / lists them"},
		{"POST", "/CountAccounts", ``, 200, "1"},
		{"GET", "/", ``, 200, `"queries":["CountAccounts","GetBalance"]`},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s %s %s: %d %s; want %d containing %q", tc.method, tc.path, tc.body, resp.StatusCode, body, tc.code, tc.want)
		}
	}

	waitHead(t, r)
	for _, path := range []string{"/livez", "/readyz"} {
		resp, err := http.Get(hs.URL + path)
		must(t, err)
		var st []struct {
			Name   string           `json:"name"`
			Ready  bool             `json:"ready"`
			Status consumers.Status `json:"status"`
		}
		must(t, json.NewDecoder(resp.Body).Decode(&st))
		resp.Body.Close()
		if resp.StatusCode != 200 || len(st) != 1 || st[0].Name != "consumer bank.http.v1" || !st[0].Ready || st[0].Status.Group != "bank.http.v1" {
			t.Errorf("%s: %d %+v", path, resp.StatusCode, st)
		}
	}
}

func TestHealthBeforeRunIsUnavailable(t *testing.T) {
	c, _ := memoryProjector("idle", 1)
	b := newBank(t, 1)
	r, err := consumers.NewRunner(c, b.serde, []string{b.addr})
	must(t, err)
	srv := httptest.NewServer(health.Handler(r))
	defer srv.Close()
	for _, path := range []string{"/livez", "/readyz"} {
		resp, err := http.Get(srv.URL + path)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s before Run: %d, want 503", path, resp.StatusCode)
		}
	}
}
