package deadletter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/internal/clock"
	"github.com/recq/recq/streams"
)

// ErrNoQueue is returned when a group has no dead event queue: it never ran
// with dead letters on, or the name is wrong.
var ErrNoQueue = errors.New("no dead event queue")

// Hooks are called as events fail, die and come back; they are the place
// for metrics. Each may be nil; they must not block.
type Hooks struct {
	// Retried: a handling failed and will be tried again.
	Retried func(group, topic string, kind Kind)
	// Dead: an entry was written to the dead event queue (parked ones too).
	Dead func(e Entry)
	// Redriven: a redriven event was handled.
	Redriven func(group, id string)
}

// Queue is one consumer group's dead event queue as its consumer uses it:
// it writes entries and follows the queue and the actions topic into an
// Index, so the consumer knows which events are dead and which keys are
// parked, and it releases parked events whose key has cleared. Run
// follows; the other methods are safe for concurrent use.
type Queue struct {
	group   string
	brokers []string
	opts    []kgo.Opt
	cl      *kgo.Client
	idx     *Index
	cfg     QueueConfig

	mu      sync.Mutex
	pos     map[string]map[int32]int64 // next offset read, per topic and partition
	changed chan struct{}

	relMu sync.Mutex  // one release at a time
	tx    *kgo.Client // transactional, for releases; made at the first
}

// QueueConfig configures a Queue. The zero value reads and writes entries
// but releases nothing.
type QueueConfig struct {
	Log   *slog.Logger // nil: slog.Default()
	Hooks Hooks
	// Who names the consumer in the decisions it records; set, the queue
	// releases parked events (Index.Releasable) as their keys clear: it
	// redrives them, in order, through the retry topic.
	Who string
}

// EnsureTopics creates the group's queue and actions topics, and with
// retry its retry topic, if they are missing: the queue and the retry
// topic as wide as the widest of sources, the topics the group reads
// (records are keyed, so a key's events keep their order whatever the
// width; a source not created yet counts for nothing), the actions topic
// with one partition (one order for every decision). The queue and the
// actions are kept without a time limit (retention.ms=-1): a dead event
// waits for a decision however long it takes. A group without a retry
// topic does not take redrives.
func EnsureTopics(ctx context.Context, adm *streams.Admin, group string, retry bool, sources ...string) error {
	partitions := int32(1)
	for _, t := range sources {
		if ends, err := adm.EndOffsets(ctx, t); err == nil {
			partitions = max(partitions, int32(len(ends[t])))
		}
	}
	keep := map[string]string{"retention.ms": "-1"}
	specs := []streams.TopicSpec{
		{Name: Topic(group), Partitions: partitions, Configs: keep},
		{Name: ActionsTopic(group), Partitions: 1, Configs: keep},
	}
	if retry {
		specs = append(specs, streams.TopicSpec{Name: RetryTopic(group), Partitions: partitions})
	}
	for _, spec := range specs {
		if err := adm.EnsureTopic(ctx, spec); err != nil {
			return fmt.Errorf("deadletter: %w", err)
		}
	}
	return nil
}

// NewQueue returns group's queue over a client for brokers with opts. The
// topics must exist (EnsureTopics). Call Run to follow them, and Close.
func NewQueue(brokers []string, group string, cfg QueueConfig, opts ...kgo.Opt) (*Queue, error) {
	cl, err := streams.NewClient(brokers, append([]kgo.Opt{
		kgo.ConsumeTopics(Topic(group), ActionsTopic(group)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// With the markers, the position after the last record reaches the
		// last stable offset, which Sync compares with.
		kgo.KeepControlRecords(),
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Queue{group: group, brokers: brokers, opts: opts, cl: cl, idx: newIndex(), cfg: cfg,
		pos: map[string]map[int32]int64{}, changed: make(chan struct{})}, nil
}

// Close releases the clients; Run must have returned.
func (q *Queue) Close() {
	q.cl.Close()
	q.relMu.Lock()
	defer q.relMu.Unlock()
	if q.tx != nil {
		q.tx.Close()
	}
}

// Index is what the queue knows so far (see Sync).
func (q *Queue) Index() *Index { return q.idx }

// Run follows the queue and the actions topic until ctx ends.
func (q *Queue) Run(ctx context.Context) {
	for {
		fs := q.cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			q.cfg.Log.Warn("reading the dead event queue failed; franz-go retries", "topic", t, "partition", p, "err", err)
		})
		q.mu.Lock()
		touched := map[string]bool{}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				key, err := q.idx.apply(q.group, r)
				if err != nil {
					q.cfg.Log.Warn("skipping a record of the dead event queue", "err", err)
				}
				if len(key) > 0 {
					touched[string(key)] = true
				}
			}
			ps := q.pos[r.Topic]
			if ps == nil {
				ps = map[int32]int64{}
				q.pos[r.Topic] = ps
			}
			ps[r.Partition] = r.Offset + 1
		})
		close(q.changed)
		q.changed = make(chan struct{})
		q.mu.Unlock()
		for k := range touched {
			q.release(ctx, []byte(k))
		}
	}
}

// Sync waits until Run has read everything committed to the queue and the
// actions topic when Sync was called, so the Index holds every entry and
// decision made before: a consumer syncs before it handles a partition it
// was just given, whose previous owner may have written entries.
func (q *Queue) Sync(ctx context.Context) error {
	ends, err := kadm.NewClient(q.cl).ListCommittedOffsets(ctx, Topic(q.group), ActionsTopic(q.group))
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("deadletter: %s: end offsets: %w", q.group, err)
	}
	for {
		q.mu.Lock()
		behind := false
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset > 0 && q.pos[o.Topic][o.Partition] < o.Offset {
				behind = true
			}
		})
		changed := q.changed
		q.mu.Unlock()
		if !behind {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deadletter: %s: reading the queue: %w", q.group, context.Cause(ctx))
		case <-changed:
		}
	}
}

// Dead writes e to the queue (its QueuePartition and QueueOffset are set)
// and adds it to the index once the broker has it.
func (q *Queue) Dead(ctx context.Context, e *Entry) error {
	e.Group = q.group
	r, err := q.cl.ProduceSync(ctx, e.Record(Topic(q.group))).First()
	if err != nil {
		return fmt.Errorf("deadletter: writing %s to %s: %w", e.ID, Topic(q.group), err)
	}
	e.QueuePartition, e.QueueOffset = r.Partition, r.Offset
	q.idx.addEntry(*e)
	if q.cfg.Hooks.Dead != nil {
		q.cfg.Hooks.Dead(*e)
	}
	if e.Reason == ReasonParked {
		q.release(ctx, e.Key) // its blocker may have cleared since it was parked
	}
	return nil
}

// Done records, as QueueConfig.Who, that the redriven events ds were
// handled: their entries become redriven, and their keys move on.
func (q *Queue) Done(ctx context.Context, ds ...Redriven) error {
	if len(ds) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, len(ds))
	now := time.Now().UTC()
	var keys [][]byte
	for i, d := range ds {
		a := Action{ID: d.ID, Action: ActionDone, Generation: d.Generation, Who: q.cfg.Who, At: now}
		keys = append(keys, q.idx.addAction(a))
		recs[i] = a.record(ActionsTopic(q.group))
		if q.cfg.Hooks.Redriven != nil {
			q.cfg.Hooks.Redriven(q.group, d.ID)
		}
	}
	if err := q.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("deadletter: recording redriven events on %s: %w", ActionsTopic(q.group), err)
	}
	for _, k := range keys {
		q.release(ctx, k)
	}
	return nil
}

// ReleaseAll releases the parked events of every key that has cleared:
// after a consumer starts or is assigned partitions, in case the one that
// should have released them stopped first.
func (q *Queue) ReleaseAll(ctx context.Context) {
	for _, k := range q.idx.parkedKeys() {
		q.release(ctx, k)
	}
}

// release redrives the parked events of key if nothing holds them back any
// more (Index.Releasable). Two consumers may both release an event: only
// the first redrive of a generation counts, so it is handled once.
func (q *Queue) release(ctx context.Context, key []byte) {
	if q.cfg.Who == "" || len(key) == 0 {
		return
	}
	q.relMu.Lock()
	defer q.relMu.Unlock()
	items := q.idx.Releasable(key)
	if len(items) == 0 {
		return
	}
	if q.tx == nil {
		tx, err := streams.NewClient(q.brokers, append(transactional("release", q.group), q.opts...)...)
		if err != nil {
			q.cfg.Log.Warn("cannot release parked events", "key", string(key), "err", err)
			return
		}
		q.tx = tx
	}
	d := Decision{Who: q.cfg.Who, Why: "released: the dead event they waited for was redriven or discarded"}
	var acts []Action
	var err error
	for attempt := range 3 { // a short outage; longer ones wait for ReleaseAll
		if acts, err = redriveTx(ctx, q.tx, q.group, items, d); err == nil || !clock.Sleep(ctx, 100*time.Millisecond<<attempt) {
			break
		}
	}
	if err != nil {
		q.cfg.Log.Warn("releasing parked events failed; they are released when the consumer is next assigned partitions, or with recq dlq redrive",
			"key", string(key), "events", len(items), "err", err)
		return
	}
	for _, a := range acts {
		q.idx.addAction(a)
	}
	q.cfg.Log.Info("released parked events", "key", string(key), "events", len(acts), "retry", RetryTopic(q.group))
}
