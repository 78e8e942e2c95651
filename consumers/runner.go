package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
	"github.com/recq/recq/internal/clock"
	"github.com/recq/recq/streams"
)

// ErrNotRunning is returned by the waits of a Runner whose Run has not
// started or has returned.
var ErrNotRunning = errors.New("consumers: runner is not running")

// RunnerConfig configures a Runner. The zero value is valid: a projector
// keeps positions and read model in process memory (rebuilt from the
// beginning on every start), an observer dedupes in memory.
type RunnerConfig struct {
	// Store keeps a projector's positions, committed atomically with its
	// read model writes (exactly-once effects). Nil: state.NewMemory().
	Store state.Store
	// KafkaOffsets makes a projector keep its positions as Kafka group
	// offsets instead of in Store: at-least-once, so its handlers must be
	// idempotent (an event can be handled again after a crash). Observers
	// always use Kafka offsets.
	KafkaOffsets bool
	// Dedupe remembers the ids of events an observer has handled, so a
	// redelivered event is skipped. Nil: dedupe.NewMemory().
	Dedupe dedupe.Store
	// InstanceID makes the member static (KIP-345): a restart within the
	// session timeout gets its partitions back without a rebalance. Empty:
	// a dynamic member, which leaves the group when Run returns.
	InstanceID string
	// SessionTimeout is how long the group waits for a silent member before
	// giving its partitions to others. Zero: franz-go's default (45 s).
	SessionTimeout time.Duration
	// MaxPollRecords bounds the records taken per poll, across partitions,
	// and with it the memory a large backlog takes beyond franz-go's own
	// fetch buffer (one fetch per broker, FetchMaxBytes). Zero: 50,000,
	// enough to take a whole fetch, so the next one is on its way while
	// this one is handled.
	MaxPollRecords int
	// RetryBackoff and MaxRetryBackoff bound the exponential wait (with
	// jitter) between attempts of a failed event or commit. Zero: 50 ms and
	// 5 s.
	RetryBackoff, MaxRetryBackoff time.Duration
	// Retry is the policy for failing handlers (consumers.Retry gives one
	// handler its own). Zero: deadletter's defaults: a permanent error is
	// tried 3 times, then the event is dead; a transient one is retried
	// until it succeeds.
	Retry deadletter.Policy
	// NoDeadLetters turns the dead event queue off: an event that fails
	// for good is then retried until it succeeds, holding its partition.
	NoDeadLetters bool
	// Parking holds back a key's later events behind its dead one, in the
	// dead event queue, so they are applied in order when redriven. Nil: on
	// for projectors, off for observers.
	Parking *bool
	// Hooks are called on retries, dead events and redrives (metrics).
	Hooks deadletter.Hooks
	// Logger receives retries and rebalances. Nil: slog.Default().
	Logger *slog.Logger
	// ClientOptions are extra franz-go options, applied last.
	ClientOptions []kgo.Opt
}

// Validate reports a configuration that cannot work.
func (c RunnerConfig) Validate() error {
	var errs []error
	if c.Store != nil && c.KafkaOffsets {
		errs = append(errs, errors.New("both a Store and KafkaOffsets: positions live in one place; pick one"))
	}
	if c.MaxPollRecords < 0 {
		errs = append(errs, fmt.Errorf("MaxPollRecords %d: want 0 (default) or more", c.MaxPollRecords))
	}
	if c.RetryBackoff < 0 || c.MaxRetryBackoff < 0 || (c.MaxRetryBackoff > 0 && c.MaxRetryBackoff < c.RetryBackoff) {
		errs = append(errs, fmt.Errorf("retry backoff %v..%v: want 0 <= RetryBackoff <= MaxRetryBackoff", c.RetryBackoff, c.MaxRetryBackoff))
	}
	if err := c.Retry.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.NoDeadLetters && c.Parking != nil && *c.Parking {
		errs = append(errs, errors.New("parking without a dead event queue: parked events wait in the queue; drop one of WithParking(true) and WithoutDeadLetters"))
	}
	return errors.Join(errs...)
}

// RunnerOption configures a Runner.
type RunnerOption func(*RunnerConfig)

// WithStore keeps a projector's positions and read model writes in s.
func WithStore(s state.Store) RunnerOption { return func(c *RunnerConfig) { c.Store = s } }

// WithKafkaOffsets makes a projector at-least-once on Kafka group offsets.
func WithKafkaOffsets() RunnerOption { return func(c *RunnerConfig) { c.KafkaOffsets = true } }

// WithDedupe sets an observer's dedupe store.
func WithDedupe(s dedupe.Store) RunnerOption { return func(c *RunnerConfig) { c.Dedupe = s } }

// WithInstanceID makes the member static under id (e.g. the pod name).
func WithInstanceID(id string) RunnerOption { return func(c *RunnerConfig) { c.InstanceID = id } }

// WithSessionTimeout sets the group session timeout.
func WithSessionTimeout(d time.Duration) RunnerOption {
	return func(c *RunnerConfig) { c.SessionTimeout = d }
}

// WithMaxPollRecords bounds the records taken per poll.
func WithMaxPollRecords(n int) RunnerOption { return func(c *RunnerConfig) { c.MaxPollRecords = n } }

// WithRetryBackoff bounds the wait between attempts of a failed store,
// dedupe or dead event queue call (handlers follow WithRetryPolicy).
func WithRetryBackoff(min, max time.Duration) RunnerOption {
	return func(c *RunnerConfig) { c.RetryBackoff, c.MaxRetryBackoff = min, max }
}

// WithRetryPolicy sets the policy for failing handlers.
func WithRetryPolicy(p deadletter.Policy) RunnerOption { return func(c *RunnerConfig) { c.Retry = p } }

// WithoutDeadLetters turns the dead event queue off (see
// RunnerConfig.NoDeadLetters).
func WithoutDeadLetters() RunnerOption { return func(c *RunnerConfig) { c.NoDeadLetters = true } }

// WithParking turns sequenced parking on or off (see RunnerConfig.Parking).
func WithParking(on bool) RunnerOption { return func(c *RunnerConfig) { c.Parking = &on } }

// WithHooks sets the retry, dead event and redrive hooks.
func WithHooks(h deadletter.Hooks) RunnerOption { return func(c *RunnerConfig) { c.Hooks = h } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) RunnerOption { return func(c *RunnerConfig) { c.Logger = l } }

// WithClientOptions appends franz-go options.
func WithClientOptions(opts ...kgo.Opt) RunnerOption {
	return func(c *RunnerConfig) { c.ClientOptions = append(c.ClientOptions, opts...) }
}

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

	running atomic.Bool
	mu      sync.Mutex
	adm     *kadm.Client // while running, from the first assignment
	parts   map[state.Partition]*partition
	joined  bool          // in the group (the first assignment arrived) during this Run
	stopped bool          // a Run started and returned
	atHead  bool          // latched once every owned partition reached its head
	changed chan struct{} // closed and replaced on every change of progress
	failing *Failure
	fatal   error // set by a batch that must not be retried; ends Run
	halt    context.CancelFunc
	wake    context.CancelFunc // ends the poll in progress
	// commits are the batch commits in flight, owned by the poll loop;
	// rebalance callbacks wait for them.
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
	// the partition. The loop claims it again before its next poll.
	fenced bool
	// seeked is the last poll before the partition was re-seeked
	// (reclaimFenced): batches of that poll or earlier were fetched from the old
	// position and must not commit, or the records between the stored
	// position and theirs would be skipped.
	seeked uint64
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
	if r.log == nil {
		r.log = slog.Default()
	}
	r.log = r.log.With("group", r.group)
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
	return r, nil
}

// Group is the consumer group the runner joins.
func (r *Runner) Group() string { return r.group }

// Run consumes until ctx ends. Then it finishes the batch in hand (handlers
// get a context that is not canceled with ctx; only retries stop),
// commits, and leaves the group. It returns nil after a shutdown through
// ctx, or the error that stopped it.
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
	// The group may assign partitions before Dial returns; the callbacks
	// find the state ready.
	r.mu.Lock()
	r.parts = map[state.Partition]*partition{}
	r.joined, r.atHead, r.stopped, r.fatal = false, false, false, nil
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
	cl, err := streams.Dial(ctx, r.brokers, append(opts, r.cfg.ClientOptions...)...)
	if err != nil {
		return fmt.Errorf("consumers: %s: %w", r.group, err)
	}

	// halt ends the loop from a batch that must not be retried.
	lctx, halt := context.WithCancel(ctx)
	defer halt()
	r.mu.Lock()
	r.halt = halt
	r.mu.Unlock()
	r.loop(lctx, cl)
	r.mu.Lock()
	if r.fatal != nil {
		err = fmt.Errorf("consumers: %s: stopped: %w", r.group, r.fatal)
	}
	r.mu.Unlock()
	// Leave with the positions of everything handled committed. Close's
	// revocation commits too, but a static member does not leave the group
	// on Close, so its offsets do not rest on that path.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if cerr := cl.CommitMarkedOffsets(cctx); cerr != nil {
		r.log.Warn("committing Kafka offsets on shutdown failed; with Kafka offsets the next owner handles the last events again", "err", cerr)
	}
	cl.Close()
	return err
}

// openQueue makes sure the group's dead event queue exists (as many
// partitions as the widest topic read), reads it, and follows it until
// stop.
func (r *Runner) openQueue(ctx context.Context) (q *deadletter.Queue, stop func(), err error) {
	cl, err := streams.Dial(ctx, r.brokers, r.cfg.ClientOptions...)
	if err != nil {
		return nil, nil, err
	}
	err = deadletter.EnsureTopics(ctx, streams.NewAdmin(cl), r.group, true, r.c.topics...)
	cl.Close()
	if err != nil {
		return nil, nil, err
	}
	q, err = deadletter.NewQueue(r.brokers, r.group, deadletter.QueueConfig{Log: r.log, Hooks: r.cfg.Hooks, Who: r.who()}, r.cfg.ClientOptions...)
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

// loop polls and handles until ctx ends (the caller's, or halt).
func (r *Runner) loop(ctx context.Context, cl *kgo.Client) {
	for {
		r.poll++
		poll := r.poll
		// A fenced commit wakes the poll: the partition must be claimed
		// again and re-read even if no new record comes.
		pctx, wake := context.WithCancel(ctx)
		r.mu.Lock()
		r.wake = wake
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
			if !woken || !errors.Is(err, context.Canceled) {
				r.log.Warn("fetch failed; franz-go retries", "topic", t, "partition", p, "err", err)
			}
		})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var commits []func()
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			wg.Go(func() {
				if c := r.handle(ctx, cl, poll, p.Records); c != nil {
					mu.Lock()
					commits = append(commits, c)
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
		r.reclaimFenced(ctx, cl, poll)
		for _, c := range commits {
			r.commits.Go(c)
		}
		cl.AllowRebalance()
	}
}

// stop makes Run return err once the batches in hand are done.
func (r *Runner) stop(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fatal = errors.Join(r.fatal, err)
	r.halt()
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
// returns the batch's commit, or nil when there is nothing to commit.
func (r *Runner) handle(ctx context.Context, cl *kgo.Client, poll uint64, recs []*kgo.Record) func() {
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
	ps := r.newPass(work, key, r.batches.Begin(lease))
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
			r.commit(ctx, work, cl, ps, lease, last)
		}
	}
}

// commit commits a handled batch up to last, retrying until it lands, is
// fenced (then the partition is claimed again) or ctx ends.
func (r *Runner) commit(ctx, work context.Context, cl *kgo.Client, ps *pass, lease state.Lease, last *kgo.Record) {
	b := ps.b
	key := lease.Partition
	err := errors.New("not committed")
	if !r.retry(ctx, key, last.Offset, func() error {
		err = b.Commit(work, last.Offset+1)
		if errors.Is(err, state.ErrFenced) || errors.Is(err, state.ErrPartiallyApplied) {
			return nil // stop retrying; handled below
		}
		return err
	}) {
		return
	}
	if errors.Is(err, state.ErrPartiallyApplied) {
		r.stop(err) // retrying would apply the first commands twice
		return
	}
	if err != nil {
		r.log.Warn("partition claimed by another owner; claiming it again", "partition", key, "err", err)
		r.mu.Lock()
		if p := r.parts[key]; p != nil {
			p.fenced = true
			r.wake()
		}
		r.mu.Unlock()
		return
	}
	cl.MarkCommitRecords(last)
	ps.committed(work)
	r.mu.Lock()
	if p := r.parts[key]; p != nil && p.lease.Epoch == lease.Epoch {
		p.next = last.Offset + 1
	}
	r.checkHeadLocked()
	r.notifyLocked()
	r.mu.Unlock()
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

// retry runs fn until it succeeds, backing off between attempts, and
// reports false if ctx ended first. The failure is visible in Status while
// it lasts.
func (r *Runner) retry(ctx context.Context, key state.Partition, offset int64, fn func() error) bool {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			if attempt > 1 {
				r.setFailure(nil)
				r.log.Info("recovered", "partition", key, "offset", offset, "attempts", attempt)
			}
			return true
		}
		r.log.Warn("failed; retrying", "partition", key, "offset", offset, "attempt", attempt, "err", err)
		r.setFailure(&Failure{Partition: key, Offset: offset, Attempts: attempt, Error: err.Error()})
		if !clock.Sleep(ctx, r.backoff(attempt)) {
			return false
		}
	}
}

// backoff is the wait before attempt+1: exponential, capped, with up to 50%
// jitter so a fleet does not retry in step.
func (r *Runner) backoff(attempt int) time.Duration {
	d := r.cfg.RetryBackoff << min(attempt-1, 20)
	if d <= 0 || d > r.cfg.MaxRetryBackoff {
		d = r.cfg.MaxRetryBackoff
	}
	return d/2 + rand.N(d/2+1)
}

func (r *Runner) setFailure(f *Failure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f != nil && r.failing != nil && r.failing.Partition == f.Partition && r.failing.Offset == f.Offset {
		f.Since = r.failing.Since
	} else if f != nil {
		f.Since = time.Now()
	}
	r.failing = f
}

// claim takes the partition's lease, retrying until the store answers or
// ctx ends (a revocation cancels it).
func (r *Runner) claim(ctx context.Context, key state.Partition) (state.Lease, error) {
	var l state.Lease
	ok := r.retry(ctx, key, -1, func() (err error) {
		l, err = r.batches.Claim(ctx, r.group, key)
		return err
	})
	if !ok {
		return l, fmt.Errorf("consumers: %s: claim %s: %w", r.group, key, context.Cause(ctx))
	}
	return l, nil
}

// reclaimFenced takes a new lease for each partition whose commit was
// fenced and moves it to the stored position: another owner may have
// applied records since. poll is the poll whose batches are now stale.
func (r *Runner) reclaimFenced(ctx context.Context, cl *kgo.Client, poll uint64) {
	r.mu.Lock()
	var fenced []state.Partition
	for key, p := range r.parts {
		if p.fenced {
			fenced = append(fenced, key)
		}
	}
	r.mu.Unlock()
	if len(fenced) == 0 {
		return
	}
	type claimed struct {
		lease state.Lease
		next  int64
	}
	reclaimed := map[state.Partition]claimed{}
	offsets := map[string]map[int32]kgo.Offset{}
	for _, key := range fenced {
		l, err := r.claim(ctx, key)
		if err != nil {
			return // shutting down
		}
		next := l.Next
		if next == state.NoPosition {
			starts, err := r.admin().ListStartOffsets(ctx, key.Topic)
			if err == nil {
				err = starts.Error()
			}
			if err != nil {
				r.log.Warn("cannot find the partition's start after a fenced commit; trying again after the next poll", "partition", key, "err", err)
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
		r.log.Warn("reading the dead event queue after a fenced commit failed; trying again after the next poll", "err", err)
		return
	}
	for key, c := range reclaimed {
		cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{key.Topic: {key.Partition: {Epoch: -1, Offset: c.next}}})
		r.mu.Lock()
		if p := r.parts[key]; p != nil {
			p.lease, p.next, p.seeked, p.fenced = c.lease, c.next, poll, false
		}
		r.mu.Unlock()
	}
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
			r.mu.Lock()
			r.parts[key] = &partition{lease: l, next: next, target: head.Offset}
			r.mu.Unlock()
		}
	}
	if err := r.syncQueue(ctx, offsets); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
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
	r.lost(ctx, cl, ps)
}

// lost forgets partitions taken away without a chance to commit.
func (r *Runner) lost(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
	r.commits.Wait() // they will fail (fenced) or land; either way before forgetting
	r.mu.Lock()
	defer r.mu.Unlock()
	for t, ns := range ps {
		for _, n := range ns {
			delete(r.parts, state.Partition{Topic: t, Partition: n})
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
		if p.next < p.target {
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
