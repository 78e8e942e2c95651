package consumers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/streams"
)

// Metadata is what a handler knows of the event it handles besides the
// payload: where the record sits (fields), and what the record's bytes say
// (methods: the key and the envelope), read only when asked for. Most
// handlers need one of those or none, and reading them all was the largest
// per-event cost after decoding.
type Metadata struct {
	Group string // the consumer group handling it
	// Where the record sits; for an event redriven from the dead event
	// queue, where it was first written (not the retry topic).
	Topic     string
	Partition int32
	Offset    int64
	Time      time.Time // the record's timestamp
	rec       *kgo.Record
}

// Key is the record's key: the aggregate id for recq's event topics.
func (m Metadata) Key() string { return string(m.rec.Key) }

// Envelope reads the whole envelope; the error reports a malformed
// aggregate version (the rest is still returned).
func (m Metadata) Envelope() (streams.Envelope, error) { return streams.ReadEnvelope(m.rec) }

// ID is the event's message id (recq-id).
func (m Metadata) ID() string { return m.header(streams.HeaderID) }

// Type is the event's type name (recq-type).
func (m Metadata) Type() string { return m.header(streams.HeaderType) }

// AggregateID is the id of the aggregate that emitted the event.
func (m Metadata) AggregateID() string { return m.header(streams.HeaderAggregateID) }

// AggregateVersion is the aggregate's version after the event; 0 when the
// header is absent or malformed (Envelope reports which).
func (m Metadata) AggregateVersion() int64 {
	v, _ := strconv.ParseInt(m.header(streams.HeaderAggregateVersion), 10, 64)
	return v
}

// CorrelationID is the id of the flow the event belongs to.
func (m Metadata) CorrelationID() string { return m.header(streams.HeaderCorrelationID) }

// CausationID is the id of the message that caused the event.
func (m Metadata) CausationID() string { return m.header(streams.HeaderCausationID) }

func (m Metadata) header(key string) string {
	v, _ := streams.Header(m.rec, key)
	return v
}

// HandledEnvelope makes the record in hand the context's message for
// streams.Stamp (see streams.ContextWithMessageSource).
func (m *Metadata) HandledEnvelope() streams.Envelope {
	e, _ := streams.ReadEnvelope(m.rec)
	return e
}

// Kind tells projectors from observers: they differ in where a new group
// starts and in how delivery is made exactly or effectively once.
type Kind uint8

const (
	// KindProjector: a new group reads from the beginning; positions and
	// read model writes are committed together in a state.Store.
	KindProjector Kind = iota + 1
	// KindObserver: a new group starts at the head; delivery is
	// at-least-once through Kafka offsets, made effectively once by a
	// dedupe store keyed by event id.
	KindObserver
)

func (k Kind) String() string {
	if k == KindObserver {
		return "observer"
	}
	return "projector"
}

// Consumer is a named, versioned set of typed event handlers subscribed to
// topics: a projector or an observer. Register handlers with On before
// handing it to NewRunner.
type Consumer struct {
	kind    Kind
	app     string
	name    string
	version int
	topics  []string
	pending []pending // On registrations waiting for a codec to name them
}

// handler is one event type's registration.
type handler struct {
	fn     func(ctx context.Context, codec streams.Codec, r *kgo.Record, md Metadata) error
	name   string             // the event type's name
	policy *deadletter.Policy // nil: the runner's
	// span names the handler (todo.stats.On(TodoItemAdded)): the process
	// span's recq.handler, and an attempt's span once one failed; untraced
	// handlers have neither (Untraced).
	span     string
	untraced bool
}

// pending is a handler registered by Go type; NewRunner asks the codec for
// the type's name.
type pending struct {
	sample any // nil: h.name is set (OnRecord)
	h      handler
}

// HandlerOption configures one handler.
type HandlerOption func(*handler)

// Retry gives the handler its own retry policy instead of the runner's
// (WithRetryPolicy).
func Retry(p deadletter.Policy) HandlerOption {
	return func(h *handler) { h.policy = &p }
}

// Untraced opts the handler out of tracing, for hot paths: its records get
// no process or handler span, though what it publishes still joins the
// flow's trace.
func Untraced() HandlerOption {
	return func(h *handler) { h.untraced = true }
}

// NewProjector defines a projector: it builds a read model from events of
// topics. Its consumer group is <app>.<name>.v<version>; bumping the version
// starts a new group from the beginning of the topics, which is how a
// changed read model is rebuilt (write it under Group-scoped keys, see
// Metadata.Group, so the old and the new model do not mix).
func NewProjector(app, name string, version int, topics ...string) *Consumer {
	return &Consumer{kind: KindProjector, app: app, name: name, version: version, topics: topics}
}

// NewObserver defines an observer: side effects (mail, webhooks, other
// systems) for events of topics. Its consumer group is
// <app>.<name>.v<version>; a new group starts at the head of the topics, so a
// new observer does not replay history.
func NewObserver(app, name string, version int, topics ...string) *Consumer {
	return &Consumer{kind: KindObserver, app: app, name: name, version: version, topics: topics}
}

// Kind says whether c is a projector or an observer.
func (c *Consumer) Kind() Kind { return c.kind }

// Group is the consumer group's name: <app>.<name>.v<version>.
func (c *Consumer) Group() string { return fmt.Sprintf("%s.%s.v%d", c.app, c.name, c.version) }

// Topics are the topics c reads.
func (c *Consumer) Topics() []string { return c.topics }

// Validate reports a definition that cannot run.
func (c *Consumer) Validate() error {
	var errs []error
	for what, v := range map[string]string{"app": c.app, "name": c.name} {
		if v == "" || strings.ContainsAny(v, " :/") {
			errs = append(errs, fmt.Errorf("%s %q: want a non-empty name without spaces, ':' or '/'", what, v))
		}
	}
	if c.version < 1 {
		errs = append(errs, fmt.Errorf("version %d: want 1 or more", c.version))
	}
	if len(c.topics) == 0 {
		errs = append(errs, errors.New("no topics: name the event topics it reads"))
	}
	if len(c.pending) == 0 {
		errs = append(errs, errors.New("no handlers: register them with consumers.On"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("consumers: %s %s: %w", c.kind, c.Group(), err)
	}
	return nil
}

// On registers fn for events of type E. Events of types without a handler
// are skipped from their recq-type header, without decoding. Registering a
// second handler for one type replaces the first.
//
// fn's error does not skip the event: the runner retries it under the
// handler's policy (Retry) or the runner's, and what fails for good goes
// to the dead event queue (see the package documentation). A projector's
// fn writes its read model through the state store's handle in ctx
// (state.Redis, state.OnCommit), so the writes land with the position,
// once.
func On[E any](c *Consumer, fn func(ctx context.Context, evt E, md Metadata) error, opts ...HandlerOption) {
	var sample E
	h := handler{fn: func(ctx context.Context, codec streams.Codec, r *kgo.Record, md Metadata) error {
		var evt E
		if err := codec.Decode(ctx, r.Topic, r.Value, &evt); err != nil {
			return fmt.Errorf("decode %s at %s/%d@%d: %w", md.Type(), r.Topic, r.Partition, r.Offset, err)
		}
		return fn(ctx, evt, md)
	}}
	for _, o := range opts {
		o(&h)
	}
	c.pending = append(c.pending, pending{sample: &sample, h: h})
}

// OnRecord registers fn for records whose recq-type is typeName, handed
// over undecoded: for records that are not a codec's payloads, or for a
// component built on the runner that decodes for itself (sagas). Failures
// are handled as On's.
func OnRecord(c *Consumer, typeName string, fn func(ctx context.Context, r *kgo.Record, md Metadata) error, opts ...HandlerOption) {
	h := handler{name: typeName, fn: func(ctx context.Context, _ streams.Codec, r *kgo.Record, md Metadata) error { return fn(ctx, r, md) }}
	for _, o := range opts {
		o(&h)
	}
	c.pending = append(c.pending, pending{h: h})
}

// bind names c's handlers through codec.
func (c *Consumer) bind(codec streams.TypedCodec) (map[string]*handler, error) {
	hs := make(map[string]*handler, len(c.pending))
	for _, p := range c.pending {
		name := p.h.name
		if p.sample != nil {
			var err error
			if name, err = codec.TypeName(p.sample); err != nil {
				return nil, fmt.Errorf("consumers: %s: handler for %T: %w", c.Group(), p.sample, err)
			}
		}
		if p.h.policy != nil {
			if err := p.h.policy.Validate(); err != nil {
				return nil, fmt.Errorf("consumers: %s: handler for %s: %w", c.Group(), name, err)
			}
		}
		h := p.h
		h.span = c.app + "." + c.name + ".On(" + name[strings.LastIndexByte(name, '.')+1:] + ")"
		h.name = name
		hs[name] = &h
	}
	return hs, nil
}

// metadata builds the Metadata of r.
func metadata(group string, r *kgo.Record) Metadata {
	return Metadata{Group: group, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Time: r.Timestamp, rec: r}
}
