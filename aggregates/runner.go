package aggregates

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/health"
	"github.com/recq/recq/streams"
	"github.com/recq/recq/tracing"
)

// Header names the command side adds to the recq envelope.
const (
	// HeaderExpectedVersion carries the aggregate version a command expects.
	HeaderExpectedVersion = "recq-expected-version"
)

// Codec is what the command side needs of a serde: encoding, decoding and
// the type name a value travels under (recq-type). schema.Serde implements it.
type Codec = streams.TypedCodec

// errNoType is a record whose recq-type names no registered Go type.
var errNoType = errors.New("no registered type for recq-type")

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
		return nil, fmt.Errorf("%w %q", errNoType, typ)
	}
	v := reflect.New(t)
	if err := codec.Decode(ctx, r.Topic, r.Value, v.Interface()); err != nil {
		return nil, err
	}
	return v.Elem().Interface(), nil
}

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
	log      *slog.Logger
	// partitions is the topics' partition count when Run started: every
	// key's home partition is computed with it.
	partitions       int
	partitionsHeader []byte                  // HeaderPartitions' value
	halt             context.CancelCauseFunc // ends Run from a group callback

	mu    sync.Mutex // guards what follows: the poll loop, group callbacks, Status
	cache *stateCache[S]
	// For Status: whether Run runs, has joined its group, owns which
	// partitions, and what it is retrying; broker is the probe's view.
	running bool
	joined  bool
	owned   map[int32]bool
	// inHand is, per partition, the timestamp of the first command of the
	// batch in hand, for the lag metrics (lag.go).
	inHand  map[int32]time.Time
	failing *Failure
	broker  health.Probe
}

// NewRunner returns a runner of agg's commands.
func NewRunner[S any](agg *Aggregate[S], codec Codec, brokers []string, opts ...RunnerOption) (*Runner[S], error) {
	r := &Runner[S]{agg: agg, codec: codec, brokers: brokers, group: agg.name + ".runner", owned: map[int32]bool{}, inHand: map[int32]time.Time{}}
	for _, o := range opts {
		o(&r.cfg)
	}
	r.cache = newStateCache[S](r.cfg.cacheSize)
	r.log = streams.Logger(r.cfg.log).With("group", r.group)
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
	ps := lost[CommandsTopic(r.agg.name)]
	r.cache.dropPartitions(ps)
	for _, p := range ps {
		delete(r.owned, p)
		delete(r.inHand, p)
	}
}

// assigned stops the runner when it is given a partition beyond the count
// it started with: partitions were added to the commands topic, and keys
// now hash to partitions that do not hold their history.
//
// A partition just gained is always loaded cold: the session skips our
// revocation callback when a revocation came before the previous one was
// ended by a transaction (an idle runner), so what the cache held of it
// may be stale, decided on by another member since.
func (r *Runner[S]) assigned(_ context.Context, _ *kgo.Client, got map[string][]int32) {
	ps := got[CommandsTopic(r.agg.name)]
	r.mu.Lock()
	r.joined = true
	r.cache.dropPartitions(ps)
	for _, p := range ps {
		r.owned[p] = true
	}
	r.failing = nil // what failed belonged to the assignment before; a new failure says so again
	r.mu.Unlock()
	for _, p := range got[CommandsTopic(r.agg.name)] {
		if int(p) >= r.partitions {
			r.halt(fmt.Errorf("%w: partitions were added to %s while the runner ran (it started with %d, was given partition %d); partitions cannot be added to an aggregate's topics: scale it with a new topic pair (docs/ARCHITECTURE.md, \"Scaling an aggregate\")",
				ErrTopics, CommandsTopic(r.agg.name), r.partitions, p))
			return
		}
	}
}

// prepare checks the broker, the topics and the runner's dead event queue,
// <aggregate>.runner.dlq (as wide as the commands topic), before the first
// poll, and returns the client it checked them with (the broker probe's,
// for as long as Run runs). The queue has no retry topic: the sender of a
// command that cannot be read is answered "undecodable" and sends a fixed
// one; the queue keeps the original for inspection and discard.
func (r *Runner[S]) prepare(ctx context.Context) (*kgo.Client, error) {
	cl, err := streams.Dial(ctx, r.brokers)
	if err != nil {
		return nil, err
	}
	adm := streams.NewAdmin(cl)
	if r.partitions, err = r.checkTopics(ctx, adm); err == nil {
		err = deadletter.EnsureTopics(ctx, adm, r.group, false, CommandsTopic(r.agg.name))
	}
	if err != nil {
		cl.Close()
		return nil, err
	}
	r.partitionsHeader = []byte(strconv.Itoa(r.partitions))
	return cl, nil
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
		if home := streams.KeyPartition(rec.Key, r.partitions); len(rec.Key) > 0 && home != rec.Partition {
			// Produced by a client with another partitioner (kcat and
			// librdkafka hash with crc32): moved, in this transaction, to
			// the partition that holds the aggregate's history, and
			// answered there.
			produce(&kgo.Record{Topic: rec.Topic, Partition: home, Key: rec.Key, Value: rec.Value, Headers: rec.Headers, Timestamp: rec.Timestamp})
			continue
		}
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
func (r *Runner[S]) handle(ctx context.Context, rec *kgo.Record, k key) (recs []*kgo.Record, err error) {
	env, _ := streams.ReadEnvelope(rec)
	ctx = streams.ContextWithMessage(ctx, env)
	if tracing.Enabled() {
		var span trace.Span
		ctx, span = tracing.Process(ctx, rec, r.group, "", streams.FlowOf)
		defer func() {
			for _, o := range recs {
				o.Context = ctx // their send spans are the command's children
			}
			tracing.End(span, err)
		}()
	}
	reply := func(rp Reply) []*kgo.Record {
		if rp.Code != "" {
			trace.SpanFromContext(ctx).SetAttributes(attribute.String("recq.rejection", rp.Code))
		}
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
	if len(rec.Key) == 0 {
		return undecodable(errors.New("the record has no key: a command's key is the id of its aggregate")), nil
	}
	cmd, err := r.commands.decode(ctx, r.codec, rec, env.Type)
	switch {
	case errors.Is(err, errNoType) || deadletter.Undecodable(err):
		return undecodable(err), nil
	case err != nil:
		// Not the command's fault (an unreachable registry): retried,
		// never answered as a rejection.
		return nil, fmt.Errorf("decode command %s at %s/%d/%d: %w", env.ID, rec.Topic, rec.Partition, rec.Offset, err)
	}
	e, err := r.load(ctx, k)
	if err != nil {
		return nil, err
	}
	if v, ok := e.answered(env.ID); env.ID != "" && ok {
		if r.agg.stateless {
			v = 0
		}
		return reply(Reply{Version: v, Duplicate: true}), nil
	}
	expected := AnyVersion
	if v, ok := streams.Header(rec, HeaderExpectedVersion); ok {
		if expected, err = strconv.ParseInt(v, 10, 64); err != nil {
			return undecodable(fmt.Errorf("header %s=%q is not a version", HeaderExpectedVersion, v)), nil
		}
	}
	events, err := r.decide(ctx, e, cmd, expected, rec, env.Type)
	if err != nil {
		return reply(rejection(err)), nil
	}
	out := make([]*kgo.Record, 0, len(events)+1)
	for i, evt := range events {
		val, typ, err := r.codec.Encode(ctx, EventsTopic(r.agg.name), evt)
		if err != nil {
			return nil, fmt.Errorf("encode event %T of command %s: %w", evt, env.ID, err)
		}
		er := &kgo.Record{Topic: EventsTopic(r.agg.name), Partition: k.partition, Key: rec.Key, Value: val,
			Headers: []kgo.RecordHeader{{Key: HeaderPartitions, Value: r.partitionsHeader}}}
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
		e.remember(env.ID, e.in.Version)
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

// decide runs the aggregate's handler for cmd, in a span of its own
// (TodoList.Handle(AddItem)) when tracing is on.
func (r *Runner[S]) decide(ctx context.Context, e *entry[S], cmd any, expected int64, rec *kgo.Record, typ string) ([]any, error) {
	if !tracing.Enabled() || !trace.SpanFromContext(ctx).IsRecording() {
		return r.agg.Decide(ctx, &e.in, cmd, expected)
	}
	ctx, span := tracing.Start(ctx, r.agg.name+".Handle("+typ[strings.LastIndexByte(typ, '.')+1:]+")", trace.SpanKindInternal, streams.FlowOf(rec))
	events, err := r.agg.Decide(ctx, &e.in, cmd, expected)
	tracing.End(span, err)
	return events, err
}

// dead is the dead event queue's record of a command that cannot be read.
func (r *Runner[S]) dead(rec *kgo.Record, typ string, err error) *kgo.Record {
	e := deadletter.NewEntry(rec, r.group, deadletter.Failure{Handler: typ, Reason: deadletter.ReasonUndecodable, Err: err, Attempts: 1}, time.Now())
	return e.Record(deadletter.Topic(r.group))
}
