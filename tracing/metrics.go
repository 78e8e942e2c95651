package tracing

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// meters are the instruments Setup made; nil when metrics are off.
type meters struct {
	sent, consumed, failures, retries, dead, redrives metric.Int64Counter
	process, command                                  metric.Float64Histogram
	sets                                              sync.Map // attribute key → metric.MeasurementOption

	mu   sync.Mutex
	lags map[*lagSource]struct{}
}

var curMeters atomic.Pointer[meters]

// MetricsEnabled reports whether Setup turned metrics on: the components
// ask before they read the clock for a duration.
func MetricsEnabled() bool { return curMeters.Load() != nil }

// WithMetricsAddr serves the metrics for Prometheus at http://addr/metrics
// (recq's binaries: --metrics-addr). Metrics are on with it, with tracing
// on or off.
func WithMetricsAddr(addr string) Option { return func(c *config) { c.metricsAddr = addr } }

// setupMetrics makes the instruments and the Prometheus endpoint; it
// returns a nil shutdown when metrics stay off.
func setupMetrics(c config, res *resource.Resource) (shutdown func(context.Context) error, err error) {
	var opts []sdkmetric.Option
	var srv *http.Server
	var ln net.Listener
	defer func() {
		if err != nil && ln != nil {
			ln.Close()
		}
	}()
	if c.metricsAddr != "" {
		reg := prometheus.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(reg))
		if err != nil {
			return nil, fmt.Errorf("tracing: Prometheus exporter: %w", err)
		}
		if ln, err = net.Listen("tcp", c.metricsAddr); err != nil {
			return nil, fmt.Errorf("tracing: serve metrics on %s: %w (is another process using the port? pick another --metrics-addr)", c.metricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		opts = append(opts, sdkmetric.WithReader(exp))
	}
	if exp, err := otlpMetricsFromEnv(); err != nil {
		return nil, err
	} else if exp != nil {
		// OTEL_METRIC_EXPORT_INTERVAL sets the period (default 60 s).
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	}
	if len(opts) == 0 {
		return nil, nil
	}
	mp := sdkmetric.NewMeterProvider(append(opts, sdkmetric.WithResource(res))...)
	m, err := newMeters(mp.Meter("github.com/recq/recq"))
	if err == nil && !curMeters.CompareAndSwap(nil, m) {
		err = ErrAlreadySetUp
	}
	if err != nil {
		return nil, errors.Join(err, mp.Shutdown(context.Background()))
	}
	otel.SetMeterProvider(mp)
	var served sync.WaitGroup
	if srv != nil {
		served.Go(func() { _ = srv.Serve(ln) })
	}
	return func(ctx context.Context) error {
		curMeters.CompareAndSwap(m, nil)
		var errs []error
		if srv != nil {
			errs = append(errs, srv.Shutdown(ctx))
			served.Wait()
		}
		return errors.Join(append(errs, mp.Shutdown(ctx))...)
	}, nil
}

// otlpMetricsFromEnv is the OTLP/HTTP metrics exporter the environment
// asks for (the endpoint tracing uses, or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT),
// or nil.
func otlpMetricsFromEnv() (sdkmetric.Exporter, error) {
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") == "" ||
		strings.EqualFold(os.Getenv("OTEL_METRICS_EXPORTER"), "none") {
		return nil, nil
	}
	exp, err := otlpmetrichttp.New(context.Background()) // reads the endpoint, headers and TLS settings itself
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP metrics exporter: %w", err)
	}
	return exp, nil
}

func newMeters(mt metric.Meter) (*meters, error) {
	m := &meters{lags: map[*lagSource]struct{}{}}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := mt.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	seconds := func(name, desc string) metric.Float64Histogram {
		h, err := mt.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
		errs = append(errs, err)
		return h
	}
	m.sent = counter("messaging.client.sent.messages", "{message}", "Records produced, acknowledged or failed (error.type).")
	m.consumed = counter("messaging.client.consumed.messages", "{message}", "Records handled by a consumer group.")
	m.process = seconds("messaging.process.duration", "Time to handle a record: routing, attempts and dead-lettering.")
	m.failures = counter("recq.handler.failures", "{failure}", "Failed handler attempts, by error kind.")
	m.retries = counter("recq.handler.retries", "{retry}", "Failed attempts that are tried again.")
	m.dead = counter("recq.dead_events", "{event}", "Events written to a dead event queue, by reason.")
	m.redrives = counter("recq.redrives", "{event}", "Redriven events handled.")
	m.command = seconds("recq.command.duration", "A command's round trip, from Send to its reply, by outcome.")
	lag, err := mt.Int64ObservableGauge("recq.consumer.lag", metric.WithUnit("{message}"),
		metric.WithDescription("Records of an owned partition not yet handled."))
	errs = append(errs, err)
	lagAge, err := mt.Float64ObservableGauge("recq.consumer.lag.age", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest record of an owned partition not yet handled; 0 when caught up."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("tracing: metrics: %w", err)
	}
	_, err = mt.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		m.observeLag(ctx, func(group, topic string, partition int32, records int64, age time.Duration) {
			set := metric.WithAttributes(attrSystem.String("kafka"), attrGroup.String(group), attrDestination.String(topic),
				attrPartition.String(fmt.Sprint(partition)))
			o.ObserveInt64(lag, records, set)
			if age >= 0 {
				o.ObserveFloat64(lagAge, age.Seconds(), set)
			}
		})
		return nil
	}, lag, lagAge)
	if err != nil {
		return nil, fmt.Errorf("tracing: metrics: %w", err)
	}
	return m, nil
}

// set is the cached attribute set for key, made by attrs the first time.
func (m *meters) set(key string, attrs func() []attribute.KeyValue) metric.MeasurementOption {
	if s, ok := m.sets.Load(key); ok {
		return s.(metric.MeasurementOption)
	}
	s, _ := m.sets.LoadOrStore(key, metric.WithAttributeSet(attribute.NewSet(attrs()...)))
	return s.(metric.MeasurementOption)
}

func errType(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprintf("%T", err)
}

// sentRecord counts a produced record, acknowledged or failed.
func (m *meters) sentRecord(topic string, err error) {
	et := errType(err)
	m.sent.Add(context.Background(), 1, m.set("s\x00"+topic+"\x00"+et, func() []attribute.KeyValue {
		kv := []attribute.KeyValue{attrSystem.String("kafka"), attrOpName.String("send"), attrDestination.String(topic)}
		if et != "" {
			kv = append(kv, attrErrorType.String(et))
		}
		return kv
	}))
}

func (m *meters) group(prefix, group, topic, extra string, key attribute.Key) metric.MeasurementOption {
	return m.set(prefix+"\x00"+group+"\x00"+topic+"\x00"+extra, func() []attribute.KeyValue {
		kv := []attribute.KeyValue{attrSystem.String("kafka"), attrGroup.String(group), attrDestination.String(topic)}
		if extra != "" {
			kv = append(kv, key.String(extra))
		}
		return kv
	})
}

// Consumed counts a record group handled from topic, and how long it took
// since start; err is what made it dead, if it is.
func Consumed(group, topic string, start time.Time, err error) {
	m := curMeters.Load()
	if m == nil {
		return
	}
	ctx := context.Background()
	m.consumed.Add(ctx, 1, m.group("c", group, topic, "", ""))
	m.process.Record(ctx, time.Since(start).Seconds(), m.group("p", group, topic, errType(err), attrErrorType))
}

// Failed counts a failed handler attempt of kind (deadletter's
// classification), and whether it is tried again.
func Failed(group, topic, kind string, retried bool) {
	m := curMeters.Load()
	if m == nil {
		return
	}
	ctx := context.Background()
	set := m.group("f", group, topic, kind, attrKind)
	m.failures.Add(ctx, 1, set)
	if retried {
		m.retries.Add(ctx, 1, set)
	}
}

// Dead counts an event written to group's dead event queue, for reason.
func Dead(group, topic, reason string) {
	if m := curMeters.Load(); m != nil {
		m.dead.Add(context.Background(), 1, m.group("d", group, topic, reason, attrReason))
	}
}

// Redriven counts a redriven event group handled.
func Redriven(group, topic string) {
	if m := curMeters.Load(); m != nil {
		m.redrives.Add(context.Background(), 1, m.group("r", group, topic, "", ""))
	}
}

// CommandDone records a command's round trip to aggregate since start,
// with its outcome: ok, rejected or failed.
func CommandDone(aggregate string, start time.Time, outcome string) {
	m := curMeters.Load()
	if m == nil {
		return
	}
	m.command.Record(context.Background(), time.Since(start).Seconds(), m.set("k\x00"+aggregate+"\x00"+outcome, func() []attribute.KeyValue {
		return []attribute.KeyValue{attrAggregate.String(aggregate), attrOutcome.String(outcome)}
	}))
}

const (
	attrKind      = attribute.Key("recq.error.kind")
	attrReason    = attribute.Key("recq.dead.reason")
	attrAggregate = attribute.Key("recq.aggregate")
	attrOutcome   = attribute.Key("recq.outcome")
)
