package consumers

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/streams"
	"github.com/recq/recq/tracing"
)

// pass is the handling of one partition's batch: each record in turn is
// handled (retried under its policy), sent to the dead event queue, parked
// behind a dead event of its key, or skipped.
type pass struct {
	r    *Runner
	work context.Context // outlives the runner's ctx: in-flight work finishes
	key  state.Partition
	b    state.Batch
	// One record in hand at a time: the closures below are made once per
	// batch, not per record, which keeps the per-event cost down.
	cur struct {
		h   *handler
		rec *kgo.Record
		md  Metadata
		ctx context.Context // the handlers': hctx, or its process span's child
		// traced: the record's process span records; attempt counts the
		// attempts of its handler so far.
		traced  bool
		attempt int
		// lctx is the loop's: cancelled with the runner, and carrying the
		// record and its span for the log lines about it.
		lctx context.Context
	}
	hctx, lctx context.Context
	do         func() error // handles cur in the batch
	mark       func() error // records cur's id in the observer's dedupe store
	ids        *pollIDs     // an observer's ids taken in this poll
	up         tracing.Upstream
	// failed is the error that made the record in hand dead, for its
	// process span.
	failed error
	// redriven are the redriven events of this batch that were handled:
	// done once the batch commits.
	redriven []deadletter.Redriven
}

func (r *Runner) newPass(ctx, work context.Context, key state.Partition, b state.Batch, ids *pollIDs) *pass {
	p := &pass{r: r, work: work, key: key, b: b, ids: ids}
	// With a process span that records, which names the handler, an
	// attempt is a span of its own only when it fails or follows a
	// failure: the first runs under the process span (most records need
	// one attempt, and a span is most of what tracing costs a record), and
	// is recorded after the fact if it fails.
	handle := func(ctx context.Context) error {
		h := p.cur.h
		if !p.cur.traced {
			return call(ctx, h, r.codec, p.cur.rec, p.cur.md)
		}
		if p.cur.attempt++; p.cur.attempt == 1 {
			start := time.Now()
			err := call(ctx, h, r.codec, p.cur.rec, p.cur.md)
			if err != nil {
				tracing.Attempted(ctx, h.span, start, streams.FlowOf(p.cur.rec), err)
			}
			return err
		}
		ctx, span := tracing.Start(ctx, h.span, trace.SpanKindInternal, streams.FlowOf(p.cur.rec))
		err := call(ctx, h, r.codec, p.cur.rec, p.cur.md)
		tracing.End(span, err)
		return err
	}
	// The handlers' context carries the event in hand, so what they
	// publish (streams.Publisher, aggregates.Invoker) continues its flow:
	// same correlation id, the event as causation.
	p.hctx = streams.ContextWithMessageSource(work, &p.cur.md)
	if tracing.Enabled() { // a record not sampled passes its trace on through p.up: no context per record
		p.hctx = tracing.ContextWithUpstream(p.hctx, &p.up)
	}
	p.lctx = streams.ContextWithMessageSource(ctx, &p.cur.md)
	p.do = func() error { return b.Do(p.cur.ctx, handle) }
	p.mark = func() error { return r.dedupe.Mark(work, r.group, p.cur.md.ID()) }
	return p
}

// process handles rec or decides it is not to be handled. It returns false
// if ctx ended first: the batch stops there.
func (p *pass) process(ctx context.Context, rec *kgo.Record) bool {
	r := p.r
	h, typed := r.handler(rec)
	p.cur.h, p.cur.rec, p.cur.md = h, rec, metadata(r.group, rec) // before any log line names it
	p.cur.ctx, p.cur.lctx, p.failed = p.hctx, p.lctx, nil
	p.cur.traced, p.cur.attempt = false, 0
	if tracing.MetricsEnabled() {
		start := time.Now()
		defer func() { tracing.Consumed(r.group, rec.Topic, start, p.failed) }()
	}
	if tracing.Enabled() {
		if h != nil && h.untraced {
			p.cur.ctx = tracing.Continue(p.hctx, rec) // what it publishes still joins the trace
		} else {
			var span trace.Span
			var name string
			if h != nil {
				name = h.span
			}
			p.cur.ctx, span = tracing.Process(p.hctx, rec, r.group, name, streams.FlowOf)
			if span.IsRecording() { // else nothing to end, nor a trace to log
				p.cur.traced = h != nil
				p.cur.lctx = trace.ContextWithSpan(p.lctx, span)
				defer func() { tracing.End(span, p.failed) }()
			}
		}
	}
	ctx = p.cur.lctx         // ctx's cancellation, with the record for the log
	var v deadletter.Verdict // Handle, unless the dead event queue says otherwise
	if q := r.q; q != nil {
		handling := deadletter.Handled
		switch {
		case !typed:
			handling = deadletter.Untyped
		case h == nil:
			handling = deadletter.Unhandled
		}
		if !r.retry(ctx, p.key, rec.Offset, func() (err error) { v, err = q.Route(ctx, rec, handling, r.parking); return err }) {
			return false
		}
		switch v.Do {
		case deadletter.Skip:
			if v.Why != "" {
				r.log.InfoContext(ctx, "skipping "+v.Why, "partition", p.key, "offset", rec.Offset, "id", v.Redriven.ID, "generation", v.Redriven.Generation)
			}
			return true
		case deadletter.Park:
			return p.dead(ctx, rec, h, deadletter.Failure{Reason: deadletter.ReasonParked, Behind: v.Behind, Redriven: v.Redriven})
		case deadletter.DeadUntyped:
			return p.dead(ctx, rec, h, deadletter.Failure{Reason: deadletter.ReasonNoType, Attempts: 1,
				Err: errors.New("the record has no " + streams.HeaderType + " header: it was not written by recq's publisher")})
		}
	}
	d, replay := v.Redriven, v.Replay
	if h == nil {
		if !replay {
			p.handled(d) // a redriven event of a type no longer handled
		}
		return true
	}
	if p.ids != nil && !p.ids.take(p.cur.md.ID()) {
		return true // a copy of an event this poll handles already
	}
	if d.ID != "" {
		// A redriven event shows the handler where it was first written.
		p.cur.md.Topic, p.cur.md.Partition, p.cur.md.Offset = d.Topic, d.Partition, d.Offset
	}
	policy := r.cfg.Retry
	if h.policy != nil {
		policy = *h.policy
	}
	dead := func(err error, attempt int) bool {
		kind := deadletter.Classify(err)
		dead := r.q != nil && policy.Dead(err, attempt)
		tracing.Failed(r.group, rec.Topic, kind.String(), !dead)
		if hook := r.cfg.Hooks.Retried; hook != nil && !dead {
			hook(r.group, rec.Topic, kind)
		}
		return dead
	}
	attempts, err, ok := r.attempt(ctx, p.key, rec.Offset, policy, p.do, dead)
	switch {
	case !ok:
		return false
	case err != nil:
		p.failed = err
		return p.dead(ctx, rec, h, deadletter.Failure{Reason: deadletter.ReasonFor(err), Err: err, Attempts: attempts, Redriven: d})
	}
	if r.dedupe != nil && p.cur.md.ID() != "" {
		r.retry(ctx, p.key, rec.Offset, p.mark)
	}
	if !replay {
		p.handled(d)
	}
	return true
}

// pollIDs are the event ids an observer's batches of one poll have taken
// for handling. The dedupe store is asked once per batch, before any of
// its handlers marks an id, so it cannot see a second copy of an event in
// the same batch, or in another partition's batch of the same poll; the
// next poll asks it after this one's marks.
type pollIDs struct {
	mu sync.Mutex
	m  map[string]struct{}
}

// take reports whether id is new in this poll (or empty: no id, nothing to
// dedupe), and takes it.
func (s *pollIDs) take(id string) bool {
	if id == "" {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; ok {
		return false
	}
	s.m[id] = struct{}{}
	return true
}

// handled notes a redriven event as handled, for after the commit.
func (p *pass) handled(d deadletter.Redriven) {
	if d.ID != "" {
		p.redriven = append(p.redriven, d)
		tracing.Redriven(p.r.group, d.Topic)
	}
}

// dead writes rec to the dead event queue and reports false only if ctx
// ended before the queue took it.
func (p *pass) dead(ctx context.Context, rec *kgo.Record, h *handler, f deadletter.Failure) bool {
	r := p.r
	if h != nil {
		f.Handler = h.name
	}
	e := deadletter.NewEntry(rec, r.group, f, time.Now())
	if !r.retry(ctx, p.key, rec.Offset, func() error { return r.q.Dead(p.cur.ctx, e) }) {
		return false
	}
	tracing.Dead(r.group, rec.Topic, string(f.Reason))
	if f.Reason == deadletter.ReasonParked {
		r.log.InfoContext(ctx, "event parked behind a dead event of its key", "id", e.ID, "behind", f.Behind, "queue", deadletter.Topic(r.group))
	} else {
		r.log.WarnContext(ctx, "event is dead; it is in the dead event queue", "id", e.ID, "reason", f.Reason, "attempts", e.Attempts,
			"queue", deadletter.Topic(r.group), "err", e.Error)
	}
	r.clearFailure(p.key)
	return true
}

// committed runs after the batch committed: its redriven events are done.
func (p *pass) committed(ctx context.Context) {
	if len(p.redriven) == 0 {
		return
	}
	if err := p.r.q.Done(ctx, p.redriven...); err != nil {
		p.r.log.Warn("recording handled redriven events failed; they are recorded when their retry partition is next assigned", "err", err)
	}
}
