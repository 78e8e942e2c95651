package tracing

import (
	"context"
	"fmt"
	"strconv"

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
// under that context carries the record's trace headers as they are.
type upstreamKey struct{}

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
		if up, ok := parent.Value(upstreamKey{}).(*kgo.Record); ok {
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
	ctx, span := t.tracer.Start(parent, "send "+r.Topic, trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		span.SetAttributes(h.flow(r).attrs(recordAttrs(make([]attribute.KeyValue, 0, 12), r, "send"))...)
	}
	t.prop.Inject(ctx, &carrier{r: r})
	r.Context = &sendCtx{ctx, span}
}

func (producerHooks) OnProduceRecordUnbuffered(r *kgo.Record, err error) {
	if m := curMeters.Load(); m != nil {
		m.sentRecord(r.Topic, err)
	}
	sc, ok := r.Context.(*sendCtx)
	if !ok {
		return
	}
	if err == nil && sc.span.IsRecording() {
		sc.span.SetAttributes(attrPartition.String(strconv.Itoa(int(r.Partition))), attrOffset.Int64(r.Offset))
	}
	End(sc.span, err)
}

// Process starts the CONSUMER span "process <topic>" of a record consumed
// by group: the child of its producer's span, whose context the record's
// headers carry (or, WithLinks, a new root linked to it). End it with End.
// flow says what the record is; it is asked only for a span that records.
// Off, or when the span could not record (the record's trace is not
// sampled), it returns a span that records nothing, and a context under
// which what is produced carries the record's trace as it is.
func Process(ctx context.Context, r *kgo.Record, group string, flow func(*kgo.Record) Flow) (context.Context, trace.Span) {
	t := on()
	if t == nil {
		return ctx, noSpan
	}
	traced, sampled := parentSampled(r)
	switch {
	case !traced && t.sampling.rootNever:
		return ctx, noSpan // no trace to record or to pass on
	case traced && !sampled && t.sampling.followsParent, traced && t.sampling.never:
		return context.WithValue(ctx, upstreamKey{}, r), noSpan
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
	parent := ctx
	if traced {
		remote := t.prop.Extract(ctx, &carrier{r: r})
		if !t.links {
			parent = remote
		} else if sc := trace.SpanContextFromContext(remote); sc.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}), trace.WithNewRoot())
		}
	}
	ctx, span := t.tracer.Start(parent, "process "+r.Topic, opts...)
	if span.IsRecording() {
		kv := recordAttrs(make([]attribute.KeyValue, 0, 14), r, "process")
		kv = append(kv, attrPartition.String(strconv.Itoa(int(r.Partition))), attrOffset.Int64(r.Offset))
		if group != "" {
			kv = append(kv, attrGroup.String(group))
		}
		span.SetAttributes(flow(r).attrs(kv)...)
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
	switch traced, sampled := parentSampled(r); {
	case !traced:
		return ctx
	case t.sampling.never, !sampled && t.sampling.followsParent:
		return context.WithValue(ctx, upstreamKey{}, r) // passed on as it is
	}
	return t.prop.Extract(ctx, &carrier{r: r}) // the parent of what it publishes
}

// Start starts a span of recq's own (a handler, a command's round trip)
// under the one in ctx. Off, or when the span could not record, it returns
// ctx and a span that records nothing.
func Start(ctx context.Context, name string, kind trace.SpanKind, f Flow) (context.Context, trace.Span) {
	t := on()
	if t == nil || ctx.Value(upstreamKey{}) != nil || !t.sampling.recordable(ctx) {
		return ctx, noSpan
	}
	ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(kind))
	if span.IsRecording() {
		span.SetAttributes(f.attrs(nil)...)
	}
	return ctx, span
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
