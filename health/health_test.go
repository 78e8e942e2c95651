package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/recq/recq/health"
)

type component health.Report

func (c component) Health() health.Report { return health.Report(c) }

func TestHandlerAnswersForEveryComponent(t *testing.T) {
	ok := component{Name: "consumer a", Alive: true, Ready: true}
	waiting := component{Name: "aggregate b", Alive: true, Reason: "joining the group b.runner"}
	for _, tc := range []struct {
		path       string
		components []health.Component
		code       int
	}{
		{"/livez", []health.Component{ok, waiting}, 200},
		{"/readyz", []health.Component{ok, waiting}, 503},
		{"/readyz", []health.Component{ok}, 200},
		{"/livez", []health.Component{component{Name: "stopped"}}, 503},
		{"/status", []health.Component{component{Name: "stopped"}}, 200},
	} {
		srv := httptest.NewServer(health.Handler(tc.components...))
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		var reports []health.Report
		err = json.NewDecoder(resp.Body).Decode(&reports)
		resp.Body.Close()
		srv.Close()
		if err != nil || resp.StatusCode != tc.code || len(reports) != len(tc.components) {
			t.Errorf("%s with %d components: %d %+v %v, want %d", tc.path, len(tc.components), resp.StatusCode, reports, err, tc.code)
		}
	}
}

func TestProbeRemembersSinceWhenItFails(t *testing.T) {
	var p health.Probe
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	down := errors.New("connection refused")
	answers := make(chan error, 10)
	answers <- down
	answers <- down
	answers <- nil
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx, func(context.Context) error {
			select {
			case err := <-answers:
				return err
			default:
				return nil
			}
		})
	}()
	deadline := time.Now().Add(5 * time.Second)
	var since time.Time
	for {
		s, err := p.Failing()
		if err != nil {
			since = s
		}
		if err == nil && !since.IsZero() {
			break // failed, then answered again
		}
		if time.Now().After(deadline) {
			t.Fatalf("probe never saw the failure and the recovery (since %v, err %v)", s, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}
