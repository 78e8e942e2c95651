package consumers

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/internal/clock"
	"github.com/recq/recq/streams"
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
	}
	do   func() error // handles cur in the batch
	mark func() error // records cur's id in the observer's dedupe store
	ids  *pollIDs     // an observer's ids taken in this poll
	// redriven are the redriven events of this batch that were handled:
	// done once the batch commits.
	redriven []deadletter.Redriven
}

func (r *Runner) newPass(work context.Context, key state.Partition, b state.Batch, ids *pollIDs) *pass {
	p := &pass{r: r, work: work, key: key, b: b, ids: ids}
	handle := func(ctx context.Context) error { return call(ctx, p.cur.h, r.codec, p.cur.rec, p.cur.md) }
	// The handlers' context carries the event in hand, so what they
	// publish (streams.Publisher, aggregates.Invoker) continues its flow:
	// same correlation id, the event as causation.
	hctx := streams.ContextWithMessageSource(work, &p.cur.md)
	p.do = func() error { return b.Do(hctx, handle) }
	p.mark = func() error { return r.dedupe.Mark(work, r.group, p.cur.md.ID()) }
	return p
}

// process handles rec or decides it is not to be handled. It returns false
// if ctx ended first: the batch stops there.
func (p *pass) process(ctx context.Context, rec *kgo.Record) bool {
	r := p.r
	h, typed := r.handler(rec)
	var d deadletter.Redriven // set for an event redriven from the queue
	var replay bool           // ...that was done before: handle it, record nothing
	if q := r.q; q != nil {
		if rec.Topic == r.retryTopic {
			var ok bool
			if d, replay, ok = p.redrivenEvent(ctx, rec); !ok {
				return true
			}
			if b := q.Index().BlockerOfRedriven(rec.Key, d.ID); b != "" && r.parking {
				return p.dead(ctx, rec, h, d, deadletter.ReasonParked, nil, 0, b)
			}
		} else {
			if q.Index().Has(rec.Topic, rec.Partition, rec.Offset) {
				return true // died before a crash or a rebalance: the queue decides its fate
			}
			if !typed {
				return p.dead(ctx, rec, h, d, deadletter.ReasonNoType,
					errors.New("the record has no "+streams.HeaderType+" header: it was not written by recq's publisher"), 1, "")
			}
			if h == nil {
				return true // nobody here handles this type
			}
			if b := q.Index().Blocker(rec.Key, rec.Topic, rec.Partition, rec.Offset); b != "" && r.parking {
				return p.dead(ctx, rec, h, d, deadletter.ReasonParked, nil, 0, b)
			}
		}
	}
	if h == nil {
		if !replay {
			p.handled(d) // a redriven event of a type no longer handled
		}
		return true
	}
	p.cur.h, p.cur.rec, p.cur.md = h, rec, metadata(r.group, rec)
	if p.ids != nil && !p.ids.take(p.cur.md.ID()) {
		return true // a copy of an event this poll handles already
	}
	if d.ID != "" {
		// A redriven event shows the handler where it was first written.
		p.cur.md.Topic, p.cur.md.Partition, p.cur.md.Offset, _ = deadletter.ParseID(d.ID)
	}
	policy := r.cfg.Retry
	if h.policy != nil {
		policy = *h.policy
	}
	for attempt := 1; ; attempt++ {
		err := p.do()
		if err == nil {
			if attempt > 1 {
				r.setFailure(nil)
				r.log.Info("recovered", "partition", p.key, "offset", rec.Offset, "attempts", attempt)
			}
			if r.dedupe != nil && p.cur.md.ID() != "" {
				r.retry(ctx, p.key, rec.Offset, p.mark)
			}
			if !replay {
				p.handled(d)
			}
			return true
		}
		kind := deadletter.Classify(err)
		if r.q != nil && (deadletter.Undecodable(err) || policy.Dead(kind, attempt)) {
			reason := deadletter.ReasonHandler
			var pe *deadletter.PanicError
			switch {
			case errors.As(err, &pe):
				reason = deadletter.ReasonPanic
			case deadletter.Undecodable(err):
				reason = deadletter.ReasonUndecodable
			}
			return p.dead(ctx, rec, h, d, reason, err, attempt, "")
		}
		if hook := r.cfg.Hooks.Retried; hook != nil {
			hook(r.group, rec.Topic, kind)
		}
		r.log.Warn("handler failed; retrying", "partition", p.key, "offset", rec.Offset, "attempt", attempt, "kind", kind, "err", err)
		r.setFailure(&Failure{Partition: p.key, Offset: rec.Offset, Attempts: attempt, Error: err.Error()})
		if !clock.Sleep(ctx, policy.Delay(attempt)) {
			return false
		}
	}
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
	}
}

// redrivenEvent reads a retry topic record: the event to handle again, if
// the queue says this record is its current redrive (not discarded,
// redriven again or failed since). replay reports that it was handled
// before: a consumer that lost its positions rebuilds with it, and it is
// done already.
func (p *pass) redrivenEvent(ctx context.Context, rec *kgo.Record) (d deadletter.Redriven, replay, ok bool) {
	r := p.r
	if d, ok = deadletter.ParseRedriven(rec); !ok {
		r.log.Warn("skipping a record of the retry topic that names no dead event", "partition", p.key, "offset", rec.Offset)
		return d, false, false
	}
	st, ok := r.q.Index().RedriveAt(d.ID, d.Generation, rec.Partition, rec.Offset)
	if !ok {
		// The redrive's decision is on the actions topic, written in the
		// same transaction; the index may not have read it yet.
		if !r.retry(ctx, p.key, rec.Offset, func() error { return r.q.Sync(ctx) }) {
			return d, false, false
		}
		st, ok = r.q.Index().RedriveAt(d.ID, d.Generation, rec.Partition, rec.Offset)
	}
	if !ok {
		r.log.Info("skipping a redriven event that is no longer being redriven (discarded, failed again or redriven again)", "id", d.ID, "generation", d.Generation)
	}
	return d, st == deadletter.StatusRedriven, ok
}

// dead writes rec to the dead event queue and reports false only if ctx
// ended before the queue took it.
func (p *pass) dead(ctx context.Context, rec *kgo.Record, h *handler, d deadletter.Redriven, reason deadletter.Reason, err error, attempts int, behind string) bool {
	r := p.r
	now := time.Now().UTC()
	e := &deadletter.Entry{
		ID: d.ID, Reason: reason, ParkedBehind: behind,
		Attempts: d.Attempts + attempts, Generation: d.Generation + 1,
		FirstFailure: d.FirstFailure, LastFailure: now,
		Key: rec.Key, Value: rec.Value,
	}
	if e.ID == "" {
		e.ID = deadletter.ID(rec.Topic, rec.Partition, rec.Offset)
	}
	e.Topic, e.Partition, e.Offset, _ = deadletter.ParseID(e.ID)
	if e.FirstFailure.IsZero() {
		e.FirstFailure = now
	}
	if h != nil {
		e.Handler = h.name
	}
	if err != nil {
		e.Kind, e.Error = deadletter.Classify(err), err.Error()
		var pe *deadletter.PanicError
		if errors.As(err, &pe) {
			e.Stack = pe.Stack
		}
	}
	for _, hd := range rec.Headers {
		if !strings.HasPrefix(hd.Key, "recq-dlq-") {
			e.Headers = append(e.Headers, hd)
		}
	}
	if !r.retry(ctx, p.key, rec.Offset, func() error { return r.q.Dead(p.work, e) }) {
		return false
	}
	if reason == deadletter.ReasonParked {
		r.log.Info("event parked behind a dead event of its key", "id", e.ID, "behind", behind, "queue", deadletter.Topic(r.group))
	} else {
		r.log.Warn("event is dead; it is in the dead event queue", "id", e.ID, "reason", reason, "attempts", e.Attempts,
			"queue", deadletter.Topic(r.group), "err", e.Error)
	}
	r.setFailure(nil)
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
