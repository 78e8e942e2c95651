package tracing

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Attribute keys: the messaging conventions' (semconv 1.27 and later) and
// recq's flow ids.
const (
	attrServiceName  = attribute.Key("service.name")
	attrSystem       = attribute.Key("messaging.system")
	attrOpType       = attribute.Key("messaging.operation.type")
	attrOpName       = attribute.Key("messaging.operation.name")
	attrDestination  = attribute.Key("messaging.destination.name")
	attrPartition    = attribute.Key("messaging.destination.partition.id")
	attrOffset       = attribute.Key("messaging.kafka.offset")
	attrGroup        = attribute.Key("messaging.consumer.group.name")
	attrKey          = attribute.Key("messaging.kafka.message.key")
	attrMessageID    = attribute.Key("messaging.message.id")
	attrErrorType    = attribute.Key("error.type")
	attrCorrelation  = attribute.Key("recq.correlation_id")
	attrCausation    = attribute.Key("recq.causation_id")
	attrPayloadType  = attribute.Key("recq.type")
	attrAggregateID  = attribute.Key("recq.aggregate_id")
	attrHandler      = attribute.Key("recq.handler")
	maxKeyAttrLength = 256 // a key is an id; longer ones are cut, not dropped
)

// Flow is a record's place in its flow, in recq's envelope terms: what
// spans carry besides the conventions' attributes. This package reads no
// recq header itself; streams and the components say what they hold.
type Flow struct {
	MessageID     string // recq-id
	CorrelationID string // recq-correlation-id
	CausationID   string // recq-causation-id
	Type          string // recq-type, the payload's name
	AggregateID   string // recq-aggregate-id
}

func (f Flow) attrs(kv []attribute.KeyValue) []attribute.KeyValue {
	for _, a := range [...]struct {
		k attribute.Key
		v string
	}{{attrMessageID, f.MessageID}, {attrCorrelation, f.CorrelationID}, {attrCausation, f.CausationID}, {attrPayloadType, f.Type}, {attrAggregateID, f.AggregateID}} {
		if a.v != "" {
			kv = append(kv, a.k.String(a.v))
		}
	}
	return kv
}

// kvs holds the attribute slices handed to SetAttributes, which copies
// them into the span: one reused slice instead of one allocated per span.
var kvs = sync.Pool{New: func() any { return new([]attribute.KeyValue) }}

func getAttrs() *[]attribute.KeyValue { return kvs.Get().(*[]attribute.KeyValue) }

// setAttrs sets *kv on span in one call (each call after the first makes
// the SDK grow and copy the span's slice) and returns kv to the pool,
// cleared so that it holds no string.
func setAttrs(span trace.Span, kv *[]attribute.KeyValue) {
	span.SetAttributes(*kv...)
	clear(*kv)
	*kv = (*kv)[:0]
	kvs.Put(kv)
}

// The start options of recq's spans, made once: each WithSpanKind, and the
// slice a variadic call makes, is an allocation per span.
var (
	producerOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)}
	consumerOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
)

// noSpan is what Process and Start return when tracing is off: it records
// nothing, and ending it ends nothing (not the caller's span).
var noSpan = trace.SpanFromContext(context.Background())

// carrier reads and writes a record's headers for the propagators. The
// first Set copies them: records may share a headers slice, whose spare
// capacity an append in place would write into; later Sets write into the
// copy.
type carrier struct {
	r     *kgo.Record
	owned bool
}

func (c *carrier) Get(key string) string { return header(c.r, key) }

func (c *carrier) Set(key, value string) {
	hs := c.r.Headers
	if !c.owned {
		hs = make([]kgo.RecordHeader, 0, len(c.r.Headers)+3)
		hs, c.owned = append(hs, c.r.Headers...), true
	}
	for i := range hs {
		if hs[i].Key == key {
			hs = append(hs[:i], hs[i+1:]...)
			break
		}
	}
	c.r.Headers = append(hs, kgo.RecordHeader{Key: key, Value: []byte(value)})
}

func (c *carrier) Keys() []string {
	ks := make([]string, len(c.r.Headers))
	for i, h := range c.r.Headers {
		ks[i] = h.Key
	}
	return ks
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// traceHeaders are the headers a record's trace travels in.
var traceHeaders = [...]string{"traceparent", "tracestate", "baggage", "sentry-trace"}

// parentSampled reads the sampled flag of r's traceparent without parsing
// the rest: whether r has a trace, and whether its producer recorded it.
func parentSampled(r *kgo.Record) (traced, sampled bool) {
	for _, h := range r.Headers {
		if h.Key == "traceparent" {
			v := h.Value // 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>
			if len(v) < 55 {
				return false, false
			}
			return true, hexLowBit(v[54]) // the flags' last hex digit holds the sampled bit
		}
	}
	return false, false
}

func hexLowBit(c byte) bool {
	switch {
	case c >= 'a':
		c -= 'a' // 10 is even: the low bit is that of c - 'a'
	case c >= 'A':
		c -= 'A'
	}
	return c&1 == 1 // '0' is even too
}

// upstreamKey holds, in a context, the record being handled when its
// process span was not made (its trace is not sampled): what is produced
// under that context carries the record's trace headers as they are. Its
// value is the record, or the *Upstream a consumer loop keeps for a batch.
type upstreamKey struct{}

// Upstream is a consumer loop's record in hand, for a context it keeps for
// a whole batch (ContextWithUpstream): Process and Continue point it at
// each record in turn instead of making a context per record, which is
// what a record not sampled would otherwise cost. Such a context is valid
// only while the record's handler runs (not in goroutines that outlive
// it), as streams.ContextWithMessageSource's.
type Upstream struct{ rec *kgo.Record }

// ContextWithUpstream returns ctx holding u, for Process and Continue.
func ContextWithUpstream(ctx context.Context, u *Upstream) context.Context {
	return context.WithValue(ctx, upstreamKey{}, u)
}

// upstream is the record whose trace what is produced under ctx passes on
// as it is, or nil.
func upstream(ctx context.Context) *kgo.Record {
	switch v := ctx.Value(upstreamKey{}).(type) {
	case *kgo.Record:
		return v
	case *Upstream:
		return v.rec
	}
	return nil
}

// loopUpstream is ctx's Upstream, if it has one, pointed at no record
// until passOn points it at the one in hand.
func loopUpstream(ctx context.Context) *Upstream {
	u, _ := ctx.Value(upstreamKey{}).(*Upstream)
	if u != nil {
		u.rec = nil
	}
	return u
}

// passOn returns ctx under which what is produced carries r's trace as it
// is: ctx itself, with u pointed at r, when the loop keeps an Upstream.
func passOn(ctx context.Context, u *Upstream, r *kgo.Record) context.Context {
	if u != nil {
		u.rec = r
		return ctx
	}
	return context.WithValue(ctx, upstreamKey{}, r)
}

// sendCtx is a record's context once it has a send span: the one the hooks
// made, which OnProduceRecordUnbuffered ends (never the caller's).
type sendCtx struct {
	context.Context
	span trace.Span
}

// recordAttrs are the conventions' attributes of r once it has a place.
func recordAttrs(kv []attribute.KeyValue, r *kgo.Record, op string) []attribute.KeyValue {
	kv = append(kv, attrSystem.String("kafka"), attrOpType.String(op), attrOpName.String(op), attrDestination.String(r.Topic))
	if len(r.Key) > 0 {
		k := r.Key
		if len(k) > maxKeyAttrLength {
			k = k[:maxKeyAttrLength]
		}
		kv = append(kv, attrKey.String(string(k)))
	}
	return kv
}

// ProducerHooks returns the franz-go hooks that trace every record a
// client produces: a PRODUCER span "send <topic>", child of the span in the
// record's context (the one given to Produce) or, when that has none, of
// the trace the record's headers already carry (a redriven event continues
// its flow), whose context replaces those headers. The span ends when the
// broker acknowledges or refuses the record, with its partition and
// offset. flow says what the record is, in recq's terms; it is asked only
// for a span that records. A record produced while handling one whose
// trace is not sampled gets no span and carries that record's trace as it
// is. Off, the hooks return at once.
func ProducerHooks(flow func(*kgo.Record) Flow) kgo.Opt {
	return kgo.WithHooks(producerHooks{flow})
}

type producerHooks struct{ flow func(*kgo.Record) Flow }

func (h producerHooks) OnProduceRecordBuffered(r *kgo.Record) {
	t := on()
	if t == nil {
		return
	}
	parent := r.Context
	if parent == nil {
		parent = context.Background()
	}
	if !trace.SpanContextFromContext(parent).IsValid() {
		if up := upstream(parent); up != nil {
			c := &carrier{r: r}
			for _, k := range traceHeaders {
				if v := header(up, k); v != "" {
					c.Set(k, v)
				}
			}
			return
		}
		traced, sampled := parentSampled(r)
		switch {
		case !traced && t.sampling.rootNever, traced && !sampled && t.sampling.followsParent, t.sampling.never:
			return // nothing would record: the record keeps what it carries
		case traced:
			parent = t.prop.Extract(parent, &carrier{r: r})
		}
	} else if !t.sampling.recordable(parent) {
		t.prop.Inject(parent, &carrier{r: r})
		return
	}
	// The attributes are set at the acknowledgement, all in one call, once
	// the partition and offset are known: this hook runs serially in
	// Produce's caller, and a second SetAttributes regrows the span's.
	ctx, span := t.tracer.Start(parent, "send "+r.Topic, producerOpts...)
	t.prop.Inject(ctx, &carrier{r: r})
	r.Context = &sendCtx{ctx, span}
}

func (h producerHooks) OnProduceRecordUnbuffered(r *kgo.Record, err error) {
	if m := curMeters.Load(); m != nil {
		m.sentRecord(r.Topic, err)
	}
	sc, ok := r.Context.(*sendCtx)
	if !ok {
		return
	}
	if sc.span.IsRecording() {
		kv := getAttrs()
		*kv = h.flow(r).attrs(recordAttrs(*kv, r, "send"))
		if err == nil {
			*kv = append(*kv, attrPartition.String(strconv.Itoa(int(r.Partition))), attrOffset.Int64(r.Offset))
		}
		setAttrs(sc.span, kv)
	}
	End(sc.span, err)
}

// Process starts the CONSUMER span "process <topic>" of a record consumed
// by group: the child of its producer's span, whose context the record's
// headers carry (or, WithLinks, a new root linked to it). End it with End.
// handler, if not empty, names the handler the record is for
// (recq.handler): its attempts are spans of their own only when they fail
// or follow a failure (Attempted, Start). flow says what the record is; it
// is asked only for a span that records.
// Off, or when the span could not record (the record's trace is not
// sampled), it returns a span that records nothing, and a context under
// which what is produced carries the record's trace as it is (ctx itself
// when it holds an Upstream).
func Process(ctx context.Context, r *kgo.Record, group, handler string, flow func(*kgo.Record) Flow) (context.Context, trace.Span) {
	t := on()
	if t == nil {
		return ctx, noSpan
	}
	u := loopUpstream(ctx)
	if u != nil && t.sampling.never {
		u.rec = r // nothing records: what r carries, if anything, is passed on, unread
		return ctx, noSpan
	}
	traced, sampled := parentSampled(r)
	switch {
	case !traced && t.sampling.rootNever:
		return ctx, noSpan // no trace to record or to pass on
	case traced && !sampled && t.sampling.followsParent, traced && t.sampling.never:
		return passOn(ctx, u, r), noSpan
	}
	opts := consumerOpts
	parent := ctx
	if traced {
		remote := t.prop.Extract(ctx, &carrier{r: r})
		if !t.links {
			parent = remote
		} else if sc := trace.SpanContextFromContext(remote); sc.IsValid() {
			opts = append(opts[:len(opts):len(opts)], trace.WithLinks(trace.Link{SpanContext: sc}), trace.WithNewRoot())
		}
	}
	ctx, span := t.tracer.Start(parent, "process "+r.Topic, opts...)
	if span.IsRecording() {
		kv := getAttrs()
		*kv = recordAttrs(*kv, r, "process")
		*kv = append(*kv, attrPartition.String(strconv.Itoa(int(r.Partition))), attrOffset.Int64(r.Offset))
		if group != "" {
			*kv = append(*kv, attrGroup.String(group))
		}
		if handler != "" {
			*kv = append(*kv, attrHandler.String(handler))
		}
		*kv = flow(r).attrs(*kv)
		setAttrs(span, kv)
	}
	return ctx, span
}

// Continue returns ctx under which what is produced carries r's trace,
// without a span of its own: for a handler that opted out of tracing, so
// that what it publishes still joins the flow's trace.
func Continue(ctx context.Context, r *kgo.Record) context.Context {
	t := on()
	if t == nil {
		return ctx
	}
	u := loopUpstream(ctx)
	switch traced, sampled := parentSampled(r); {
	case !traced:
		return ctx
	case t.sampling.never, !sampled && t.sampling.followsParent:
		return passOn(ctx, u, r) // passed on as it is
	}
	return t.prop.Extract(ctx, &carrier{r: r}) // the parent of what it publishes
}

// Start starts a span of recq's own (a handler, a command's round trip)
// under the one in ctx. Off, or when the span could not record, it returns
// ctx and a span that records nothing.
func Start(ctx context.Context, name string, kind trace.SpanKind, f Flow) (context.Context, trace.Span) {
	t := on()
	if t == nil || upstream(ctx) != nil || !t.sampling.recordable(ctx) {
		return ctx, noSpan
	}
	ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(kind))
	if span.IsRecording() {
		kv := getAttrs()
		*kv = f.attrs(*kv)
		setAttrs(span, kv)
	}
	return ctx, span
}

// Attempted records a handler's attempt that failed with err, having run
// since start under ctx's span without a span of its own (a first
// attempt: most succeed, and one span per record is half the cost of
// two): an INTERNAL span named name, from start to now, with err. What the
// attempt produced stays the child of ctx's span.
func Attempted(ctx context.Context, name string, start time.Time, f Flow, err error) {
	t := on()
	if t == nil || upstream(ctx) != nil || !t.sampling.recordable(ctx) {
		return
	}
	_, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindInternal), trace.WithTimestamp(start))
	if span.IsRecording() {
		kv := getAttrs()
		*kv = f.attrs(*kv)
		setAttrs(span, kv)
	}
	End(span, err)
}

// End ends span, recording err, if not nil, as the span's error: its
// status, an exception event and error.type (the error's Go type). With
// Sentry, it is also where failures become Sentry events (sentry.go).
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(attrErrorType.String(fmt.Sprintf("%T", err)))
	}
	if t := on(); t != nil && t.sentry != nil {
		t.sentry.ended(span, err)
	}
	span.End()
}
