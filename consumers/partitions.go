package consumers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/consumers/state"
)

// commit commits b up to next, retrying until it lands, is fenced (then the
// partition is claimed again) or ctx ends; landed, if not nil, runs once it
// landed. A batch that failed half-way (state.ErrPartiallyApplied) is
// retried like a store outage: the store holds the rest of its writes and
// applies them first, once, so a retry never applies anything twice.
func (r *Runner) commit(ctx, work context.Context, b state.Batch, lease state.Lease, next int64, landed func()) {
	key := lease.Partition
	var fenced error
	if !r.retry(ctx, key, next-1, func() error {
		if pt := r.cfg.Participant; pt != nil {
			if err := pt.Flush(work, key); err != nil {
				return err
			}
		}
		err := b.Commit(work, next)
		if errors.Is(err, state.ErrFenced) {
			fenced = err
			return nil // stop retrying; claimed again below
		}
		if errors.Is(err, state.ErrPartiallyApplied) {
			r.mu.Lock()
			if p := r.parts[key]; p != nil && p.lease.Epoch == lease.Epoch {
				p.pending = true // for Status, until the commit lands
			}
			r.mu.Unlock()
		}
		return err
	}) {
		return
	}
	if fenced != nil {
		r.log.Warn("partition claimed by another owner; claiming it again if the group still assigns it here", "partition", key, "err", fenced)
		r.mu.Lock()
		if p := r.parts[key]; p != nil {
			p.fenced = true
			r.wake()
		}
		r.mu.Unlock()
		return
	}
	if landed != nil {
		landed()
	}
	r.mu.Lock()
	if p := r.parts[key]; p != nil && p.lease.Epoch == lease.Epoch {
		p.next, p.pending, p.oldest = next, false, time.Time{}
	}
	r.checkHeadLocked()
	r.notifyLocked()
	r.mu.Unlock()
}

// applyHeld adds to a poll's commits one for each partition whose claim
// found writes held in the store and that no commit applies yet: the
// poll's batch of the partition, or else (no records came, or the batch is
// stale after a re-claim) a commit of no records at the lease's position.
func (r *Runner) applyHeld(ctx context.Context, poll uint64, commits map[state.Partition]func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, p := range r.parts {
		if !p.pending || p.applying || p.fenced {
			continue
		}
		c, ok := commits[key]
		if !ok || p.seeked >= poll {
			lease := p.lease
			c = func() { r.commit(ctx, context.WithoutCancel(ctx), r.batches.Begin(lease), lease, lease.Next, nil) }
		}
		p.applying = true
		commits[key] = func() {
			c()
			r.mu.Lock()
			p.applying = false
			r.mu.Unlock()
		}
	}
}

// wakeForHeldLocked ends the poll in progress if a partition has writes
// held and no commit applying them, so that applyHeld runs even when no
// record comes.
func (r *Runner) wakeForHeldLocked() {
	for _, p := range r.parts {
		if p.pending && !p.applying && r.wake != nil {
			r.wake()
			return
		}
	}
}

// claim takes the partition's lease, retrying until the store answers or
// ctx ends (a revocation cancels it).
func (r *Runner) claim(ctx context.Context, key state.Partition) (state.Lease, error) {
	var l state.Lease
	ok := r.retry(ctx, key, -1, func() (err error) {
		l, err = r.batches.Claim(ctx, r.group, key)
		if err == nil && r.cfg.Participant != nil {
			err = r.cfg.Participant.Claimed(ctx, l)
		}
		return err
	})
	if !ok {
		return l, fmt.Errorf("consumers: %s: claim %s: %w", r.group, key, context.Cause(ctx))
	}
	return l, nil
}

// reclaimFenced takes a new lease for each partition whose commit was
// fenced and that the group coordinator still assigns to this member, and
// moves it to the stored position: another owner may have applied records
// since. poll is the poll whose batches are now stale. It reports whether
// a fenced partition is left for a later call.
func (r *Runner) reclaimFenced(ctx context.Context, cl *kgo.Client, poll uint64) (left bool) {
	r.mu.Lock()
	var fenced []state.Partition
	for key, p := range r.parts {
		if p.fenced {
			fenced = append(fenced, key)
		}
	}
	r.mu.Unlock()
	if len(fenced) == 0 {
		return false
	}
	// A member paused past its session timeout finds its commits fenced
	// before franz-go learns it left the group: claiming then would fence
	// the partition's new owner, and the two would take it from each other
	// until the group caught up. Only the coordinator knows.
	here, err := r.assignedHere(ctx, cl)
	if err != nil {
		r.log.Warn("cannot ask the group coordinator who owns the fenced partitions; asking again", "err", err)
		return true
	}
	mine := fenced[:0]
	for _, key := range fenced {
		if here[key] {
			mine = append(mine, key)
		} else {
			left = true
		}
	}
	if left {
		r.log.Info("fenced partitions not assigned to this member by the group coordinator; waiting for the group to take them away", "partitions", len(fenced)-len(mine))
	}
	fenced = mine
	type claimed struct {
		lease state.Lease
		next  int64
	}
	reclaimed := map[state.Partition]claimed{}
	offsets := map[string]map[int32]kgo.Offset{}
	for _, key := range fenced {
		l, err := r.claim(ctx, key)
		if err != nil {
			return false // shutting down
		}
		next := l.Next
		if next == state.NoPosition {
			starts, err := r.admin().ListStartOffsets(ctx, key.Topic)
			if err == nil {
				err = starts.Error()
			}
			if err != nil {
				r.log.Warn("cannot find the partition's start after a fenced commit; trying again", "partition", key, "err", err)
				left = true
				continue
			}
			o, _ := starts.Lookup(key.Topic, key.Partition)
			next = o.Offset
		}
		reclaimed[key] = claimed{l, next}
		if offsets[key.Topic] == nil {
			offsets[key.Topic] = map[int32]kgo.Offset{}
		}
		offsets[key.Topic][key.Partition] = kgo.NewOffset().At(next)
	}
	// The other owners may have sent records past these positions to the
	// dead event queue: know them before handling those records again.
	if err := r.syncQueue(ctx, offsets); err != nil {
		r.log.Warn("reading the dead event queue after a fenced commit failed; trying again", "err", err)
		return true
	}
	for key, c := range reclaimed {
		cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{key.Topic: {key.Partition: {Epoch: -1, Offset: c.next}}})
		r.mu.Lock()
		if p := r.parts[key]; p != nil {
			p.lease, p.next, p.seeked, p.fenced, p.pending = c.lease, c.next, poll, false, c.lease.Pending
		}
		r.mu.Unlock()
	}
	return left
}

// assignedHere asks the group coordinator which partitions it assigns to
// this member now; none while the group rebalances or once the member's
// session has expired.
func (r *Runner) assignedHere(ctx context.Context, cl *kgo.Client) (map[state.Partition]bool, error) {
	member, _ := cl.GroupMetadata()
	gs, err := r.admin().DescribeGroups(ctx, r.group)
	if err == nil {
		err = gs.Error()
	}
	if err != nil {
		return nil, err
	}
	here := map[state.Partition]bool{}
	for _, m := range gs[r.group].Members {
		a, ok := m.Assigned.AsConsumer()
		if m.MemberID != member || !ok {
			continue
		}
		for _, t := range a.Topics {
			for _, n := range t.Partitions {
				here[state.Partition{Topic: t.Topic, Partition: n}] = true
			}
		}
	}
	return here, nil
}

// assigned marks the member as joined. Partitions it adds are claimed in
// adjust, which comes next and checks the head once they are known; a
// member that gained nothing may be at the head already.
func (r *Runner) assigned(_ context.Context, cl *kgo.Client, added map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.adm == nil { // the first callback of this Run
		r.adm = kadm.NewClient(cl)
	}
	r.joined = true
	if len(added) > 0 {
		r.log.Info("partitions assigned", "partitions", added)
	}
	if len(added) == 0 {
		r.checkHeadLocked()
		r.notifyLocked()
	}
}

// adjust claims the newly assigned partitions and decides where each
// starts: at the store's position, else (a new group, or a store that lost
// its data along with the read model) at the start policy; in Kafka-offset
// mode at the committed offset, else at the start policy. It also records
// each partition's head.
func (r *Runner) adjust(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	topics := make([]string, 0, len(offsets))
	for t := range offsets {
		topics = append(topics, t)
	}
	adm := r.admin()
	heads, err := adm.ListCommittedOffsets(ctx, topics...)
	if err == nil {
		err = heads.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("consumers: %s: head offsets: %w", r.group, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("consumers: %s: start offsets: %w", r.group, err)
	}
	for t, ps := range offsets {
		for n, o := range ps {
			key := state.Partition{Topic: t, Partition: n}
			l, err := r.claim(ctx, key)
			if err != nil {
				return nil, err
			}
			head, _ := heads.Lookup(t, n)
			first, _ := starts.Lookup(t, n)
			committed := o.EpochOffset().Offset
			if !r.cfg.KafkaOffsets {
				committed = l.Next
			}
			next := committed
			switch {
			case committed >= 0:
			case r.c.kind == KindObserver:
				next = head.Offset
			default:
				next = first.Offset
			}
			// Offsets are set explicitly, with no leader epoch: a store's
			// position is not a Kafka commit the client could validate.
			ps[n] = kgo.NewOffset().At(next).WithEpoch(-1)
			if l.Pending {
				r.log.Warn("writes of records below the stored position are held after a commit that failed half-way; applying them first", "partition", key, "offset", l.Next)
			}
			r.mu.Lock()
			r.parts[key] = &partition{lease: l, next: next, target: head.Offset, pending: l.Pending}
			r.mu.Unlock()
		}
	}
	if err := r.syncQueue(ctx, offsets); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.wakeForHeldLocked()
	r.checkHeadLocked()
	r.notifyLocked()
	return offsets, nil
}

// syncQueue reads the dead event queue up to its end, so the entries the
// partitions' previous owners wrote are known before their records are
// handled again, and records as done the redriven events the retry
// partitions among them show handled (a previous owner committed and
// stopped before recording them).
func (r *Runner) syncQueue(ctx context.Context, offsets map[string]map[int32]kgo.Offset) error {
	if r.q == nil {
		return nil
	}
	if err := r.q.Sync(ctx); err != nil {
		return fmt.Errorf("consumers: %s: %w", r.group, err)
	}
	for n, o := range offsets[r.retryTopic] {
		if ds := r.q.Index().HandledRedrives(n, o.EpochOffset().Offset); len(ds) > 0 {
			if err := r.q.Done(ctx, ds...); err != nil {
				r.log.Warn("recording handled redriven events failed", "err", err)
			}
		}
	}
	// Parked events whose key cleared while no consumer was there to
	// release them.
	r.q.ReleaseAll(ctx)
	return nil
}

// revoked commits the marks of what was handled (BlockRebalanceOnPoll
// holds the rebalance until the poll's batches are handled, and the commits
// in flight are waited for) and forgets the partitions.
func (r *Runner) revoked(ctx context.Context, cl *kgo.Client, ps map[string][]int32) {
	r.commits.Wait()
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		r.log.Warn("committing offsets on revocation failed", "err", err)
	}
	if len(ps) > 0 {
		r.log.Info("partitions revoked", "partitions", ps)
	}
	r.forget(ps)
}

// lost forgets partitions taken away without a chance to commit.
func (r *Runner) lost(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
	r.commits.Wait() // they will fail (fenced) or land; either way before forgetting
	if len(ps) > 0 {
		r.log.Info("partitions lost with the group session", "partitions", ps)
	}
	r.forget(ps)
}

func (r *Runner) forget(ps map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for t, ns := range ps {
		for _, n := range ns {
			key := state.Partition{Topic: t, Partition: n}
			delete(r.parts, key)
			if pt := r.cfg.Participant; pt != nil {
				pt.Released(key)
			}
		}
	}
	r.notifyLocked()
}

func (r *Runner) admin() *kadm.Client {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.adm
}

func (r *Runner) checkHeadLocked() {
	if r.atHead || !r.joined {
		return
	}
	for _, p := range r.parts {
		if p.pending || p.next < p.target {
			return
		}
	}
	r.atHead = true
	r.log.Info("reached the head of its topics")
}

func (r *Runner) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}
