package aggregates

import (
	"fmt"
	"slices"
	"time"

	"github.com/recq/recq/health"
)

// Status is a runner's state for operators (health.Handler's /status).
type Status struct {
	Aggregate  string
	Group      string
	Running    bool
	Ready      bool    // see Runner.Ready
	Reason     string  `json:",omitempty"` // why it is not ready
	Partitions []int32 // the command partitions it owns, as the group said (a revocation while idle can be missed: see assigned)
	Cached     int     // aggregates loaded in memory
	// Failing is what the runner is retrying, if anything.
	Failing *Failure `json:",omitempty"`
}

// Failure is a poll or batch the runner is backing off from.
type Failure struct {
	What     string
	Error    string
	Attempts int
	Since    time.Time
}

// Status reports the runner's state.
func (r *Runner[S]) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Status{Aggregate: r.agg.name, Group: r.group, Running: r.running, Cached: len(r.cache.m), Reason: r.notReadyLocked()}
	st.Ready = st.Reason == ""
	for p := range r.owned {
		st.Partitions = append(st.Partitions, p)
	}
	slices.Sort(st.Partitions)
	if r.failing != nil {
		f := *r.failing
		st.Failing = &f
	}
	return st
}

// Ready reports whether the runner handles commands now: it runs, has
// joined its group, reaches the broker and is not backing off a failure.
// Status.Reason says why it is not.
func (r *Runner[S]) Ready() bool { return r.Status().Ready }

// Health reports the runner for health.Handler.
func (r *Runner[S]) Health() health.Report {
	st := r.Status()
	return health.Report{Name: "aggregate " + r.agg.name, Alive: st.Running, Ready: st.Ready, Reason: st.Reason, Status: st}
}

func (r *Runner[S]) notReadyLocked() string {
	if !r.running {
		return "not running"
	}
	if why := r.broker.Reason("the broker"); why != "" {
		return why
	}
	switch f := r.failing; {
	case f != nil:
		return fmt.Sprintf("%s since %s (%d attempts): %s", f.What, f.Since.Format(time.RFC3339), f.Attempts, f.Error)
	case !r.joined:
		return "joining the group " + r.group
	}
	return ""
}

func (r *Runner[S]) setRunning(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running = on
}

// setFailing records what is being retried; an empty what clears it.
func (r *Runner[S]) setFailing(what string, err error, attempts int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case what == "":
		r.failing = nil
	case r.failing != nil && r.failing.What == what:
		r.failing.Error, r.failing.Attempts = oneLine(err), attempts
	default:
		r.failing = &Failure{What: what, Error: oneLine(err), Attempts: attempts, Since: time.Now()}
	}
}

// clearFailing forgets a failure of what, once it has passed.
func (r *Runner[S]) clearFailing(what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failing != nil && r.failing.What == what {
		r.failing = nil
	}
}
