// Package health tells an orchestrator whether a service's recq components
// are alive and ready: Handler serves /livez, /readyz and /status for any
// number of them (consumers.Runner, aggregates.Runner), and Probe keeps
// track of whether a dependency answers.
//
// Alive means the component's Run is running: a component retrying a
// failure is alive (restarting it would not help). Ready means it is doing
// its work now: not while the broker or Redis is unreachable, not while it
// backs off a failure, not before it has caught up or joined its group.
// A component that is not ready says why in Report.Reason.
package health

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Component is what Handler asks of each component it serves.
type Component interface {
	Health() Report
}

// Report is one component's health.
type Report struct {
	Name   string `json:"name"` // e.g. "consumer todo.stats.v1", "aggregate todo"
	Alive  bool   `json:"alive"`
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"` // why it is not ready
	Status any    `json:"status"`           // the component's own Status
}

// Handler serves, as JSON lists of Reports: GET /livez (503 unless every
// component is alive), GET /readyz (503 unless every one is ready) and
// GET /status (always 200).
func Handler(components ...Component) http.Handler {
	mux := http.NewServeMux()
	serve := func(ok func(Report) bool) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			code := http.StatusOK
			reports := make([]Report, len(components))
			for i, c := range components {
				reports[i] = c.Health()
				if !ok(reports[i]) {
					code = http.StatusServiceUnavailable
				}
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(reports)
		}
	}
	mux.HandleFunc("GET /livez", serve(func(r Report) bool { return r.Alive }))
	mux.HandleFunc("GET /readyz", serve(func(r Report) bool { return r.Ready }))
	mux.HandleFunc("GET /status", serve(func(Report) bool { return true }))
	return mux
}

// ProbeInterval is how often a Probe asks; ProbeTimeout bounds one answer.
const (
	ProbeInterval = time.Second
	ProbeTimeout  = 2 * time.Second
)

// Probe remembers whether a dependency answered its last ping, and since
// when it has not. The zero Probe knows of no failure.
type Probe struct {
	mu    sync.Mutex
	err   error
	since time.Time
}

// Run calls ping every ProbeInterval, each call bounded by ProbeTimeout,
// until ctx ends. The caller owns the goroutine it runs in.
func (p *Probe) Run(ctx context.Context, ping func(context.Context) error) {
	t := time.NewTicker(ProbeInterval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
		err := ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		p.set(err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Probe) set(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case err == nil:
		p.err = nil
	case p.err == nil:
		p.err, p.since = err, time.Now()
	default:
		p.err = err
	}
}

// Reason says why a component that needs the probed dependency (named
// what, e.g. "the broker") is not ready, or "" while it answers.
func (p *Probe) Reason(what string) string {
	since, err := p.Failing()
	if err == nil {
		return ""
	}
	return fmt.Sprintf("%s has not answered since %s: %v", what, since.Format(time.RFC3339), err)
}

// Failing is since when pings have failed and the last one's error; nil while
// the dependency answers.
func (p *Probe) Failing() (since time.Time, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.since, p.err
}
