package aggregates

import (
	"log/slog"
	"time"

	"github.com/recq/recq/aggregates/snapshot"
)

// RunnerOption configures a Runner.
type RunnerOption func(*runnerConfig)

type runnerConfig struct {
	snapshots       snapshot.Store
	every           int64
	cacheSize       int
	instance        string
	session         time.Duration
	finiteRetention bool
	log             *slog.Logger
}

// WithSessionTimeout sets how long the group waits for a silent member
// (one that crashed) before giving its partitions to the others (franz-go's
// default, 45 s, unless set).
func WithSessionTimeout(d time.Duration) RunnerOption { return func(c *runnerConfig) { c.session = d } }

// WithInstanceID gives the runner a stable identity (e.g. a pod name) for
// its transactional id. A runner restarted with the same identity fences
// its crashed predecessor at once, aborting the transaction it left open.
// Without one, that transaction stays open until the broker times it out
// (TransactionTimeout), and loading an aggregate with events in it waits
// for it (see LoadWait).
func WithInstanceID(id string) RunnerOption { return func(c *runnerConfig) { c.instance = id } }

// TransactionTimeout is how long a runner's transaction may stay open
// before the broker aborts it.
const TransactionTimeout = 10 * time.Second

// LoadWait bounds how long loading an aggregate waits for a transaction
// that holds some of its events and is still open (a crashed predecessor's,
// or any other producer's). A load never decides on a history that may
// still gain events: past LoadWait the batch is aborted and polled again
// after a pause, and the runner logs which transaction it waits for. It is
// below TransactionTimeout, so the runner's own transaction outlives the
// wait.
const LoadWait = TransactionTimeout / 2

// WithCacheSize bounds how many aggregates the runner keeps loaded
// (DefaultCacheSize if n < 1); the least recently used are dropped and
// reloaded (snapshot + events) when needed again.
func WithCacheSize(n int) RunnerOption { return func(c *runnerConfig) { c.cacheSize = n } }

// DefaultSnapshotEvery is how many events apart snapshots are taken when a
// snapshot store is given.
const DefaultSnapshotEvery = 100

// WithSnapshots keeps a snapshot of an aggregate in store every `every`
// events (DefaultSnapshotEvery if every < 1), so loading it reads only the
// events after its snapshot. Snapshots are written after the transaction
// holding their events committed; a failed save only costs a longer load.
// The state is stored as JSON, with the ids of the last SnapshotSeen
// commands the aggregate handled (older ones are no longer recognised as
// duplicates once the aggregate is loaded from that snapshot).
func WithSnapshots(store snapshot.Store, every int64) RunnerOption {
	return func(c *runnerConfig) {
		c.snapshots, c.every = store, every
		if c.every < 1 {
			c.every = DefaultSnapshotEvery
		}
	}
}

// SnapshotSeen bounds the command ids a snapshot remembers.
const SnapshotSeen = 1000

// WithFiniteRetention lets the runner start on an events topic that
// deletes records (by age, size or compaction). Without it the runner
// refuses: an aggregate whose early events are gone would be rebuilt from
// what is left, and decide on that. Use it only where a snapshot store is
// known to cover whatever the topic deletes.
func WithFiniteRetention() RunnerOption { return func(c *runnerConfig) { c.finiteRetention = true } }

// WithLogger sets where the runner reports what it retries and why.
// Nil: slog.Default().
func WithLogger(l *slog.Logger) RunnerOption { return func(c *runnerConfig) { c.log = l } }
