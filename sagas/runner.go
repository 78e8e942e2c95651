package sagas

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/consumers"
	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/health"
	"github.com/recq/recq/sagas/store"
	"github.com/recq/recq/streams"
)

// RoutedTopic is the topic a saga group routes its records through:
// events keyed by association, records forwarded to instances and
// deadline firings keyed by instance id.
func RoutedTopic(group string) string { return group + ".routed" }

// Config configures a Runner. The zero value is valid: memory stores,
// the routed topic as wide as the widest input topic.
type Config struct {
	// Store keeps instances, the association index, deadlines and the
	// group's positions. Nil: store.NewMemory() (rebuilt on every start).
	Store store.Store
	// RoutedPartitions is the routed topic's partition count when the
	// runner creates it (an existing one keeps its own); it bounds how many
	// members share the instances. Zero: the widest input topic's.
	RoutedPartitions int32
	// SendTimeout bounds each Instance.Send (default 30 s): past it the
	// handler gets an error, returns it, and is run again, sending the same
	// command ids.
	SendTimeout time.Duration
	// Consumer are options of the consumers runner underneath (instance
	// id, session timeout, retry policy, parking, hooks, logger). Its store
	// is Store's: WithStore and WithKafkaOffsets are refused.
	Consumer []consumers.RunnerOption
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.RoutedPartitions < 0 {
		errs = append(errs, fmt.Errorf("RoutedPartitions %d: want 0 (default) or more", c.RoutedPartitions))
	}
	if c.SendTimeout < 0 {
		errs = append(errs, fmt.Errorf("SendTimeout %v: want 0 (default) or more", c.SendTimeout))
	}
	var cc consumers.RunnerConfig
	for _, o := range c.Consumer {
		o(&cc)
	}
	if cc.Store != nil || cc.KafkaOffsets {
		errs = append(errs, errors.New("consumer options with WithStore or WithKafkaOffsets: a saga's positions live in its saga store; pass it with sagas.WithStore"))
	}
	return errors.Join(errs...)
}

// Option configures a Runner.
type Option func(*Config)

// WithStore sets the saga store (store.NewRedis for production).
func WithStore(s store.Store) Option { return func(c *Config) { c.Store = s } }

// WithRoutedPartitions sets the routed topic's partitions when created.
func WithRoutedPartitions(n int32) Option { return func(c *Config) { c.RoutedPartitions = n } }

// WithSendTimeout bounds each Instance.Send.
func WithSendTimeout(d time.Duration) Option { return func(c *Config) { c.SendTimeout = d } }

// WithRunnerOptions passes options to the consumers runner underneath.
func WithRunnerOptions(opts ...consumers.RunnerOption) Option {
	return func(c *Config) { c.Consumer = append(c.Consumer, opts...) }
}

// Headers recq adds to routed records.
const (
	HeaderAssociation = "recq-saga-association" // "key=value" the record was routed by
	HeaderInstance    = "recq-saga-instance"    // the instance a forwarded record or firing is for
	HeaderSource      = "recq-saga-source"      // where the event was written: topic/partition@offset
	HeaderDeadline    = "recq-saga-deadline"    // a firing's deadline id
	// HeaderTime is the event's time in ms since the epoch: its source
	// record's timestamp, which a redrive from the dead event queue does
	// not keep.
	HeaderTime = "recq-saga-time"
)

// DeadlineType is the recq-type of a deadline's firing record.
const DeadlineType = "recq.sagas.DeadlineDue"

// Runner runs a saga as a member of its consumer group.
type Runner[S any] struct {
	saga    *Saga[S]
	group   string
	routed  string
	codec   streams.TypedCodec
	brokers []string
	cfg     Config
	store   store.Store
	eng     engine[S]
	cr      *consumers.Runner
	routes  map[string]*route[S]
	log     *slog.Logger
	timers  *timers

	// Set by Run.
	pub        *streams.Publisher
	partitions int

	mu     sync.Mutex
	homes  map[int32]*home[S]
	flying map[state.Partition]*flight
}

// home is what the member holds of one partition of the routed topic: its
// instances as handled (committed or not: the batches of a partition
// commit in order, and a fenced commit re-claims, which drops them), and
// a lock, since the partition's records and their redrives (the retry
// topic's partition of the same number) are handled in two batches.
type home[S any] struct {
	mu   sync.Mutex
	inst map[string]*store.Instance
	// states are the state values of inst's forms (decoded.go).
	states map[string]held[S]
	// ahead are the store's answers for associations of the batch in hand,
	// asked for all at once (participant.Fetched); each is taken once.
	ahead map[string]store.Resolved
	// view is the engine's view of it, made once: an interface per record
	// would be an allocation per record.
	view instances[S]
	// gone are ended instances whose batch committed: the store has them,
	// and a late copy of their events reads them from there. They leave
	// inst at the next record (a commit does not wait for mu, which a
	// handler holds while it sends commands).
	gmu  sync.Mutex
	gone []*store.Instance
}

func (h *home[S]) ended(in *store.Instance) {
	h.gmu.Lock()
	h.gone = append(h.gone, in)
	h.gmu.Unlock()
}

// lock takes the partition and drops the ended instances.
func (h *home[S]) lock() {
	h.mu.Lock()
	h.gmu.Lock()
	for _, in := range h.gone {
		if h.inst[in.ID] == in {
			delete(h.inst, in.ID)
			delete(h.states, in.ID)
		}
	}
	h.gone = nil
	h.gmu.Unlock()
}

// NewRunner prepares s to run on brokers with codec (schema.Serde),
// sending commands through sender (an *aggregates.Invoker).
func NewRunner[S any](s *Saga[S], codec streams.TypedCodec, brokers []string, sender Sender, opts ...Option) (*Runner[S], error) {
	var cfg Config
	for _, o := range opts {
		o(&cfg)
	}
	if err := errors.Join(s.Validate(), cfg.Validate()); err != nil {
		return nil, fmt.Errorf("sagas: %s: %w", s.Group(), err)
	}
	switch {
	case codec == nil:
		return nil, fmt.Errorf("sagas: %s: no codec: pass a schema.Serde (or another streams.TypedCodec)", s.Group())
	case len(brokers) == 0:
		return nil, fmt.Errorf("sagas: %s: no brokers: pass the Kafka bootstrap addresses", s.Group())
	case sender == nil:
		return nil, fmt.Errorf("sagas: %s: no sender: pass an *aggregates.Invoker", s.Group())
	}
	r := &Runner[S]{saga: s, group: s.Group(), routed: RoutedTopic(s.Group()), codec: codec, brokers: brokers, cfg: cfg,
		store: cfg.Store, routes: map[string]*route[S]{}, homes: map[int32]*home[S]{}, flying: map[state.Partition]*flight{},
		timers: newTimers(time.Now)}
	if r.store == nil {
		r.store = store.NewMemory()
	}
	r.eng = engine[S]{saga: s, sender: sender, timeout: cmp.Or(cfg.SendTimeout, 30*time.Second), decodes: decoded(reflect.TypeFor[S]())}
	var cc consumers.RunnerConfig
	for _, o := range cfg.Consumer {
		o(&cc)
	}
	r.log = cmp.Or(cc.Logger, slog.Default()).With("saga", r.group)
	c := consumers.NewProjector(s.app, s.name, s.version, append(slices.Clone(s.topics), r.routed)...)
	for _, rt := range s.pending {
		name, err := codec.TypeName(rt.sample)
		if err != nil {
			return nil, fmt.Errorf("sagas: %s: handler for %T: %w", r.group, rt.sample, err)
		}
		r.routes[name] = rt
		consumers.OnRecord(c, name, func(ctx context.Context, rec *kgo.Record, md consumers.Metadata) error {
			if md.Topic == r.routed {
				return r.handleEvent(ctx, rt, rec, md)
			}
			return r.route(ctx, rt, rec, md)
		})
	}
	consumers.OnRecord(c, DeadlineType, r.handleFiring)
	ropts := append(slices.Clone(cfg.Consumer), consumers.WithStore(r.store.Positions()),
		consumers.WithCopartitioning(), consumers.WithParticipant(participant[S]{r}))
	cr, err := consumers.NewRunner(c, codec, brokers, ropts...)
	if err != nil {
		return nil, fmt.Errorf("sagas: %w", err)
	}
	r.cr = cr
	return r, nil
}

// Group is the saga's consumer group.
func (r *Runner[S]) Group() string { return r.group }

// Status reports the consumer underneath (positions, failures, dead events).
func (r *Runner[S]) Status() consumers.Status { return r.cr.Status() }

// Ready says the runner is at the head and retrying nothing (see
// consumers.Runner.Ready).
func (r *Runner[S]) Ready() bool { return r.cr.Ready() }

// Health reports for health.Handler.
func (r *Runner[S]) Health() health.Report { return r.cr.Health() }

// WaitHead waits until the runner reached the head of its topics.
func (r *Runner[S]) WaitHead(ctx context.Context) error { return r.cr.WaitHead(ctx) }

// CatchUp waits until every record committed to the saga's topics before
// the call is handled (see consumers.Runner.CatchUp).
func (r *Runner[S]) CatchUp(ctx context.Context) error { return r.cr.CatchUp(ctx) }

// Pending is how many deadlines this member's timers hold.
func (r *Runner[S]) Pending() int { return r.timers.pending() }

// Run makes sure the routed topic exists, then consumes until ctx ends
// (see consumers.Runner.Run). Deadlines fire once the member has caught up
// with its topics.
func (r *Runner[S]) Run(ctx context.Context) error {
	if err := r.ensureRouted(ctx); err != nil {
		return err
	}
	pub, err := streams.NewPublisher(r.brokers, streams.WithClientOptions(
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordDeliveryTimeout(30*time.Second)))
	if err != nil {
		return fmt.Errorf("sagas: %s: %w", r.group, err)
	}
	r.pub = pub
	defer pub.Close(context.WithoutCancel(ctx))
	tctx, stopTimers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		// Arm once caught up: an event written before a deadline was due
		// is handled before the deadline fires.
		if r.cr.WaitHead(tctx) == nil && r.cr.CatchUp(tctx) == nil {
			r.timers.arm()
		}
	})
	wg.Go(func() { r.timers.run(tctx, r.settle, r.fire) })
	err = r.cr.Run(ctx)
	stopTimers()
	wg.Wait()
	return err
}

// settle waits, up to settleWait, until the group has handled what its
// topics held at the call (so every event written before now is routed).
func (r *Runner[S]) settle(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, settleWait)
	defer cancel()
	if err := r.cr.CatchUp(cctx); err != nil && ctx.Err() == nil {
		r.log.Warn("deadlines fire before the saga caught up with its topics; an event written before one was due may be handled after it", "err", err)
	}
}

// settleWait bounds how long due deadlines wait for the saga to catch up:
// a partition whose handler keeps failing must not hold every deadline.
const settleWait = 5 * time.Second

// ensureRouted creates the routed topic (kept forever: a saga on memory
// stores rebuilds from it) and checks it has as many partitions as the
// retry topic, so a key's partition number is the same in both.
func (r *Runner[S]) ensureRouted(ctx context.Context) error {
	cl, err := streams.Dial(ctx, r.brokers)
	if err != nil {
		return fmt.Errorf("sagas: %s: %w", r.group, err)
	}
	defer cl.Close()
	adm := streams.NewAdmin(cl)
	counts, err := adm.PartitionCounts(ctx, r.saga.topics...)
	if err != nil {
		return fmt.Errorf("sagas: %s: %w (create the saga's input topics first)", r.group, err)
	}
	widest := int32(1)
	for _, c := range counts {
		widest = max(widest, int32(c))
	}
	n := cmp.Or(r.cfg.RoutedPartitions, widest)
	if n < widest {
		// The retry topic gets the widest topic's count; the two must match.
		return fmt.Errorf("sagas: %s: WithRoutedPartitions(%d) is fewer than the widest input topic's %d partitions: give at least %d", r.group, n, widest, widest)
	}
	if err := adm.EnsureTopic(ctx, streams.TopicSpec{Name: r.routed, Partitions: n, Configs: map[string]string{"retention.ms": "-1", "retention.bytes": "-1"}}); err != nil {
		return fmt.Errorf("sagas: %s: %w", r.group, err)
	}
	counts, err = adm.PartitionCounts(ctx, r.routed)
	if err != nil {
		return fmt.Errorf("sagas: %s: %w", r.group, err)
	}
	r.partitions = counts[r.routed]
	if rc, err := adm.PartitionCounts(ctx, deadletter.RetryTopic(r.group)); err == nil && rc[deadletter.RetryTopic(r.group)] != r.partitions {
		return fmt.Errorf("sagas: %s: the routed topic %s has %d partitions and the retry topic %s %d: they must match (delete the retry topic when its queue is empty, or recreate the saga under a new version)",
			r.group, r.routed, r.partitions, deadletter.RetryTopic(r.group), rc[deadletter.RetryTopic(r.group)])
	}
	return nil
}
