package aggregates

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/recq/recq/streams"
	"github.com/recq/recq/tracing"
)

// DefaultRepliesTopic is where runners answer invokers unless told otherwise.
const DefaultRepliesTopic = "recq.replies"

// DefaultReplyPartitions is how many partitions an invoker gives the replies
// topic when it creates it.
const DefaultReplyPartitions = 8

// InvokerOption configures an Invoker.
type InvokerOption func(*invokerConfig)

type invokerConfig struct {
	replies    string
	partitions int32
}

// WithRepliesTopic sets the topic the invoker asks runners to answer on
// (default DefaultRepliesTopic), e.g. one per service so a service reads
// only its own replies.
func WithRepliesTopic(topic string) InvokerOption {
	return func(c *invokerConfig) { c.replies = topic }
}

// WithReplyPartitions sets the partitions of the replies topic when the
// invoker creates it (default DefaultReplyPartitions); an existing topic
// keeps its own.
func WithReplyPartitions(n int32) InvokerOption {
	return func(c *invokerConfig) { c.partitions = n }
}

// Invoker sends commands to aggregates and waits for their replies
// (Evento's command gateway): request-reply over Kafka, matched by command id.
type Invoker struct {
	pub     *streams.Publisher
	codec   Codec
	replies string
	reader  *kgo.Client

	mu      sync.Mutex
	pending map[string]chan Reply
	stop    context.CancelFunc
	done    chan struct{}
}

// NewInvoker connects to brokers, makes sure the replies topic exists, and
// starts listening to it from its current end.
func NewInvoker(ctx context.Context, brokers []string, codec Codec, opts ...InvokerOption) (*Invoker, error) {
	cfg := invokerConfig{replies: DefaultRepliesTopic, partitions: DefaultReplyPartitions}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.replies == "" || cfg.partitions < 1 {
		return nil, fmt.Errorf("aggregates: invoker: replies topic %q with %d partitions: want a name and at least 1", cfg.replies, cfg.partitions)
	}
	pub, err := streams.NewPublisher(brokers, streams.WithCodec(codec))
	if err != nil {
		return nil, err
	}
	adm := streams.NewAdmin(pub.Client())
	if err := adm.EnsureTopic(ctx, streams.TopicSpec{Name: cfg.replies, Partitions: cfg.partitions}); err != nil {
		pub.Close(ctx)
		return nil, fmt.Errorf("aggregates: invoker: %w", err)
	}
	// Start exactly at today's ends, looked up now: a reply produced after
	// NewInvoker returns is never missed, whatever the clocks say.
	ends, err := adm.EndOffsets(ctx, cfg.replies)
	if err != nil {
		pub.Close(ctx)
		return nil, fmt.Errorf("aggregates: invoker: %w", err)
	}
	at := map[string]map[int32]kgo.Offset{cfg.replies: {}}
	for p, o := range ends[cfg.replies] {
		at[cfg.replies][p] = kgo.NewOffset().At(o)
	}
	reader, err := streams.NewClient(brokers, kgo.ConsumePartitions(at))
	if err != nil {
		pub.Close(ctx)
		return nil, err
	}
	lctx, stop := context.WithCancel(context.Background())
	iv := &Invoker{pub: pub, codec: codec, replies: cfg.replies, reader: reader,
		pending: map[string]chan Reply{}, stop: stop, done: make(chan struct{})}
	go iv.listen(lctx)
	return iv, nil
}

// listen hands each reply to the Send waiting for its command id; the
// Invoker owns this goroutine and Close stops it.
func (iv *Invoker) listen(ctx context.Context) {
	defer close(iv.done)
	for {
		fs := iv.reader.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		fs.EachRecord(func(r *kgo.Record) {
			var rp Reply
			if json.Unmarshal(r.Value, &rp) != nil {
				return
			}
			iv.mu.Lock()
			ch := iv.pending[string(r.Key)]
			delete(iv.pending, string(r.Key))
			iv.mu.Unlock()
			if ch != nil {
				ch <- rp
			}
		})
	}
}

// SendOption configures one Send.
type SendOption func(*sendConfig)

type sendConfig struct {
	id       string
	expected int64
}

// WithCommandID sets the command id; sending again with the same id is
// handled once (the second answer says Duplicate). Default: a new UUIDv7.
func WithCommandID(id string) SendOption { return func(c *sendConfig) { c.id = id } }

// ExpectVersion makes the command fail with ErrConflict unless the aggregate
// is at version v.
func ExpectVersion(v int64) SendOption { return func(c *sendConfig) { c.expected = v } }

// Result is an accepted command's outcome.
type Result struct {
	CommandID string
	Version   int64 // the aggregate's version after the command
	Events    int
	// Duplicate: the id had been handled before; nothing new was written,
	// and Version is the one that command brought the aggregate to (while
	// the runner remembers the id: the ids in its events, or the last
	// SnapshotSeen of a snapshot), so a resent command learns what it did.
	Duplicate bool
}

// Send sends cmd to the aggregate with id of type aggregate and waits for
// the runner's reply, until ctx ends. A rejection is an error that matches
// this package's sentinels with errors.Is (ErrNotFound, ErrDeleted,
// ErrConflict, ErrUnknownCommand) or, for a handler's own refusal, a
// *RejectedError carrying its message.
func (iv *Invoker) Send(ctx context.Context, aggregate, id string, cmd any, opts ...SendOption) (Result, error) {
	o := <-iv.SendAsync(ctx, aggregate, id, cmd, opts...)
	return o.Result, o.Err
}

// Outcome is what SendAsync delivers: Send's two results.
type Outcome struct {
	Result
	Err error
}

// SendAsync sends cmd and returns at once; the channel delivers the outcome
// (as Send would return it) and is then closed. ctx bounds the wait.
func (iv *Invoker) SendAsync(ctx context.Context, aggregate, id string, cmd any, opts ...SendOption) <-chan Outcome {
	cfg := sendConfig{id: streams.NewID(), expected: AnyVersion}
	for _, o := range opts {
		o(&cfg)
	}
	out := make(chan Outcome, 1)
	var span trace.Span
	var start time.Time
	if tracing.MetricsEnabled() {
		start = time.Now()
	}
	rejected := false
	deliver := func(o Outcome) {
		o.CommandID = cfg.id
		if span != nil {
			tracing.End(span, o.Err)
		}
		if !start.IsZero() {
			outcome := "ok"
			switch {
			case rejected:
				outcome = "rejected"
			case o.Err != nil:
				outcome = "failed"
			}
			tracing.CommandDone(aggregate, start, outcome)
		}
		out <- o
		close(out)
	}
	val, typ, err := iv.codec.Encode(ctx, CommandsTopic(aggregate), cmd)
	if err != nil {
		deliver(Outcome{Err: fmt.Errorf("aggregates: send %T: %w", cmd, err)})
		return out
	}
	rec := &kgo.Record{Topic: CommandsTopic(aggregate), Key: []byte(id), Value: val}
	streams.Envelope{Type: typ, ID: cfg.id, ReplyTo: iv.replies}.Write(rec)
	if cfg.expected != AnyVersion {
		streams.SetHeader(rec, HeaderExpectedVersion, strconv.FormatInt(cfg.expected, 10))
	}
	if tracing.Enabled() {
		// The command's round trip, from here to its reply, is one span: its
		// send span, and all that the command causes, are its children. It
		// names the ids the publisher gives the command (Stamp keeps them).
		streams.Stamp(ctx, rec)
		f := streams.FlowOf(rec)
		f.AggregateID = id // a command's key
		ctx, span = tracing.Start(ctx, "invoke "+aggregate, trace.SpanKindClient, f)
	}
	replies := make(chan Reply, 1)
	iv.mu.Lock()
	iv.pending[cfg.id] = replies
	iv.mu.Unlock()
	published := make(chan error, 1)
	iv.pub.PublishAsync(ctx, rec, func(_ *kgo.Record, err error) { published <- err })
	// The waiter is owned by this call: it ends with the reply, a failed
	// publish, or ctx, and is the only one to deliver.
	go func() {
		defer func() {
			iv.mu.Lock()
			delete(iv.pending, cfg.id)
			iv.mu.Unlock()
		}()
		for {
			select {
			case err := <-published:
				if err != nil {
					deliver(Outcome{Err: fmt.Errorf("aggregates: send command %s (%T to %s %s): the broker refused it: %w; send again with WithCommandID(%q): it is handled once", cfg.id, cmd, aggregate, id, err, cfg.id)})
					return
				}
				published = nil // sent; wait for the reply
			case rp := <-replies:
				if rp.Code != "" {
					rejected = true
					deliver(Outcome{Err: replyErr(rp)})
				} else {
					deliver(Outcome{Result: Result{Version: rp.Version, Events: rp.Events, Duplicate: rp.Duplicate}})
				}
				return
			case <-ctx.Done():
				what := "no reply to command"
				if published != nil {
					what = "the broker did not acknowledge command" // it may have been written all the same
				}
				deliver(Outcome{Err: fmt.Errorf("aggregates: %s %s (%T to %s %s): %w; it may still be handled: send again with WithCommandID(%q) to find out", what, cfg.id, cmd, aggregate, id, ctx.Err(), cfg.id)})
				return
			}
		}
	}()
	return out
}

// closeFlush bounds how long Close waits for commands still buffered.
const closeFlush = 10 * time.Second

// Close stops listening and closes the invoker's clients, after waiting
// up to 10 s for commands still buffered (a broker that is down would
// hold them for ever; their Sends have failed or timed out by then).
func (iv *Invoker) Close() {
	iv.stop()
	iv.reader.Close()
	<-iv.done
	ctx, cancel := context.WithTimeout(context.Background(), closeFlush)
	defer cancel()
	iv.pub.Close(ctx)
}
