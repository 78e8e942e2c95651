package aggregates

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/internal/clock"
	"github.com/recq/recq/streams"
	"github.com/recq/recq/tracing"
)

// retryPolicy paces the runner's retries of a poll or batch that failed for
// a reason outside the commands (a broker restart, a full disk, a registry
// outage): short enough to be back within seconds of the dependency.
var retryPolicy = deadletter.Policy{Backoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second}

// whatPoll names a failed poll in logs and Status.
const whatPoll = "poll failed (franz-go rejoins the group and refetches by itself)"

// errNewSession asks Run for a fresh transactional session: after a failed
// end of transaction franz-go's client may be in a state it cannot leave.
var errNewSession = errors.New("transactional session must be recreated")

// Run handles commands until ctx ends, then leaves the group. It refuses to
// start (an error wrapping ErrTopics) on topics that cannot hold the
// aggregate's history; see EnsureTopics and WithFiniteRetention. After
// that it stops only for what retrying cannot mend: ctx, topics changed
// under it, or missing permissions. (Another runner with its instance id
// fences it; it backs off and starts a new session, which fences that one:
// both slow down, neither decides a command twice. Give each its own.)
// Everything else (a lost group session, a broker restart, a full disk, an
// unreachable registry) is logged, backed off and retried: the batch is
// aborted and its commands polled again.
func (r *Runner[S]) Run(ctx context.Context) error {
	defer r.history.Close()
	probeCl, err := r.prepare(ctx)
	if err != nil {
		return fmt.Errorf("aggregates: runner %s: %w", r.agg.name, err)
	}
	defer probeCl.Close()
	defer tracing.RegisterLag(r.reportLag(kadm.NewClient(probeCl)))()
	ctx, r.halt = context.WithCancelCause(ctx)
	defer r.halt(nil)
	r.setRunning(true)
	defer r.setRunning(false)
	pctx, stopProbe := context.WithCancel(ctx)
	var probe sync.WaitGroup
	probe.Go(func() { r.broker.Run(pctx, probeCl.Ping) })
	probe.Go(func() { r.watchTopics(pctx, streams.NewAdmin(probeCl)) })
	defer func() {
		stopProbe()
		probe.Wait()
	}()
	instance := r.cfg.instance
	if instance == "" {
		instance = streams.NewID()
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(r.brokers...),
		kgo.ClientID("recq-runner"),
		kgo.TransactionalID(r.group + "-" + instance),
		kgo.TransactionTimeout(TransactionTimeout),
		// A record the broker keeps refusing (a full disk) fails the batch
		// with the broker's error (one retry: a timeout would hide it)
		// before its transaction times out; the runner retries the batch.
		kgo.RecordRetries(1),
		kgo.RecordDeliveryTimeout(LoadWait),
		kgo.ConsumerGroup(r.group),
		kgo.ConsumeTopics(CommandsTopic(r.agg.name)),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.RecordPartitioner(partitioner{manual: map[string]bool{CommandsTopic(r.agg.name): true, EventsTopic(r.agg.name): true}}),
		kgo.OnPartitionsAssigned(r.assigned),
		kgo.OnPartitionsRevoked(r.drop),
		kgo.OnPartitionsLost(r.drop),
		tracing.ProducerHooks(streams.FlowOf), // as streams.NewClient's
	}
	if r.cfg.session > 0 {
		opts = append(opts, kgo.SessionTimeout(r.cfg.session))
	}
	for sessions := 0; ; sessions++ {
		sess, err := kgo.NewGroupTransactSession(opts...)
		r.mu.Lock()
		r.joined = false // until the session is given its partitions
		clear(r.owned)
		clear(r.inHand)
		r.mu.Unlock()
		if err != nil {
			return fmt.Errorf("aggregates: runner %s: %w", r.agg.name, err)
		}
		err = r.serve(ctx, sess)
		sess.Close()
		// What the closed session held is gone: its partitions are
		// someone's (or ours again) after the next assignment.
		r.mu.Lock()
		r.cache.clear()
		r.mu.Unlock()
		switch {
		case errors.Is(err, errNewSession):
			// Sessions that keep failing back off like batches: two
			// runners with one instance id fence each other for ever.
			d := retryPolicy.Delay(sessions + 1)
			r.log.Warn("starting a new transactional session (if this repeats with \"fenced\", another runner uses the same instance id: give each its own)", "err", err, "in", d.Round(time.Millisecond))
			r.setFailing("transactional session failed", err, sessions+1)
			clock.Sleep(ctx, d)
		case err != nil:
			return fmt.Errorf("aggregates: runner %s: %w", r.agg.name, err)
		case errors.Is(context.Cause(ctx), ErrTopics):
			return fmt.Errorf("aggregates: runner %s: %w", r.agg.name, context.Cause(ctx))
		default:
			return nil
		}
	}
}

// serve polls and handles batches on one session until ctx ends (nil), a
// fatal error, or errNewSession.
func (r *Runner[S]) serve(ctx context.Context, sess *kgo.GroupTransactSession) error {
	failures := 0 // in a row, for the backoff
	retry := func(what string, err error) {
		failures++
		d := retryPolicy.Delay(failures)
		r.log.Warn(what+"; retrying", "err", oneLine(err), "attempt", failures, "retry_in", d.Round(time.Millisecond))
		r.setFailing(what, err, failures)
		clock.Sleep(ctx, d)
	}
	for {
		fs := sess.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		// franz-go hands back records of some partitions beside errors of
		// others, and has moved its positions past those records: they
		// must be handled now, or the next commit skips them.
		switch err := pollError(fs); {
		case err != nil && fatal(err):
			return err
		case err != nil && fs.NumRecords() == 0:
			retry(whatPoll, err)
			continue
		case err != nil:
			r.log.Warn(whatPoll, "err", oneLine(err))
		default:
			r.clearFailing(whatPoll)
		}
		if fs.NumRecords() == 0 {
			continue
		}
		r.mu.Lock()
		r.cache.batch++
		r.mu.Unlock()
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("%w: begin: %w", errNewSession, err)
		}
		r.noteInHand(fs.Records())
		touched, err := r.batch(ctx, sess, fs.Records())
		var committed bool
		var endErr error
		if err == nil {
			committed, endErr = sess.End(ctx, kgo.TryCommit)
		} else {
			_, endErr = sess.End(ctx, kgo.TryAbort)
		}
		if committed {
			r.inHandDone()
			failures = 0
			r.setFailing("", nil, 0)
			r.snapshots(ctx, touched)
			continue
		}
		// The in-memory states ran ahead of what Kafka kept: reload them
		// from the log when next needed. The batch is polled again.
		r.forget(touched)
		if ctx.Err() != nil {
			return nil
		}
		switch cause := errors.Join(err, endErr); {
		case cause == nil:
			// Aborted for a rebalance: the commands go to whoever owns
			// them now.
		case fatal(cause):
			return cause
		case endErr != nil:
			return fmt.Errorf("%w: %s", errNewSession, oneLine(cause))
		case errors.Is(err, errUndecided):
			retry("an aggregate's history is not decided yet: a transaction holding some of its events is still open; the batch is not decided on a history that may still grow", err)
		default:
			retry("batch failed and was aborted", err)
		}
	}
}

// pollError is the first error of a poll that is not a shutdown.
func pollError(fs kgo.Fetches) error {
	var first error
	fs.EachError(func(topic string, p int32, err error) {
		if first != nil || errors.Is(err, context.Canceled) {
			return
		}
		if topic == "" {
			first = fmt.Errorf("group session: %w", err) // not a fetch: franz-go reports the group here
		} else {
			first = fmt.Errorf("fetch %s partition %d: %w", topic, p, err)
		}
	})
	return first
}

// fatal reports the errors retrying cannot mend: a closed client, missing
// permissions, topics unfit for an event store. A fenced producer is not
// among them: a transaction the broker timed out (a broker frozen past
// TransactionTimeout) fences its producer too, and a new session goes on.
func fatal(err error) bool {
	for _, e := range []error{
		kgo.ErrClientClosed, kerr.TransactionalIDAuthorizationFailed,
		kerr.GroupAuthorizationFailed, kerr.TopicAuthorizationFailed, kerr.ClusterAuthorizationFailed, ErrTopics,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// oneLine shortens an error joined from many (one per record of a batch)
// to its first and a count, so logs and exit messages stay one line.
func oneLine(err error) string {
	var errs []error
	for {
		j, ok := err.(interface{ Unwrap() []error })
		if !ok {
			break
		}
		errs = j.Unwrap()
		if len(errs) != 1 {
			break
		}
		err = errs[0]
	}
	if len(errs) > 1 {
		return fmt.Sprintf("%v (and %d more)", errs[0], len(errs)-1)
	}
	return err.Error()
}
