package deadletter

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Policy is how often, and how patiently, a failing event is retried. The
// zero Policy is usable: every field has a default.
type Policy struct {
	// Attempts is how many times an event failing permanently is handled
	// before it is dead (default 3; 1: dead at the first failure).
	// Undecodable payloads are dead at the first attempt whatever this says.
	Attempts int
	// TransientAttempts bounds the attempts of an event failing
	// transiently; 0 (the default) retries until it succeeds or the
	// consumer stops, so a long outage dead-letters nothing. With a bound,
	// the event is dead once it is exceeded.
	TransientAttempts int
	// Backoff is the wait before the second attempt (default 100ms); it
	// doubles each attempt up to MaxBackoff (default 10s), with jitter: the
	// wait is drawn between half and the whole of it, so a fleet does not
	// retry in step.
	Backoff    time.Duration
	MaxBackoff time.Duration
}

// Validate reports settings that cannot work.
func (p Policy) Validate() error {
	var errs []error
	if p.Attempts < 0 {
		errs = append(errs, fmt.Errorf("Attempts %d: want 0 (default 3) or more", p.Attempts))
	}
	if p.TransientAttempts < 0 {
		errs = append(errs, fmt.Errorf("TransientAttempts %d: want 0 (unlimited) or more", p.TransientAttempts))
	}
	if p.Backoff < 0 || p.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("Backoff %v, MaxBackoff %v: want 0 (default) or more", p.Backoff, p.MaxBackoff))
	}
	if p.Backoff > 0 && p.MaxBackoff > 0 && p.MaxBackoff < p.Backoff {
		errs = append(errs, fmt.Errorf("MaxBackoff %v is below Backoff %v", p.MaxBackoff, p.Backoff))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("deadletter: policy: %w", err)
	}
	return nil
}

// WithDefaults returns p with every zero field set to its default.
func (p Policy) WithDefaults() Policy {
	if p.Attempts == 0 {
		p.Attempts = 3
	}
	if p.Backoff == 0 {
		p.Backoff = 100 * time.Millisecond
	}
	if p.MaxBackoff == 0 {
		p.MaxBackoff = max(10*time.Second, p.Backoff)
	}
	return p
}

// Dead says whether an event that has failed attempts times, the last
// time with err, has had its chances: at once if err says it cannot be
// decoded (another attempt reads the same bytes), else by err's Kind.
func (p Policy) Dead(err error, attempts int) bool {
	if Undecodable(err) {
		return true
	}
	p = p.WithDefaults()
	if Classify(err) == KindTransient {
		return p.TransientAttempts > 0 && attempts >= p.TransientAttempts
	}
	return attempts >= p.Attempts
}

// Delay is the wait after the attempt-th failure: exponential, capped,
// jittered.
func (p Policy) Delay(attempt int) time.Duration {
	p = p.WithDefaults()
	d := p.Backoff << min(max(attempt-1, 0), 20)
	if d <= 0 || d > p.MaxBackoff {
		d = p.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}
