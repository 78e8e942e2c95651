package tracing

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/getsentry/sentry-go"
	sentryotel "github.com/getsentry/sentry-go/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// flushTimeout bounds the shutdown's wait for Sentry when its context has
// no sooner deadline: a process that exits must not hang on an
// unreachable Sentry.
const flushTimeout = 5 * time.Second

// Outcomes, the "outcome" tag of every event: what became of the failure.
const (
	outcomeRetried  = "retried"  // an attempt failed, and another followed (or will, after a restart)
	outcomeDead     = "dead"     // the record's last attempt failed: its event is in the dead event queue
	outcomeFailed   = "failed"   // a process span failed outside any handler (a command's batch, retried)
	outcomeRejected = "rejected" // a command was refused: an answer, not a fault
)

// tagOf maps the span attributes captures carry to Sentry tags.
var tagOf = map[attribute.Key]string{
	attrGroup:       "group",
	attrDestination: "topic",
	attrPartition:   "partition",
	attrOffset:      "offset",
	attrPayloadType: "payload_type",
	attrAggregateID: "aggregate_id",
	attrCorrelation: "correlation_id",
	attrMessageID:   "message_id",
	attrRejection:   "rejection",
}

// attrRejection is the code aggregates set on the process span of a
// command they refused.
const attrRejection = attribute.Key("recq.rejection")

// maxTagLength is Sentry's limit on a tag's value; longer ones are cut.
const maxTagLength = 200

// sentryOut captures, from End, the failures of recq's spans as Sentry
// events. It knows a handler span's process span through live, so that
// the handler's failure carries the record's place and is captured once,
// when the process span's end says what became of it.
type sentryOut struct {
	client *sentry.Client
	live   sync.Map // trace.SpanID → *process, the process spans not yet ended
}

// process is a live process span and the failed attempt of a handler
// under it whose outcome its end, or the next attempt, decides.
type process struct {
	span     sdktrace.ReadOnlySpan
	mu       sync.Mutex
	held     *failure
	attempts int // failed handler attempts so far
}

type failure struct {
	span    sdktrace.ReadOnlySpan
	err     error
	attempt int
}

// setupSentry initialises sentry-go from SENTRY_DSN, SENTRY_ENVIRONMENT
// and SENTRY_RELEASE (which it reads itself) with its HTTP transport.
// Sampling is OpenTelemetry's: Sentry keeps every span it is given.
func setupSentry(dsn string) (*sentryOut, error) {
	err := sentry.Init(sentry.ClientOptions{
		Dsn:              dsn,
		EnableTracing:    true,
		TracesSampleRate: 1,
		SendDefaultPII:   false, // no user, IP or request: recq's spans carry ids, never payloads
		Integrations: func(is []sentry.Integration) []sentry.Integration {
			return append(is, sentryotel.NewOtelIntegration()) // an event's trace context is its span's
		},
	})
	if err != nil {
		return nil, fmt.Errorf("tracing: Sentry (SENTRY_DSN): %w", err)
	}
	return &sentryOut{client: sentry.CurrentHub().Client()}, nil
}

// processors mirror every span into Sentry performance, and track the
// live process spans for the captures. sentry-go deprecates its span
// processor and propagator in favour of OTLP export, which needs a
// collector or Sentry's OTLP endpoint; these need the DSN only.
func (s *sentryOut) processors() []sdktrace.TracerProviderOption {
	return []sdktrace.TracerProviderOption{
		sdktrace.WithSpanProcessor(&serialized{p: sentryotel.NewSentrySpanProcessor()}),
		sdktrace.WithSpanProcessor(liveProcessor{s}),
	}
}

// serialized runs a span processor's calls one at a time. sentry-go's
// writes a Sentry span's fields as its OpenTelemetry span ends, unlocked,
// while the transaction it belongs to may be finishing, reading them, on
// another goroutine: a trace's spans end on the invoker's, the runner's
// and the consumers' goroutines alike.
type serialized struct {
	mu sync.Mutex
	p  sdktrace.SpanProcessor
}

func (s *serialized) OnStart(ctx context.Context, span sdktrace.ReadWriteSpan) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.OnStart(ctx, span)
}

func (s *serialized) OnEnd(span sdktrace.ReadOnlySpan) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.OnEnd(span)
}

func (s *serialized) Shutdown(ctx context.Context) error   { return s.p.Shutdown(ctx) }
func (s *serialized) ForceFlush(ctx context.Context) error { return s.p.ForceFlush(ctx) }

// sentryPropagator adds sentry-trace and Sentry's baggage to the W3C
// headers, so that a service with Sentry's SDK alone continues the trace.
// It comes first: extracting, traceparent then wins over sentry-trace (it
// keeps tracestate); injecting, the context's W3C baggage, when it has
// members, replaces Sentry's baggage header, and has Sentry's members
// whenever the incoming baggage had them.
func sentryPropagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(sentryotel.NewSentryPropagator(),
		propagation.TraceContext{}, propagation.Baggage{})
}

// flush waits, bounded, for the events not yet sent, then closes the
// client.
func (s *sentryOut) flush(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	sent := s.client.FlushWithContext(ctx)
	if hub := sentry.CurrentHub(); hub.Client() == s.client {
		hub.BindClient(nil)
	}
	s.client.Close()
	if !sent {
		return errors.New("tracing: Sentry: events not sent before the shutdown's deadline")
	}
	return nil
}

// liveProcessor keeps sentryOut.live: every CONSUMER span is a process
// span. OnEnd forgets one that End did not end.
type liveProcessor struct{ s *sentryOut }

func (l liveProcessor) OnStart(_ context.Context, span sdktrace.ReadWriteSpan) {
	if span.SpanKind() == trace.SpanKindConsumer {
		l.s.live.Store(span.SpanContext().SpanID(), &process{span: span})
	}
}

func (l liveProcessor) OnEnd(span sdktrace.ReadOnlySpan) {
	if span.SpanKind() == trace.SpanKindConsumer {
		l.s.live.Delete(span.SpanContext().SpanID())
	}
}

func (liveProcessor) Shutdown(context.Context) error   { return nil }
func (liveProcessor) ForceFlush(context.Context) error { return nil }

// ended is End's capture, before the span ends. A handler span's failure
// (an INTERNAL span under a process span: a consumer's handler, an
// aggregate's Handle) is held until the next attempt or the process span
// ends, which says whether it was retried, made the record dead, or was a
// command's rejection: so each failure is one event, a dead event is one
// event. Other spans' errors (invoke, send) are the caller's: Send and
// Publish return them.
func (s *sentryOut) ended(span trace.Span, err error) {
	ro, ok := span.(sdktrace.ReadOnlySpan)
	if !ok {
		return
	}
	switch ro.SpanKind() {
	case trace.SpanKindInternal:
		v, ok := s.live.Load(ro.Parent().SpanID())
		if !ok {
			return
		}
		p := v.(*process)
		p.mu.Lock()
		prev := p.held
		p.held = nil
		if err != nil {
			p.attempts++
			p.held = &failure{span: ro, err: err, attempt: p.attempts}
		}
		p.mu.Unlock()
		if prev != nil {
			s.capture(p.span, *prev, outcomeRetried)
		}
	case trace.SpanKindConsumer:
		v, ok := s.live.LoadAndDelete(ro.SpanContext().SpanID())
		if !ok {
			return
		}
		p := v.(*process)
		p.mu.Lock()
		held := p.held
		p.mu.Unlock()
		rejected := attrValue(ro, attrRejection) != ""
		if held != nil {
			switch {
			case err != nil && errors.Is(err, held.err):
				s.capture(ro, *held, outcomeDead)
				return
			case rejected:
				s.capture(ro, *held, outcomeRejected)
				return
			}
			s.capture(ro, *held, outcomeRetried)
		}
		switch {
		case err != nil:
			s.capture(ro, failure{span: ro, err: err}, outcomeFailed)
		case rejected && held == nil: // refused before its handler: undecodable
			s.capture(ro, failure{span: ro}, outcomeRejected)
		}
	}
}

// capture sends f, a failure under the process span proc, with the
// record's tags and f's span as its trace context. A rejection is a
// message at info level, grouped by command type and code; the rest are
// exceptions, a retried attempt a warning.
func (s *sentryOut) capture(proc sdktrace.ReadOnlySpan, f failure, outcome string) {
	tags := map[string]string{"outcome": outcome, "component": attrValue(proc, attrGroup)}
	for _, a := range proc.Attributes() {
		if k, ok := tagOf[a.Key]; ok {
			tags[k] = truncate(a.Value.Emit())
		}
	}
	if strings.HasSuffix(tags["topic"], ".commands") { // aggregates.CommandsTopic: the record is a command
		tags["command_id"] = tags["message_id"]
		if tags["aggregate_id"] == "" { // a command's key is its aggregate's id
			tags["aggregate_id"] = truncate(attrValue(proc, attrKey))
		}
	}
	if f.span != proc {
		tags["handler"] = truncate(f.span.Name())
		tags["component"] = component(f.span.Name())
		tags["attempt"] = strconv.Itoa(f.attempt)
	}
	var ev *sentry.Event
	switch {
	case outcome == outcomeRejected:
		msg := "command " + tags["payload_type"] + " rejected: " + tags["rejection"]
		if f.err != nil {
			msg += ": " + f.err.Error()
		}
		ev = s.client.EventFromMessage(msg, sentry.LevelInfo)
		ev.Fingerprint = []string{"recq.rejection", tags["component"], tags["payload_type"], tags["rejection"]}
	default:
		level := sentry.LevelError
		if outcome == outcomeRetried {
			level = sentry.LevelWarning
		}
		ev = s.client.EventFromException(f.err, level)
		if len(ev.Exception) > 0 {
			// Not End's stack (every failure would share it, and group as
			// one issue), but the panic's, if the error is one, or the
			// error's own.
			st := panicStacktrace(f.err)
			if st == nil {
				st = sentry.ExtractStacktrace(f.err)
			}
			ev.Exception[len(ev.Exception)-1].Stacktrace = st
		}
	}
	ev.Transaction = f.span.Name()
	sc := f.span.SpanContext()
	scope := sentry.NewScope()
	scope.SetTags(tags)
	// The trace context, and the envelope's sampling context, are the span's.
	scope.SetPropagationContext(sentry.PropagationContext{TraceID: sentry.TraceID(sc.TraceID()), SpanID: sentry.SpanID(sc.SpanID())})
	hint := &sentry.EventHint{Context: trace.ContextWithSpanContext(context.Background(), sc), OriginalException: f.err}
	s.client.CaptureEvent(ev, hint, scope)
}

// component is the consumer or aggregate a handler span belongs to: its
// name without .On(Type) or .Handle(Type) ("todo.stats", "todo").
func component(span string) string {
	name, _, _ := strings.Cut(span, "(")
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		return name[:i]
	}
	return name
}

func attrValue(s sdktrace.ReadOnlySpan, k attribute.Key) string {
	for _, a := range s.Attributes() {
		if a.Key == k {
			return a.Value.Emit()
		}
	}
	return ""
}

func truncate(v string) string {
	if len(v) > maxTagLength {
		return v[:maxTagLength]
	}
	return v
}

// panicStacktrace is the stack of a recovered panic in err's chain, or
// nil. A panic is an error with a string field Stack holding the
// goroutine's debug.Stack: deadletter.PanicError, found by reflection so
// that this package imports none of recq's.
func panicStacktrace(err error) *sentry.Stacktrace {
	stack := panicStack(err)
	if stack == "" {
		return nil
	}
	var frames []sentry.Frame
	lines := strings.Split(stack, "\n")
	for i := 1; i+1 < len(lines); i++ { // lines[0] is "goroutine N [running]:"
		fn, loc := lines[i], lines[i+1]
		if !strings.HasPrefix(loc, "\t") {
			continue
		}
		i++
		if strings.HasPrefix(fn, "panic(") {
			frames = frames[:0] // what precedes is the recovery: debug.Stack, the deferred recover
			continue
		}
		fn = strings.TrimPrefix(fn, "created by ")
		if j := strings.Index(fn, " in goroutine "); j >= 0 {
			fn = fn[:j]
		} else if j := strings.LastIndexByte(fn, '('); j > 0 {
			fn = fn[:j] // the arguments
		}
		file, _, _ := strings.Cut(strings.TrimSpace(loc), " +0x")
		line := 0
		if j := strings.LastIndexByte(file, ':'); j > 0 {
			line, _ = strconv.Atoi(file[j+1:])
			file = file[:j]
		}
		frames = append(frames, sentry.NewFrame(runtime.Frame{Function: fn, File: file, Line: line}))
	}
	if len(frames) == 0 {
		return nil
	}
	for i, j := 0, len(frames)-1; i < j; i, j = i+1, j-1 {
		frames[i], frames[j] = frames[j], frames[i] // Sentry lists the outermost call first
	}
	return &sentry.Stacktrace{Frames: frames}
}

func panicStack(err error) string {
	for err != nil {
		v := reflect.ValueOf(err)
		if v.Kind() == reflect.Pointer {
			v = v.Elem()
		}
		if v.Kind() == reflect.Struct {
			if f := v.FieldByName("Stack"); f.IsValid() && f.Kind() == reflect.String {
				return f.String()
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if s := panicStack(e); s != "" {
					return s
				}
			}
			return ""
		default:
			return ""
		}
	}
	return ""
}
