package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/consumers/dedupe"
	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/health"
	"github.com/recq/recq/internal/clock"
	"github.com/recq/recq/streams"
	"github.com/recq/recq/tracing"
)

// ErrNotRunning is returned by the waits of a Runner whose Run has not
// started or has returned.
var ErrNotRunning = errors.New("consumers: runner is not running")

// Runner runs one Consumer as a member of its consumer group.
type Runner struct {
	c        *Consumer
	group    string
	codec    streams.TypedCodec
	brokers  []string
	cfg      RunnerConfig
	handlers map[string]*handler
	// batches is where every batch commits: cfg.Store, or in Kafka-offset
	// mode a private memory store, which gives OnCommit the same meaning.
	batches state.Store
	dedupe  dedupe.Store // observers only
	log     *slog.Logger
	// The dead event queue: q is set by Run before it polls, nil with
	// NoDeadLetters; retryTopic is the group's retry topic.
	q          *deadletter.Queue
	retryTopic string
	parking    bool
	// storePolicy paces the retries of store, dedupe and queue calls
	// (RetryBackoff..MaxRetryBackoff), which never give up.
	storePolicy deadletter.Policy

	running atomic.Bool
	mu      sync.Mutex
	adm     *kadm.Client // while running, from the first assignment
	parts   map[state.Partition]*partition
	joined  bool          // in the group (the first assignment arrived) during this Run
	stopped bool          // a Run started and returned
	atHead  bool          // latched once every owned partition reached its head
	changed chan struct{} // closed and replaced on every change of progress
	failing *Failure
	probes  []*dependency      // what Ready asks about: set by Run
	wake    context.CancelFunc // ends the poll in progress
	// commits are the batch commits in flight (and those applying held
	// writes), owned by the poll loop; rebalance callbacks wait for them.
	commits sync.WaitGroup
	poll    uint64 // the poll loop's current poll, counted from 1; owned by the loop
}

// partition is the runner's view of one owned partition. Its fields change
// under Runner.mu.
type partition struct {
	lease  state.Lease
	next   int64 // next offset to process
	target int64 // the last stable offset when assigned: the head to reach
	// fenced is set by a commit the store refused: another owner claimed
	// the partition. The loop claims it again before its next poll if
	// the group coordinator still assigns it here (reclaimFenced).
	fenced bool
	// seeked is the last poll before the partition was re-seeked
	// (reclaimFenced): batches of that poll or earlier were fetched from the old
	// position and must not commit, or the records between the stored
	// position and theirs would be skipped.
	seeked uint64
	// oldest is the timestamp of the first record of the batch in hand,
	// for the lag metrics (reportLag).
	oldest time.Time
	// pending is set by a claim that found writes of records below next
	// held in the store (state.Lease.Pending), or by a commit that failed
	// half-way: until a commit lands, waits and the head do not count next
	// as applied. applying is set while a commit applying them after a
	// claim is under way.
	pending, applying bool
}

// Failure describes the event or commit a runner is retrying.
type Failure struct {
	Partition state.Partition
	Offset    int64
	Attempts  int
	Since     time.Time
	Error     string
}

// NewRunner prepares c to run on brokers with codec (schema.Serde).
func NewRunner(c *Consumer, codec streams.TypedCodec, brokers []string, opts ...RunnerOption) (*Runner, error) {
	var cfg RunnerConfig
	for _, o := range opts {
		o(&cfg)
	}
	if err := errors.Join(c.Validate(), cfg.Validate()); err != nil {
		return nil, err
	}
	switch {
	case codec == nil:
		return nil, fmt.Errorf("consumers: %s: no codec: pass a schema.Serde (or another streams.TypedCodec)", c.Group())
	case len(brokers) == 0:
		return nil, fmt.Errorf("consumers: %s: no brokers: pass the Kafka bootstrap addresses", c.Group())
	}
	if c.kind == KindObserver && (cfg.Store != nil || cfg.KafkaOffsets) {
		return nil, fmt.Errorf("consumers: observer %s: observers keep Kafka offsets and a dedupe store; WithStore and WithKafkaOffsets are for projectors", c.Group())
	}
	hs, err := c.bind(codec)
	if err != nil {
		return nil, err
	}
	r := &Runner{c: c, group: c.Group(), codec: codec, brokers: brokers, cfg: cfg, handlers: hs,
		batches: cfg.Store, log: cfg.Logger, changed: make(chan struct{})}
	r.log = streams.Logger(r.log).With("group", r.group)
	if r.batches == nil {
		r.batches = state.NewMemory()
	}
	if c.kind == KindObserver {
		r.cfg.KafkaOffsets = true
		r.dedupe = cfg.Dedupe
		if r.dedupe == nil {
			r.dedupe, _ = dedupe.NewMemory() // the default configuration is valid
		}
	}
	if r.cfg.MaxPollRecords == 0 {
		r.cfg.MaxPollRecords = 50_000
	}
	r.retryTopic = deadletter.RetryTopic(r.group)
	r.parking = c.kind == KindProjector
	if cfg.Parking != nil {
		r.parking = *cfg.Parking
	}
	if r.cfg.RetryBackoff == 0 {
		r.cfg.RetryBackoff = 50 * time.Millisecond
	}
	if r.cfg.MaxRetryBackoff == 0 {
		r.cfg.MaxRetryBackoff = max(5*time.Second, r.cfg.RetryBackoff)
	}
	r.storePolicy = deadletter.Policy{Backoff: r.cfg.RetryBackoff, MaxBackoff: r.cfg.MaxRetryBackoff}
	return r, nil
}

// Group is the consumer group the runner joins.
func (r *Runner) Group() string { return r.group }

// Run consumes until ctx ends. Then it finishes the batch in hand (handlers
// get a context that is not canceled with ctx; only retries stop),
// commits, and leaves the group. It returns nil after a shutdown through
// ctx, or the error that kept it from starting (no broker, no dead event
// queue). Once running it retries every failure, with backoff, and
// reports it in Status.
func (r *Runner) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return fmt.Errorf("consumers: %s: Run called twice", r.group)
	}
	defer r.running.Store(false)
	start := kgo.NewOffset().AtStart()
	if r.c.kind == KindObserver {
		start = kgo.NewOffset().AtEnd()
	}
	opts := []kgo.Opt{
		kgo.ConsumerGroup(r.group),
		kgo.ConsumeTopics(r.c.topics...),
		kgo.ConsumeResetOffset(start),
		// Positions count transaction markers: with them the position after
		// the last record equals the last stable offset, so reaching the head
		// is an exact comparison.
		kgo.KeepControlRecords(),
		kgo.BlockRebalanceOnPoll(),
		// Kafka offsets trail every commit to the store: the position itself
		// in Kafka-offset mode, for lag in `recq groups describe` otherwise.
		kgo.AutoCommitMarks(),
		kgo.OnPartitionsAssigned(r.assigned),
		kgo.AdjustFetchOffsetsFn(r.adjust),
		kgo.OnPartitionsRevoked(r.revoked),
		kgo.OnPartitionsLost(r.lost),
	}
	if r.cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(r.cfg.InstanceID))
	}
	if r.cfg.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(r.cfg.SessionTimeout))
	}
	if r.cfg.Copartitioned {
		opts = append(opts, kgo.Balancers(kgo.RangeBalancer()))
	}
	// The group may assign partitions before Dial returns; the callbacks
	// find the state ready.
	r.mu.Lock()
	r.parts = map[state.Partition]*partition{}
	r.joined, r.atHead, r.stopped = false, false, false
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.adm, r.parts = nil, nil
		r.joined, r.stopped = false, true
		r.notifyLocked()
		r.mu.Unlock()
	}()
	if !r.cfg.NoDeadLetters {
		q, stop, err := r.openQueue(ctx)
		if err != nil {
			return fmt.Errorf("consumers: %s: %w", r.group, err)
		}
		defer stop()
		r.mu.Lock() // Status reads it
		r.q = q
		r.mu.Unlock()
		opts = append(opts, kgo.ConsumeTopics(append(slices.Clone(r.c.topics), r.retryTopic)...))
	}
	cl, err := streams.Dial(ctx, r.brokers, opts...)
	if err != nil {
		return fmt.Errorf("consumers: %s: %w", r.group, err)
	}
	stopProbes := r.startProbes(ctx, cl)
	stopLag := tracing.RegisterLag(r.reportLag)
	r.loop(ctx, cl)
	stopLag()
	stopProbes()
	// Leave with the positions of everything handled committed. Close's
	// revocation commits too, but a static member does not leave the group
	// on Close, so its offsets do not rest on that path.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if cerr := cl.CommitMarkedOffsets(cctx); cerr != nil {
		r.log.Warn("committing Kafka offsets on shutdown failed; with Kafka offsets the next owner handles the last events again", "err", cerr)
	}
	cl.Close()
	return nil
}

// dependency is something the runner needs, probed for Ready: the broker,
// and a store or dedupe store that can be pinged (the Redis ones), so an
// outage shows even while no record comes.
type dependency struct {
	name  string
	ping  func(context.Context) error
	probe health.Probe
}

type pinger interface{ Ping(context.Context) error }

// startProbes pings the runner's dependencies until the returned stop.
func (r *Runner) startProbes(ctx context.Context, cl *kgo.Client) (stop func()) {
	deps := []*dependency{{name: "the broker", ping: cl.Ping}}
	if p, ok := r.batches.(pinger); ok {
		deps = append(deps, &dependency{name: "the consumer-state store", ping: p.Ping})
	}
	if p, ok := r.dedupe.(pinger); ok {
		deps = append(deps, &dependency{name: "the dedupe store", ping: p.Ping})
	}
	r.mu.Lock()
	r.probes = deps
	r.mu.Unlock()
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, d := range deps {
		wg.Go(func() { d.probe.Run(pctx, d.ping) })
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// openQueue makes sure the group's dead event queue exists (as many
// partitions as the widest topic read), reads it, and follows it until
// stop.
func (r *Runner) openQueue(ctx context.Context) (q *deadletter.Queue, stop func(), err error) {
	cl, err := streams.Dial(ctx, r.brokers)
	if err != nil {
		return nil, nil, err
	}
	err = deadletter.EnsureTopics(ctx, streams.NewAdmin(cl), r.group, true, r.c.topics...)
	cl.Close()
	if err != nil {
		return nil, nil, err
	}
	q, err = deadletter.NewQueue(r.brokers, r.group, deadletter.QueueConfig{Log: r.log, Hooks: r.cfg.Hooks, Who: r.who()})
	if err != nil {
		return nil, nil, err
	}
	qctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { q.Run(qctx) })
	stop = func() {
		cancel()
		wg.Wait()
		q.Close()
	}
	if err := q.Sync(ctx); err != nil {
		stop()
		return nil, nil, err
	}
	return q, stop, nil
}

// who names this member in the decisions it records.
func (r *Runner) who() string {
	id := r.cfg.InstanceID
	if id == "" {
		host, _ := os.Hostname()
		id = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	return "consumer " + r.group + " (" + id + ")"
}

// loop polls and handles until ctx ends.
func (r *Runner) loop(ctx context.Context, cl *kgo.Client) {
	var fencedLeft bool // by reclaimFenced: ask again within a second
	for {
		r.poll++
		poll := r.poll
		// A fenced commit wakes the poll: the partition must be claimed
		// again and re-read even if no new record comes. So do writes a
		// claim found held: they are applied between polls.
		var pctx context.Context
		var wake context.CancelFunc
		if fencedLeft {
			pctx, wake = context.WithTimeout(ctx, time.Second)
		} else {
			pctx, wake = context.WithCancel(ctx)
		}
		r.mu.Lock()
		r.wake = wake
		r.wakeForHeldLocked()
		r.mu.Unlock()
		fs := cl.PollRecords(pctx, r.cfg.MaxPollRecords)
		woken := pctx.Err() != nil
		wake()
		if ctx.Err() != nil || fs.IsClientClosed() {
			r.commits.Wait()
			cl.AllowRebalance()
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			switch {
			case woken && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
			case t == "": // not a fetch: franz-go reports the group session here
				r.log.Warn("group session failed; franz-go rejoins", "err", err)
			default:
				r.log.Warn("fetch failed; franz-go retries", "topic", t, "partition", p, "err", err)
			}
		})
		var wg sync.WaitGroup
		var mu sync.Mutex
		commits := map[state.Partition]func(){}
		var ids *pollIDs
		if r.dedupe != nil {
			ids = &pollIDs{m: map[string]struct{}{}}
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			wg.Go(func() {
				if c := r.handle(ctx, cl, poll, p.Records, ids); c != nil {
					mu.Lock()
					commits[state.Partition{Topic: p.Topic, Partition: p.Partition}] = c
					mu.Unlock()
				}
			})
		})
		wg.Wait()
		// Commits overlap the handling of the next poll, and a
		// partition's batches commit in order: this poll's start only
		// once the previous poll's have landed.
		r.commits.Wait()
		// Between polls, so that the next poll's records all come from
		// the new positions.
		fencedLeft = r.reclaimFenced(ctx, cl, poll)
		r.applyHeld(ctx, poll, commits)
		for _, c := range commits {
			r.commits.Go(c)
		}
		cl.AllowRebalance()
	}
}

// current reports the partition's lease and next offset, and whether the
// records of poll may be handled: the partition is still ours, not fenced,
// and not re-seeked since they were fetched.
func (r *Runner) current(key state.Partition, poll uint64) (state.Lease, int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.parts[key]
	if p == nil || p.fenced || p.seeked >= poll {
		return state.Lease{}, 0, false
	}
	return p.lease, p.next, true
}

// handle handles one partition's records of a poll as one batch and
// returns the batch's commit, or nil when there is nothing to commit. ids
// are the event ids an observer's batches of the poll have taken.
func (r *Runner) handle(ctx context.Context, cl *kgo.Client, poll uint64, recs []*kgo.Record, ids *pollIDs) func() {
	key := state.Partition{Topic: recs[0].Topic, Partition: recs[0].Partition}
	lease, next, ok := r.current(key, poll)
	if !ok {
		return nil // not ours any more, or re-seeked: read again from the right place
	}
	// In-flight work finishes after ctx ends; only retries give up.
	work := context.WithoutCancel(ctx)
	seen, ok := r.seen(ctx, recs)
	if !ok {
		return nil // shutting down; the batch is read again
	}
	r.noteOldest(key, next, recs)
	if pt := r.cfg.Participant; pt != nil {
		pt.Fetched(work, key, recs)
	}
	ps := r.newPass(ctx, work, key, r.batches.Begin(lease), ids)
	var last *kgo.Record
	for i, rec := range recs {
		if rec.Offset < next {
			continue // buffered before a re-seek
		}
		if !seen[i] && !rec.Attrs.IsControl() && !ps.process(ctx, rec) {
			break // shutting down mid-retry: the rest is read again
		}
		last = rec
	}
	if last == nil {
		return nil
	}
	return func() {
		// A commit of the previous poll may have been fenced while this
		// batch was handled, and the partition re-seeked: then the batch
		// may start past the stored position and is dropped (nothing of it
		// is applied before Commit); its records are read again.
		if _, _, ok := r.current(key, poll); ok {
			r.commit(ctx, work, ps.b, lease, last.Offset+1, func() {
				cl.MarkCommitRecords(last)
				ps.committed(work)
			})
		}
	}
}

// handler finds the record's handler from its recq-type header alone, so
// events nobody handles are skipped without decoding (and without
// allocating: the map lookup converts the header in place). typed reports
// whether the record has the header at all.
func (r *Runner) handler(rec *kgo.Record) (h *handler, typed bool) {
	for _, hd := range rec.Headers {
		if hd.Key == streams.HeaderType {
			return r.handlers[string(hd.Value)], true
		}
	}
	return nil, false
}

// seen asks the observer's dedupe store, in one round trip, which records
// were handled before; false if ctx ended before it answered. Projectors
// have no dedupe store: their positions are exact.
func (r *Runner) seen(ctx context.Context, recs []*kgo.Record) ([]bool, bool) {
	seen := make([]bool, len(recs))
	if r.dedupe == nil {
		return seen, true
	}
	var ids []string
	var at []int
	for i, rec := range recs {
		if id, ok := streams.Header(rec, streams.HeaderID); ok && id != "" && !rec.Attrs.IsControl() {
			ids, at = append(ids, id), append(at, i)
		}
	}
	if len(ids) == 0 {
		return seen, true
	}
	var got []bool
	key := state.Partition{Topic: recs[0].Topic, Partition: recs[0].Partition}
	if !r.retry(ctx, key, recs[0].Offset, func() (err error) {
		got, err = r.dedupe.Seen(ctx, r.group, ids...)
		if err == nil && len(got) != len(ids) {
			err = fmt.Errorf("dedupe store answered %d results for %d ids", len(got), len(ids))
		}
		return err
	}) {
		return nil, false
	}
	for j, i := range at {
		seen[i] = got[j]
	}
	return seen, true
}

// call runs a handler, turning a panic into a *deadletter.PanicError that
// keeps the stack.
func call(ctx context.Context, h *handler, codec streams.Codec, rec *kgo.Record, md Metadata) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &deadletter.PanicError{Value: v, Stack: string(debug.Stack())}
		}
	}()
	return h.fn(ctx, codec, rec, md)
}

// retry runs fn, a store, dedupe or queue call, until it succeeds,
// backing off between attempts, and reports false if ctx ended first. The
// failure is visible in Status while it lasts.
func (r *Runner) retry(ctx context.Context, key state.Partition, offset int64, fn func() error) bool {
	_, _, ok := r.attempt(ctx, key, offset, r.storePolicy, fn, nil)
	return ok
}

// attempt runs fn until it succeeds, or until final says its error ends the
// attempts (then it returns that error), waiting policy.Delay between
// attempts. It reports how many attempts were made, and false if ctx ended
// first. It is the one retry loop: of handlers (under their policy) and of
// the store, dedupe and queue calls (retry). While an attempt fails, the
// log says so and Status shows it.
func (r *Runner) attempt(ctx context.Context, key state.Partition, offset int64, policy deadletter.Policy, fn func() error, final func(err error, attempt int) bool) (int, error, bool) {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			if attempt > 1 {
				r.clearFailure(key)
				r.log.InfoContext(ctx, "recovered", "partition", key, "offset", offset, "attempts", attempt)
			}
			return attempt, nil, true
		}
		if final != nil && final(err, attempt) {
			return attempt, err, true
		}
		r.log.WarnContext(ctx, "failed; retrying", "partition", key, "offset", offset, "attempt", attempt, "kind", deadletter.Classify(err), "err", err)
		r.setFailure(&Failure{Partition: key, Offset: offset, Attempts: attempt, Error: err.Error()})
		if !clock.Sleep(ctx, policy.Delay(attempt)) {
			return attempt, err, false
		}
	}
}

// setFailure shows f in Status, keeping Since while the same record fails.
func (r *Runner) setFailure(f *Failure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failing != nil && r.failing.Partition == f.Partition && r.failing.Offset == f.Offset {
		f.Since = r.failing.Since
	} else {
		f.Since = time.Now()
	}
	r.failing = f
}

// clearFailure forgets the failure shown for key: another partition's
// recovery must not hide a failure that goes on.
func (r *Runner) clearFailure(key state.Partition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failing != nil && r.failing.Partition == key {
		r.failing = nil
	}
}
