package consumers

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/health"
)

// remotePoll is how often a wait re-reads positions this member does not
// own (another member advances them; no event tells us).
const remotePoll = 100 * time.Millisecond

// Ready reports whether the runner is doing its work now: it has reached
// the head of its topics (every partition it owned had been handled up to
// the last stable offset it had when assigned: Evento's head reached,
// latched once), it reaches the broker, and it is not backing off a
// failing event, commit or store. Status.Reason says why it is not.
func (r *Runner) Ready() bool { return r.Status().Ready }

// Health reports the runner for health.Handler.
func (r *Runner) Health() health.Report {
	st := r.Status()
	return health.Report{Name: "consumer " + r.group, Alive: st.Running, Ready: st.Ready, Reason: st.Reason, Status: st}
}

// notReadyLocked says why the runner is not ready, or "".
func (r *Runner) notReadyLocked() string {
	if !r.running.Load() {
		return "not running"
	}
	for _, d := range r.probes {
		if why := d.probe.Reason(d.name); why != "" {
			return why
		}
	}
	switch f := r.failing; {
	case f != nil:
		return fmt.Sprintf("retrying %s offset %d since %s (%d attempts): %s", f.Partition, f.Offset, f.Since.Format(time.RFC3339), f.Attempts, f.Error)
	case !r.atHead:
		return "catching up: the head of its topics is not reached yet"
	}
	return ""
}

// WaitHead blocks until the runner has reached the head of its topics (see
// Ready), ctx ends, or Run returns. It may be called before Run starts.
func (r *Runner) WaitHead(ctx context.Context) error {
	return r.await(ctx, "the head", func() bool { return r.atHead })
}

// await waits until cond, called under r.mu, holds. It gives up when ctx
// ends or when a Run that had started has returned.
func (r *Runner) await(ctx context.Context, what string, cond func() bool) error {
	for {
		r.mu.Lock()
		ok, ch, stopped := cond(), r.changed, r.stopped
		r.mu.Unlock()
		switch {
		case ok:
			return nil
		case stopped:
			return ErrNotRunning
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("consumers: %s: waiting for %s: %w", r.group, what, context.Cause(ctx))
		case <-ch:
		}
	}
}

// Status is a runner's health as a service reports it.
type Status struct {
	Group      string
	Running    bool
	Ready      bool   // see Runner.Ready
	Reason     string `json:",omitempty"` // why it is not ready
	Partitions []PartitionStatus
	// Failing is the event or commit being retried, if any.
	Failing *Failure `json:",omitempty"`
	// Dead counts the group's dead events waiting for a decision (recq
	// dlq list), parked ones included, as far as this member has read its
	// dead event queue.
	Dead int
}

// PartitionStatus is one owned partition's progress.
type PartitionStatus struct {
	Topic     string
	Partition int32
	Next      int64 // the next offset to handle
	Head      int64 // the last stable offset when assigned
	Epoch     int64
	// Pending: a commit of the partition failed half-way; the store holds
	// the writes that did not apply and applies them, once, as soon as
	// they succeed (Failing says why they do not).
	Pending bool `json:",omitempty"`
}

// Status reports the runner's state.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Status{Group: r.group, Running: r.running.Load(), Reason: r.notReadyLocked()}
	s.Ready = s.Reason == ""
	if r.q != nil {
		s.Dead = r.q.Index().Count(deadletter.StatusPending)
	}
	if r.failing != nil {
		f := *r.failing
		s.Failing = &f
	}
	for k, p := range r.parts {
		s.Partitions = append(s.Partitions, PartitionStatus{Topic: k.Topic, Partition: k.Partition, Next: p.next, Head: p.target, Epoch: p.lease.Epoch, Pending: p.pending})
	}
	slices.SortFunc(s.Partitions, func(a, b PartitionStatus) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return s
}

// Alive reports whether Run is running; liveness checks use it. A runner
// retrying a failing event is alive (Status says what fails).
func (r *Runner) Alive() error {
	if !r.running.Load() {
		return ErrNotRunning
	}
	return nil
}

// WaitFor blocks until the group has handled the record at offset of
// topic's partition (and everything before it), ctx ends, or Run returns.
// Any member's progress counts, read from the store and the group's
// Kafka offsets for partitions this member does not own.
func (r *Runner) WaitFor(ctx context.Context, topic string, partition int32, offset int64) error {
	return r.waitPositions(ctx, map[state.Partition]int64{{Topic: topic, Partition: partition}: offset + 1})
}

// CatchUp blocks until the group has handled every event committed to its
// topics before the call: read-your-writes after aggregates.Invoker.Send,
// whose events are committed when it returns. With keys, only the
// partitions those keys map to (by Kafka's default partitioner, which recq
// producers use) are waited for, which is cheaper on a busy stream.
func (r *Runner) CatchUp(ctx context.Context, keys ...string) error {
	if err := r.await(ctx, "the group to be joined", func() bool { return r.joined }); err != nil {
		return err
	}
	heads, err := r.admin().ListCommittedOffsets(ctx, r.c.topics...)
	if err == nil {
		err = heads.Error()
	}
	if err != nil {
		return fmt.Errorf("consumers: %s: head offsets: %w", r.group, err)
	}
	targets := map[state.Partition]int64{}
	for t, ps := range heads {
		n := len(ps)
		var keyed map[int32]bool
		if len(keys) > 0 {
			keyed = map[int32]bool{}
			part := kgo.StickyKeyPartitioner(nil).ForTopic(t)
			for _, k := range keys {
				keyed[int32(part.Partition(&kgo.Record{Key: []byte(k)}, n))] = true
			}
		}
		for p, o := range ps {
			if keyed == nil || keyed[p] {
				targets[state.Partition{Topic: t, Partition: p}] = o.Offset
			}
		}
	}
	return r.waitPositions(ctx, targets)
}

// waitPositions waits until the group's position of every partition in
// targets is at least its target.
func (r *Runner) waitPositions(ctx context.Context, targets map[state.Partition]int64) error {
	for {
		r.mu.Lock()
		ch, running := r.changed, r.joined
		pending := map[state.Partition]int64{}
		for k, t := range targets {
			if p, ok := r.parts[k]; !ok || p.pending || p.next < t {
				pending[k] = t
			}
		}
		r.mu.Unlock()
		if !running {
			return ErrNotRunning
		}
		if len(pending) == 0 {
			return nil
		}
		remote, err := r.remotePositions(ctx)
		if err != nil {
			return err
		}
		done := true
		for k, t := range pending {
			done = done && remote[k] >= t
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("consumers: %s: waiting for %s: %w", r.group, describe(pending), context.Cause(ctx))
		case <-ch:
		case <-time.After(remotePoll):
		}
	}
}

// remotePositions is what the store and Kafka know of the group's
// positions. Both trail the truth (Kafka offsets are committed after the
// store), so their maximum is a safe lower bound.
func (r *Runner) remotePositions(ctx context.Context) (map[state.Partition]int64, error) {
	pos := map[state.Partition]int64{}
	if r.cfg.Store != nil {
		sp, err := r.cfg.Store.Positions(ctx, r.group)
		if err != nil {
			return nil, fmt.Errorf("consumers: %s: positions: %w", r.group, err)
		}
		maps.Copy(pos, sp)
	}
	adm := r.admin()
	if adm == nil {
		return pos, nil
	}
	offs, err := adm.FetchOffsets(ctx, r.group)
	if err != nil {
		return nil, fmt.Errorf("consumers: %s: group offsets: %w", r.group, err)
	}
	offs.Each(func(o kadm.OffsetResponse) {
		k := state.Partition{Topic: o.Topic, Partition: o.Partition}
		pos[k] = max(pos[k], o.At)
	})
	return pos, nil
}

// describe lists pending targets for an error message.
func describe(pending map[state.Partition]int64) string {
	var out []string
	for k, t := range pending {
		out = append(out, fmt.Sprintf("%s up to offset %d", k, t))
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}
