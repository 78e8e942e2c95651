package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/consumers/dedupe"
	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/deadletter"
)

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
	// Copartitioned assigns partition i of every topic read to one member
	// (Kafka's range assignor) instead of spreading them (cooperative
	// sticky): for a component whose key meets in partition i of several
	// topics (sagas: their routed topic and its retry topic).
	Copartitioned bool
	// Participant is told of the runner's claims and releases and asked to
	// flush before each commit: the seam for a component built on the loop
	// that keeps per-partition state or produces records (sagas). Nil: none.
	Participant Participant
}

// Participant takes part in a runner's partitions. Its methods are called
// from the runner's goroutines, for different partitions concurrently.
type Participant interface {
	// Claimed says the member holds the partition under a new lease: after
	// an assignment, and again after a fenced commit, when what the member
	// handled since its last commit was not applied. Forget anything of the
	// partition learnt before. An error is retried like a store's.
	Claimed(ctx context.Context, l state.Lease) error
	// Released says the partition is no longer the member's.
	Released(p state.Partition)
	// Fetched shows a batch of p before its records are handled, so that
	// what they will need can be read in one round trip instead of one per
	// record. It cannot fail the batch: what it could not read, the
	// handlers read, and fail on, themselves.
	Fetched(ctx context.Context, p state.Partition, recs []*kgo.Record)
	// Flush returns once everything the handlers of p produced is
	// acknowledged by the broker; it is called before each batch of p
	// commits, so a position never passes a record that could be lost. An
	// error fails the commit, which is retried.
	Flush(ctx context.Context, p state.Partition) error
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

// WithCopartitioning assigns partition i of every topic to one member (see
// RunnerConfig.Copartitioned).
func WithCopartitioning() RunnerOption { return func(c *RunnerConfig) { c.Copartitioned = true } }

// WithParticipant sets the runner's participant (see Participant).
func WithParticipant(p Participant) RunnerOption { return func(c *RunnerConfig) { c.Participant = p } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) RunnerOption { return func(c *RunnerConfig) { c.Logger = l } }
