package aggregates

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/aggregates/snapshot"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/streams"
)

// Header names the command side adds to the recq envelope.
const (
	// HeaderExpectedVersion carries the aggregate version a command expects.
	HeaderExpectedVersion = "recq-expected-version"
)

// Codec is what the command side needs of a serde: encoding, decoding and
// the type name a value travels under (recq-type). schema.Serde implements it.
type Codec = streams.TypedCodec

// CommandsTopic and EventsTopic name an aggregate's topics.
func CommandsTopic(aggregate string) string { return aggregate + ".commands" }

// EventsTopic is the topic an aggregate's events are stored on.
func EventsTopic(aggregate string) string { return aggregate + ".events" }

// typeTable maps recq-type names to the Go types registered for them.
type typeTable map[string]reflect.Type

func newTypeTable(codec Codec, types []reflect.Type) (typeTable, error) {
	tt := typeTable{}
	for _, t := range types {
		name, err := codec.TypeName(reflect.New(t).Interface())
		if err != nil {
			return nil, fmt.Errorf("aggregates: type %v: %w", t, err)
		}
		tt[name] = t
	}
	return tt, nil
}

// decode turns a record into the registered Go value its recq-type names.
func (tt typeTable) decode(ctx context.Context, codec Codec, r *kgo.Record, typ string) (any, error) {
	t, ok := tt[typ]
	if !ok {
		return nil, fmt.Errorf("no registered type for recq-type %q", typ)
	}
	v := reflect.New(t)
	if err := codec.Decode(ctx, r.Topic, r.Value, v.Interface()); err != nil {
		return nil, err
	}
	return v.Elem().Interface(), nil
}

// EnsureTopics creates an aggregate's command and event topics with n
// partitions, or checks that existing ones are co-partitioned: the same key
// must land in the same partition of both, which holds only with equal
// partition counts.
func EnsureTopics(ctx context.Context, adm *streams.Admin, aggregate string, n int32) error {
	counts := map[string]int{}
	for _, topic := range []string{CommandsTopic(aggregate), EventsTopic(aggregate)} {
		err := adm.CreateTopic(ctx, streams.TopicSpec{Name: topic, Partitions: n})
		if err != nil && !errors.Is(err, streams.ErrTopicExists) {
			return fmt.Errorf("aggregates: %w", err)
		}
		info, err := adm.DescribeTopic(ctx, topic)
		if err != nil {
			return fmt.Errorf("aggregates: %w", err)
		}
		counts[topic] = len(info.Partitions)
	}
	if c, e := counts[CommandsTopic(aggregate)], counts[EventsTopic(aggregate)]; c != e {
		return fmt.Errorf("aggregates: %s has %d partitions but %s has %d; they must be equal so an aggregate's commands and events share a partition (recreate one, or add partitions to the smaller)",
			CommandsTopic(aggregate), c, EventsTopic(aggregate), e)
	}
	return nil
}

// Reply is what the runner answers a command with, on the command's
// recq-reply-to topic, keyed by the command id.
type Reply struct {
	Version   int64  `json:"version,omitempty"`   // the aggregate's version after the command
	Events    int    `json:"events"`              // how many events it caused
	Duplicate bool   `json:"duplicate,omitempty"` // the command id was handled before
	Code      string `json:"code,omitempty"`      // rejection: not_found, deleted, conflict, rejected, unknown_command, undecodable
	Error     string `json:"error,omitempty"`
}

var codes = []struct {
	code string
	err  error
}{
	{"not_found", ErrNotFound},
	{"deleted", ErrDeleted},
	{"conflict", ErrConflict},
	{"unknown_command", ErrUnknownCommand},
	{"unknown_event", ErrUnknownEvent},
}

func rejection(err error) Reply {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return Reply{Code: c.code, Error: err.Error()}
		}
	}
	var rej *RejectedError
	if errors.As(err, &rej) {
		return Reply{Code: "rejected", Error: rej.Err.Error()}
	}
	return Reply{Code: "undecodable", Error: err.Error()}
}

// entry is a loaded aggregate: its instance and the ids of the commands
// whose events it contains, so a command sent again is answered, not redone.
type entry[S any] struct {
	in       Instance[S]
	seen     map[string]bool
	order    []string    // seen ids, oldest first, for bounded snapshots
	last     *kgo.Record // the last event written in this batch; its offset is known once produced
	snapshot int64       // version of the last snapshot taken or loaded
}

func (e *entry[S]) remember(id string) {
	if !e.seen[id] {
		e.seen[id] = true
		e.order = append(e.order, id)
	}
}

// RunnerOption configures a Runner.
type RunnerOption func(*runnerConfig)

type runnerConfig struct {
	snapshots snapshot.Store
	every     int64
	cacheSize int
	instance  string
	session   time.Duration
}

// WithSessionTimeout sets how long the group waits for a silent member
// (one that crashed) before giving its partitions to the others (franz-go's
// default, 45 s, unless set).
func WithSessionTimeout(d time.Duration) RunnerOption { return func(c *runnerConfig) { c.session = d } }

// WithInstanceID gives the runner a stable identity (e.g. a pod name) for
// its transactional id. A runner restarted with the same identity fences
// its crashed predecessor at once, aborting the transaction it left open;
// without one, that transaction holds the partitions' stable offsets until
// the broker times it out (TransactionTimeout, 10 s).
func WithInstanceID(id string) RunnerOption { return func(c *runnerConfig) { c.instance = id } }

// TransactionTimeout is how long a runner's transaction may stay open
// before the broker aborts it.
const TransactionTimeout = 10 * time.Second

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

// Runner handles an aggregate's commands exactly once: a member of the
// consumer group <aggregate>.runner that, per polled batch, decides the
// commands and writes their events, their replies and the command offsets in
// one Kafka transaction. A runner that lost its partitions (or a zombie) is
// fenced and cannot commit.
type Runner[S any] struct {
	agg      *Aggregate[S]
	codec    Codec
	brokers  []string
	group    string
	commands typeTable
	events   typeTable
	history  *streams.RangeReader
	cfg      runnerConfig

	mu    sync.Mutex // guards cache: the poll loop and revocation callbacks
	cache *stateCache[S]
}

// NewRunner returns a runner of agg's commands.
func NewRunner[S any](agg *Aggregate[S], codec Codec, brokers []string, opts ...RunnerOption) (*Runner[S], error) {
	r := &Runner[S]{agg: agg, codec: codec, brokers: brokers, group: agg.name + ".runner"}
	for _, o := range opts {
		o(&r.cfg)
	}
	r.cache = newStateCache[S](r.cfg.cacheSize)
	var err error
	if r.commands, err = newTypeTable(codec, agg.CommandTypes()); err != nil {
		return nil, err
	}
	if r.events, err = newTypeTable(codec, agg.EventTypes()); err != nil {
		return nil, err
	}
	if r.history, err = streams.NewRangeReader(brokers); err != nil {
		return nil, err
	}
	return r, nil
}

// drop forgets the cached aggregates of partitions this runner no longer owns.
func (r *Runner[S]) drop(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cache.dropPartitions(lost[CommandsTopic(r.agg.name)])
}

// ensureQueue creates the runner's dead event queue, <aggregate>.runner.dlq,
// as wide as the commands topic. It has no retry topic: the sender of a
// command that cannot be read is answered "undecodable" and sends a fixed
// one; the queue keeps the original for inspection and discard.
func (r *Runner[S]) ensureQueue(ctx context.Context) error {
	cl, err := streams.Dial(ctx, r.brokers)
	if err != nil {
		return err
	}
	defer cl.Close()
	return deadletter.EnsureTopics(ctx, streams.NewAdmin(cl), r.group, false, CommandsTopic(r.agg.name))
}

// Run handles commands until ctx ends, then leaves the group.
func (r *Runner[S]) Run(ctx context.Context) error {
	defer r.history.Close()
	instance := r.cfg.instance
	if instance == "" {
		instance = streams.NewID()
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(r.brokers...),
		kgo.ClientID("recq-runner"),
		kgo.TransactionalID(r.group + "-" + instance),
		kgo.TransactionTimeout(TransactionTimeout),
		kgo.ConsumerGroup(r.group),
		kgo.ConsumeTopics(CommandsTopic(r.agg.name)),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.OnPartitionsRevoked(r.drop),
		kgo.OnPartitionsLost(r.drop),
	}
	if r.cfg.session > 0 {
		opts = append(opts, kgo.SessionTimeout(r.cfg.session))
	}
	if err := r.ensureQueue(ctx); err != nil {
		return fmt.Errorf("aggregates: runner %s: %w", r.agg.name, err)
	}
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("aggregates: runner %s: %w", r.agg.name, err)
	}
	defer sess.Close()
	for {
		fs := sess.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err := fs.Err0(); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("aggregates: runner %s: poll: %w", r.agg.name, err)
		}
		if fs.NumRecords() == 0 {
			continue
		}
		r.mu.Lock()
		r.cache.batch++
		r.mu.Unlock()
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("aggregates: runner %s: begin: %w", r.agg.name, err)
		}
		touched, err := r.batch(ctx, sess, fs.Records())
		committed := false
		if err == nil {
			committed, err = sess.End(ctx, kgo.TryCommit)
		} else {
			sess.End(ctx, kgo.TryAbort)
		}
		if committed {
			r.snapshots(ctx, touched)
		} else {
			// The in-memory states ran ahead of what Kafka kept: reload
			// them from the log when next needed. The batch is polled again.
			r.forget(touched)
		}
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("aggregates: runner %s: %w", r.agg.name, err)
		}
	}
}

type key struct {
	partition int32
	id        string
}

func (r *Runner[S]) forget(keys []key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		r.cache.remove(k)
	}
}

// batch handles recs, producing through sess, and returns the aggregates it
// changed in memory.
func (r *Runner[S]) batch(ctx context.Context, sess *kgo.GroupTransactSession, recs []*kgo.Record) ([]key, error) {
	var (
		touched []key
		mu      sync.Mutex
		errs    []error
		wg      sync.WaitGroup
	)
	produce := func(rec *kgo.Record) {
		wg.Add(1)
		sess.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			wg.Done()
		})
	}
	for _, rec := range recs {
		k := key{rec.Partition, string(rec.Key)}
		touched = append(touched, k)
		out, err := r.handle(ctx, rec, k)
		if err != nil {
			wg.Wait()
			return touched, err
		}
		for _, o := range out {
			produce(o)
		}
	}
	wg.Wait()
	return touched, errors.Join(errs...)
}

// handle decides one command and returns the records to write: its events
// and its reply. An error here is a failure to load or encode (the batch is
// retried); a rejected command is an answer, not an error.
func (r *Runner[S]) handle(ctx context.Context, rec *kgo.Record, k key) ([]*kgo.Record, error) {
	env, _ := streams.ReadEnvelope(rec)
	ctx = streams.ContextWithMessage(ctx, env)
	reply := func(rp Reply) []*kgo.Record {
		if env.ReplyTo == "" {
			return nil
		}
		b, _ := json.Marshal(rp)
		out := &kgo.Record{Topic: env.ReplyTo, Key: []byte(env.ID), Value: b}
		streams.Stamp(ctx, out)
		return []*kgo.Record{out}
	}
	// A command that cannot be read is answered, and kept in the runner's
	// dead event queue, in the same transaction as the answer.
	undecodable := func(err error) []*kgo.Record {
		return append(reply(Reply{Code: "undecodable", Error: err.Error()}), r.dead(rec, env.Type, err))
	}
	cmd, err := r.commands.decode(ctx, r.codec, rec, env.Type)
	if err != nil {
		return undecodable(err), nil
	}
	e, err := r.load(ctx, k)
	if err != nil {
		return nil, err
	}
	if env.ID != "" && e.seen[env.ID] {
		return reply(Reply{Version: e.in.Version, Duplicate: true}), nil
	}
	expected := AnyVersion
	if v, ok := streams.Header(rec, HeaderExpectedVersion); ok {
		if expected, err = strconv.ParseInt(v, 10, 64); err != nil {
			return undecodable(fmt.Errorf("header %s=%q is not a version", HeaderExpectedVersion, v)), nil
		}
	}
	events, err := r.agg.Decide(ctx, &e.in, cmd, expected)
	if err != nil {
		return reply(rejection(err)), nil
	}
	out := make([]*kgo.Record, 0, len(events)+1)
	for i, evt := range events {
		val, typ, err := r.codec.Encode(ctx, EventsTopic(r.agg.name), evt)
		if err != nil {
			return nil, fmt.Errorf("encode event %T of command %s: %w", evt, env.ID, err)
		}
		er := &kgo.Record{Topic: EventsTopic(r.agg.name), Key: rec.Key, Value: val}
		env := streams.Envelope{Type: typ, AggregateID: k.id, AggregateVersion: e.in.Version + int64(i) + 1}
		if r.agg.stateless {
			env.AggregateID, env.AggregateVersion = "", 0 // service events belong to no aggregate
		}
		env.Write(er)
		streams.Stamp(ctx, er)
		out = append(out, er)
	}
	if err := r.agg.Apply(&e.in, events...); err != nil {
		return nil, err
	}
	if env.ID != "" && len(events) > 0 {
		e.remember(env.ID)
	}
	if len(out) > 0 {
		e.last = out[len(out)-1]
	}
	version := e.in.Version
	if r.agg.stateless {
		version = 0
	}
	return append(out, reply(Reply{Version: version, Events: len(events)})...), nil
}

// dead is the dead event queue's record of a command that cannot be read.
func (r *Runner[S]) dead(rec *kgo.Record, typ string, err error) *kgo.Record {
	now := time.Now().UTC()
	e := deadletter.Entry{
		ID: deadletter.ID(rec.Topic, rec.Partition, rec.Offset), Group: r.group, Handler: typ,
		Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
		Reason: deadletter.ReasonUndecodable, Kind: deadletter.KindPermanent, Error: err.Error(),
		Attempts: 1, Generation: 1, FirstFailure: now, LastFailure: now,
		Key: rec.Key, Value: rec.Value, Headers: rec.Headers,
	}
	return e.Record(deadletter.Topic(r.group))
}

// load returns the aggregate from the cache, or rebuilds it from its events
// in its partition of the event topic.
func (r *Runner[S]) load(ctx context.Context, k key) (*entry[S], error) {
	r.mu.Lock()
	e := r.cache.get(k)
	r.mu.Unlock()
	if e != nil {
		return e, nil
	}
	e = &entry[S]{seen: map[string]bool{}}
	if r.agg.stateless {
		r.mu.Lock()
		r.cache.put(k, e)
		r.mu.Unlock()
		return e, nil
	}
	from, err := r.restore(ctx, k, e)
	if err != nil {
		return nil, err
	}
	topic := EventsTopic(r.agg.name)
	end, err := r.history.Stable(ctx, topic, k.partition)
	if err != nil {
		return nil, err
	}
	var applyErr error
	err = r.history.Read(ctx, topic, k.partition, from, end, func(er *kgo.Record) {
		if applyErr != nil || string(er.Key) != k.id {
			return
		}
		env, _ := streams.ReadEnvelope(er)
		evt, err := r.events.decode(ctx, r.codec, er, env.Type)
		if err != nil {
			applyErr = fmt.Errorf("load %s %s: event at offset %d: %w", r.agg.name, k.id, er.Offset, err)
			return
		}
		applyErr = r.agg.Apply(&e.in, evt)
		if env.CausationID != "" {
			e.remember(env.CausationID)
		}
	})
	if err == nil {
		err = applyErr
	}
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.cache.put(k, e)
	r.mu.Unlock()
	return e, nil
}

// snapshotState is what a snapshot holds besides the version.
type snapshotState[S any] struct {
	State S        `json:"state"`
	Seen  []string `json:"seen,omitempty"`
}

// restore loads k's snapshot into e and returns the offset to read events
// from: after the snapshot, or 0 without a usable one.
func (r *Runner[S]) restore(ctx context.Context, k key, e *entry[S]) (int64, error) {
	if r.cfg.snapshots == nil {
		return 0, nil
	}
	snap, err := r.cfg.snapshots.Load(ctx, r.agg.name, k.id)
	if errors.Is(err, snapshot.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("load %s %s: %w", r.agg.name, k.id, err)
	}
	var st snapshotState[S]
	if snap.Partition != k.partition || json.Unmarshal(snap.State, &st) != nil {
		// Taken before the partitions changed, or of an older state type:
		// replaying every event is slower but right.
		return 0, nil
	}
	e.in = Instance[S]{State: st.State, Version: snap.Version}
	e.snapshot = snap.Version
	for _, id := range st.Seen {
		e.remember(id)
	}
	return snap.Offset + 1, nil
}

// snapshots saves a snapshot of every aggregate of a committed batch that
// has gone cfg.every events past its last one.
func (r *Runner[S]) snapshots(ctx context.Context, keys []key) {
	if r.cfg.snapshots == nil || r.agg.stateless {
		return
	}
	for _, k := range keys {
		r.mu.Lock()
		e := r.cache.get(k)
		r.mu.Unlock()
		if e == nil || e.last == nil || e.in.Version-e.snapshot < r.cfg.every {
			continue
		}
		seen := e.order[max(0, len(e.order)-SnapshotSeen):]
		b, err := json.Marshal(snapshotState[S]{State: e.in.State, Seen: seen})
		if err != nil {
			continue // a state that cannot be JSON is replayed from events
		}
		err = r.cfg.snapshots.Save(ctx, snapshot.Snapshot{
			Aggregate: r.agg.name, ID: k.id, Version: e.in.Version, State: b,
			Partition: k.partition, Offset: e.last.Offset, TakenAt: time.Now(),
		})
		if err == nil {
			e.snapshot = e.in.Version
		}
	}
}
