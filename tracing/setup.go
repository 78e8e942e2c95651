package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ErrAlreadySetUp is returned by a second Setup before the first one's
// shutdown.
var ErrAlreadySetUp = errors.New("tracing: already set up; call the shutdown Setup returned first")

// tracing is what Setup installed; nil when tracing is off, which is what
// every hot path asks first.
type tracing struct {
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
	links    bool // process spans are roots linked to their producer
	sampling sampling
	sentry   *sentryOut // nil without SENTRY_DSN
}

var cur atomic.Pointer[tracing]

// on returns the installed tracing, or nil.
func on() *tracing { return cur.Load() }

// Enabled reports whether Setup turned tracing on.
func Enabled() bool { return cur.Load() != nil }

type config struct {
	exporter    sdktrace.SpanExporter
	links       bool
	service     string
	metricsAddr string
}

// Option configures Setup.
type Option func(*config)

// WithExporter sends every span to e as it ends, instead of (or without)
// the OTLP exporter of the environment: for tests (the SDK's tracetest
// in-memory exporter) and for exporters recq does not build itself.
func WithExporter(e sdktrace.SpanExporter) Option {
	return func(c *config) { c.exporter = e }
}

// WithLinks makes each process span the root of a trace of its own, linked
// to the span of the record's producer, as the messaging conventions
// describe, instead of its child (the default): a flow then shows as
// several traces, one per hop.
func WithLinks() Option { return func(c *config) { c.links = true } }

// WithServiceName names the service when OTEL_SERVICE_NAME does not.
func WithServiceName(name string) Option { return func(c *config) { c.service = name } }

// Setup turns tracing on from the standard OpenTelemetry environment:
// OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) sends
// spans by OTLP over HTTP, OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
// describe the service, OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
// choose the sampling (by default every trace whose parent is sampled, and
// every new one). It installs the tracer provider and the W3C trace-context
// and baggage propagators as OpenTelemetry's globals too, so the service's
// own spans join recq's.
//
// SENTRY_DSN (with SENTRY_ENVIRONMENT and SENTRY_RELEASE) turns tracing
// on too, even without an OTLP endpoint: Sentry performance receives the
// spans, sentry-trace and baggage headers travel with the W3C ones, and
// End captures failures as Sentry events (see the package documentation).
//
// With none of these variables and no WithExporter, tracing stays off and
// Setup returns a shutdown that does nothing: recq's hot paths then cost
// one atomic load per record. The shutdown flushes the spans not yet
// exported and Sentry's events (waiting 5s at most, or until ctx's
// deadline), and turns tracing off; call it before the process exits.
func Setup(ctx context.Context, opts ...Option) (shutdown func(context.Context) error, err error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	noop := func(context.Context) error { return nil }
	if on() != nil || MetricsEnabled() { // before sentry-go's global client is replaced
		return noop, ErrAlreadySetUp
	}
	var tpOpts []sdktrace.TracerProviderOption
	if c.exporter != nil {
		tpOpts = append(tpOpts, sdktrace.WithSyncer(c.exporter))
	}
	if exp, err := otlpFromEnv(ctx); err != nil {
		return noop, err
	} else if exp != nil {
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
	}
	dsn := os.Getenv("SENTRY_DSN")
	traced := len(tpOpts) > 0 || dsn != ""
	if !traced && c.metricsAddr == "" && os.Getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") == "" {
		return noop, nil // off
	}
	res, err := serviceResource(ctx, c.service)
	if err != nil {
		return noop, err
	}
	stopMetrics, err := setupMetrics(c, res)
	if err != nil {
		return noop, err
	}
	if stopMetrics == nil {
		stopMetrics = noop
	}
	if !traced {
		return stopMetrics, nil
	}
	defer func() {
		if err != nil {
			_ = stopMetrics(ctx)
		}
	}()
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	var snt *sentryOut
	if dsn != "" {
		if snt, err = setupSentry(dsn); err != nil {
			return noop, err
		}
		tpOpts = append(tpOpts, snt.processors()...)
		prop = sentryPropagator()
	}
	tp := sdktrace.NewTracerProvider(append(tpOpts, sdktrace.WithResource(res))...)
	t := &tracing{tracer: tp.Tracer("github.com/recq/recq"), prop: prop, links: c.links, sampling: samplingFromEnv(), sentry: snt}
	if !cur.CompareAndSwap(nil, t) {
		_ = tp.Shutdown(ctx)
		return noop, ErrAlreadySetUp
	}
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(prop)
	return func(ctx context.Context) error {
		cur.CompareAndSwap(t, nil)
		var errs []error
		if err := tp.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("tracing: flush spans: %w", err))
		}
		if snt != nil {
			errs = append(errs, snt.flush(ctx))
		}
		return errors.Join(append(errs, stopMetrics(ctx))...)
	}, nil
}

// otlpFromEnv is the OTLP/HTTP exporter the environment asks for, or nil.
func otlpFromEnv(ctx context.Context) (sdktrace.SpanExporter, error) {
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	if strings.EqualFold(os.Getenv("OTEL_TRACES_EXPORTER"), "none") {
		return nil, nil
	}
	for _, v := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := os.Getenv(v); p != "" && p != "http/protobuf" {
			return nil, fmt.Errorf("tracing: %s=%s: recq exports OTLP over HTTP only; set it to http/protobuf (or unset it) and point the endpoint at the collector's HTTP port (4318)", v, p)
		}
	}
	exp, err := otlptracehttp.New(ctx) // reads the endpoint, headers, timeout and TLS settings itself
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	return exp, nil
}

func serviceResource(ctx context.Context, name string) (*resource.Resource, error) {
	if name == "" {
		name = "unknown_service:" + filepath.Base(os.Args[0]) // the specification's default
	}
	opts := []resource.Option{
		resource.WithTelemetrySDK(),
		resource.WithAttributes(attrServiceName.String(name)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	}
	res, err := resource.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: describe the service: %w", err)
	}
	return res, nil
}
