package tracing_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/recq/recq/consumers"
	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
	"github.com/recq/recq/tracing"
)

// BenchDeposited is the benchmarks' event: small, like most.
type BenchDeposited struct {
	Account string
	Amount  int64
}

const (
	benchRecords    = 200_000 // per publisher run and in the projector's topic
	benchPartitions = 8
	benchAccounts   = 1_000
	benchProjTopic  = "tracebench.events"
)

// discard is a span exporter that drops what it is given, counting it: the
// SDK still builds, samples, records and ends every span.
type discard struct{ spans atomic.Int64 }

func (d *discard) ExportSpans(_ context.Context, ss []sdktrace.ReadOnlySpan) error {
	d.spans.Add(int64(len(ss)))
	return nil
}

func (*discard) Shutdown(context.Context) error { return nil }

// benchVariant is one way of running the same work.
type benchVariant struct {
	name string
	// raw: plain franz-go clients, no recq code at all.
	raw bool
	// env is set for Setup (OTEL_TRACES_SAMPLER and the like); nil: no
	// Setup, tracing off.
	env map[string]string
	// otlp: spans go by OTLP/HTTP through the SDK's batch span processor
	// (what Setup builds from OTEL_EXPORTER_OTLP_ENDPOINT) to a 127.0.0.1
	// server that discards them, instead of WithExporter's syncer into
	// discard.
	otlp bool
	// spans is how many spans a run makes per record: publisher, projector.
	pubSpans, projSpans int64
}

var benchVariants = []benchVariant{
	{name: "raw", raw: true},
	{name: "off"},
	{name: "on-0", env: map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}},
	{name: "on-1", env: map[string]string{"OTEL_TRACES_SAMPLER": "always_on"}, pubSpans: 1, projSpans: 1},
	{name: "on-1-otlp", env: map[string]string{"OTEL_TRACES_SAMPLER": "always_on",
		// A queue that holds a whole run: no span dropped, so all are
		// exported (the default, 2,048, drops under a backlog).
		"OTEL_BSP_MAX_QUEUE_SIZE": strconv.Itoa(2 * benchRecords)}, otlp: true},
}

// benchOTELVars are the variables Setup reads (SENTRY_DSN too); the benchmark clears them
// and sets its own per variant.
var benchOTELVars = []string{"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_EXPORTER_OTLP_ENDPOINT",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL",
	"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "SENTRY_DSN"}

var benchRound atomic.Int64

// BenchmarkTracingOverhead measures what tracing costs the hot paths, in
// one process against one broker: each iteration runs every variant in
// turn (the order rotating from one iteration to the next, so the
// machine's noise and the heap each leaves fall on all alike), and each
// variant runs
//
//   - pub: 200,000 small records (Avro, recq envelope) published by one
//     streams.Publisher.Publish call to a new topic of 8 partitions (raw:
//     kgo.Client.ProduceSync of the same records, no envelope stamping,
//     no hooks);
//   - proj: a consumers projector (memory store, dead event queue on, a
//     new group) from the start of a topic pre-filled with 200,000 such
//     records, each carrying a sampled traceparent as a traced upstream
//     writes it, until caught up (raw: a franz-go group consumer counting
//     the records);
//   - projr: the same projector on state.NewRedis (a redis-server on
//     loopback), one HINCRBY per event, as a read model would (no raw
//     run): what a projector with a real store pays.
//
// The variants: raw franz-go; recq with tracing off (no Setup); on with
// sampling 0 (always_off) and 1 (always_on), spans into an exporter that
// discards them through WithExporter's syncer; and on with sampling 1
// through the batch span processor and the OTLP/HTTP exporter, to a
// 127.0.0.1 server that discards the requests (what a service with
// OTEL_EXPORTER_OTLP_ENDPOINT runs). Each reports events/s, the CPU this
// process (broker included) used per event, and its cost against off.
// Run it with -benchtime 1x and -count (the metrics are the last round's;
// -v logs every round with the load average); TRACEBENCH_VARIANTS=off,on-0
// runs only those, for a profile of each.
func BenchmarkTracingOverhead(b *testing.B) {
	saved := map[string]*string{}
	for _, k := range benchOTELVars {
		if v, ok := os.LookupEnv(k); ok {
			saved[k] = &v
		} else {
			saved[k] = nil
		}
		_ = os.Unsetenv(k)
	}
	b.Cleanup(func() {
		for k, v := range saved {
			if v == nil {
				_ = os.Unsetenv(k)
			} else {
				_ = os.Setenv(k, *v)
			}
		}
	})
	variants := benchVariants
	if only := os.Getenv("TRACEBENCH_VARIANTS"); only != "" {
		// For profiles: TRACEBENCH_VARIANTS=off and =on-0, each in a
		// process of its own, then go tool pprof -diff_base.
		variants = nil
		for _, v := range benchVariants {
			if slices.Contains(strings.Split(only, ","), v.name) {
				variants = append(variants, v)
			}
		}
	}
	e := newTraceBench(b)
	b.ResetTimer()
	for range b.N {
		n := benchRound.Add(1)
		res := map[string][3]benchMeasured{}
		for i := range variants {
			v := variants[(int(n)+i)%len(variants)]
			res[v.name] = e.runVariant(b, v, n)
		}
		var line []string
		for _, v := range variants {
			for j, what := range []string{"pub", "proj", "projr"} {
				m := res[v.name][j]
				if m.wall == 0 {
					continue // raw has no projr
				}
				b.ReportMetric(m.rate(), what+"-"+v.name+"-events/s")
				b.ReportMetric(m.cpuPerEvent(), what+"-"+v.name+"-cpu-µs/event")
				if off, ok := res["off"]; ok && !v.raw && v.name != "off" {
					b.ReportMetric(100*(1-m.rate()/off[j].rate()), what+"-"+v.name+"-cost-%")
				}
			}
			line = append(line, fmt.Sprintf("%s pub %.0f/s (%.2f µs) proj %.0f/s (%.2f µs) projr %.0f/s (%.2f µs)", v.name,
				res[v.name][0].rate(), res[v.name][0].cpuPerEvent(), res[v.name][1].rate(), res[v.name][1].cpuPerEvent(),
				res[v.name][2].rate(), res[v.name][2].cpuPerEvent()))
		}
		b.Logf("round %d (load average %s): %s", n, benchLoadAvg(), strings.Join(line, "; "))
	}
}

// traceBench is the broker, registry and pre-filled topic of one
// benchmark run.
type traceBench struct {
	addr  string
	serde *schema.Serde
	value []byte // the encoded BenchDeposited every record carries
	typ   string
	otlp  *httptest.Server
	rdb   *redis.Client
	// otlpBytes is what the OTLP server was sent.
	otlpBytes, otlpRequests atomic.Int64
}

func newTraceBench(b *testing.B) *traceBench {
	b.Helper()
	e := &traceBench{addr: testenv.Kafka(b), serde: testenv.Serde(b)}
	e.rdb = testenv.RedisClient(b, testenv.Redis(b).Addr)
	ctx := context.Background()
	var err error
	e.value, e.typ, err = e.serde.Encode(ctx, benchProjTopic, BenchDeposited{Account: "acct-1", Amount: 42})
	benchMust(b, err)
	e.otlp = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		e.otlpBytes.Add(n)
		e.otlpRequests.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(e.otlp.Close)

	// The projector's topic, with tracing off: each record carries the
	// envelope and a traceparent of a sampled upstream span.
	testenv.Topic(b, e.addr, benchProjTopic, benchPartitions)
	pub, err := streams.NewPublisher([]string{e.addr}, streams.WithCodec(e.serde))
	benchMust(b, err)
	defer func() { _ = pub.Close(ctx) }()
	recs := e.records(benchProjTopic)
	var id [24]byte
	for _, r := range recs {
		_, _ = rand.Read(id[:])
		tp := "00-" + hex.EncodeToString(id[:16]) + "-" + hex.EncodeToString(id[16:]) + "-01"
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: streams.HeaderTraceParent, Value: []byte(tp)})
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	benchMust(b, pub.Publish(pctx, recs...))
	return e
}

// records are benchRecords new records for topic, with the envelope's
// type and aggregate id (the publisher stamps the rest).
func (e *traceBench) records(topic string) []*kgo.Record {
	recs := make([]*kgo.Record, benchRecords)
	for i := range recs {
		acct := "acct-" + strconv.Itoa(i%benchAccounts)
		r := &kgo.Record{Topic: topic, Key: []byte(acct), Value: e.value}
		streams.Envelope{Type: e.typ, AggregateID: acct}.Write(r)
		recs[i] = r
	}
	return recs
}

// runVariant sets tracing up as v says, runs the publisher and then the
// projector, and shuts tracing down.
func (e *traceBench) runVariant(b *testing.B, v benchVariant, n int64) (res [3]benchMeasured) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var exp discard
	shutdown := func(context.Context) error { return nil }
	if v.env != nil {
		for k, val := range v.env {
			benchMust(b, os.Setenv(k, val))
		}
		var opts []tracing.Option
		if v.otlp {
			benchMust(b, os.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", e.otlp.URL))
		} else {
			opts = append(opts, tracing.WithExporter(&exp))
		}
		var err error
		shutdown, err = tracing.Setup(ctx, append(opts, tracing.WithServiceName("tracebench"))...)
		benchMust(b, err)
		if !tracing.Enabled() {
			b.Fatalf("%s: tracing is off after Setup", v.name)
		}
		for _, k := range benchOTELVars {
			_ = os.Unsetenv(k)
		}
	}
	// With OTLP the spans are exported from the batch span processor's
	// goroutine, partly after the run: its shutdown (the flush) counts.
	flush := func() {
		benchMust(b, shutdown(ctx))
		shutdown = func(context.Context) error { return nil }
	}
	defer flush()
	// Samples of the goroutines started in a part are labelled
	// run=<variant>/<pub|proj|projr> (go tool pprof -tagfocus run=on-1/pub);
	// the broker's are not: TRACEBENCH_VARIANTS gives whole profiles.
	reqs := e.otlpRequests.Load()
	pprof.Do(ctx, pprof.Labels("run", v.name+"/pub"), func(ctx context.Context) {
		res[0] = e.publish(ctx, b, v, n, flushIf(v.otlp, flush))
	})
	if got, want := exp.spans.Load(), v.pubSpans*(benchRecords+1); !v.otlp && got != want { // +1: the warm-up record
		b.Fatalf("%s: publisher: %d spans exported, want %d", v.name, got, want)
	}
	setupAgain := func() {
		benchMust(b, os.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", e.otlp.URL))
		for k, val := range v.env {
			benchMust(b, os.Setenv(k, val))
		}
		var err error
		shutdown, err = tracing.Setup(ctx, tracing.WithServiceName("tracebench"))
		benchMust(b, err)
		for _, k := range benchOTELVars {
			_ = os.Unsetenv(k)
		}
	}
	if v.otlp { // set up again: the publisher's run flushed it
		setupAgain()
	}
	for j, store := range []bool{false, true} {
		if store && v.raw {
			break
		}
		if v.otlp && store { // set up again: the memory projector's run flushed it
			setupAgain()
		}
		exp.spans.Store(0)
		part := [...]string{"proj", "projr"}[j]
		pprof.Do(ctx, pprof.Labels("run", v.name+"/"+part), func(ctx context.Context) {
			res[1+j] = e.project(ctx, b, v, n, store, flushIf(v.otlp, flush))
		})
		if got, want := exp.spans.Load(), v.projSpans*benchRecords; !v.otlp && got != want {
			b.Fatalf("%s: %s: %d spans exported, want %d", v.name, part, got, want)
		}
	}
	if v.otlp && e.otlpRequests.Load() == reqs {
		b.Fatalf("%s: no span exported by OTLP", v.name)
	}
	return res
}

func flushIf(on bool, flush func()) func() {
	if on {
		return flush
	}
	return func() {}
}

// publish times publishing benchRecords to a new topic; end runs in the
// timed part, after the last acknowledgement.
func (e *traceBench) publish(ctx context.Context, b *testing.B, v benchVariant, n int64, end func()) benchMeasured {
	topic := "tracebench.pub." + strconv.FormatInt(n, 10) + "." + v.name
	testenv.Topic(b, e.addr, topic, benchPartitions)
	admin := streams.NewAdmin(testenv.Client(b, e.addr))
	defer func() { benchMust(b, admin.DeleteTopic(context.Background(), topic)) }()
	recs := e.records(topic)
	var produce func(context.Context, ...*kgo.Record) error
	if v.raw {
		cl, err := kgo.NewClient(kgo.SeedBrokers(e.addr), kgo.ProducerLinger(0))
		benchMust(b, err)
		defer cl.Close()
		produce = func(ctx context.Context, recs ...*kgo.Record) error { return cl.ProduceSync(ctx, recs...).FirstErr() }
	} else {
		pub, err := streams.NewPublisher([]string{e.addr}, streams.WithCodec(e.serde))
		benchMust(b, err)
		defer func() { _ = pub.Close(context.Background()) }()
		produce = pub.Publish
	}
	// One record first, untimed: the connections, metadata and producer id.
	warm := &kgo.Record{Topic: topic, Value: e.value}
	streams.Envelope{Type: e.typ}.Write(warm)
	benchMust(b, produce(ctx, warm))
	return benchMeasure(b, func() {
		benchMust(b, produce(ctx, recs...))
		end()
	})
}

// project times a projector (or raw franz-go) from the start of the
// pre-filled topic until it has handled every record; end runs in the
// timed part once it has.
func (e *traceBench) project(ctx context.Context, b *testing.B, v benchVariant, n int64, store bool, end func()) benchMeasured {
	group := "tracebench-" + strconv.FormatInt(n, 10) + "-" + v.name
	if store {
		group += "-redis"
	}
	if v.raw {
		cl, err := kgo.NewClient(kgo.SeedBrokers(e.addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(benchProjTopic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		benchMust(b, err)
		defer cl.Close()
		return benchMeasure(b, func() {
			seen := 0
			for seen < benchRecords {
				fs := cl.PollFetches(ctx)
				benchMust(b, fs.Err())
				fs.EachRecord(func(*kgo.Record) { seen++ })
			}
			end()
		})
	}
	var handled, sum atomic.Int64
	p := consumers.NewProjector("tracebench", group, 1, benchProjTopic)
	opts := []consumers.RunnerOption{consumers.WithLogger(benchQuietLog)}
	if store {
		st, err := state.NewRedis(e.rdb)
		benchMust(b, err)
		opts = append(opts, consumers.WithStore(st))
	}
	hash := group + ":balances"
	consumers.On(p, func(ctx context.Context, ev BenchDeposited, _ consumers.Metadata) error {
		if store {
			state.Redis(ctx).HIncrBy(ctx, hash, ev.Account, ev.Amount)
		}
		sum.Add(ev.Amount)
		handled.Add(1)
		return nil
	})
	var stop func()
	m := benchMeasure(b, func() {
		r, err := consumers.NewRunner(p, e.serde, []string{e.addr}, opts...)
		benchMust(b, err)
		runCtx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { errc <- r.Run(runCtx) }()
		stop = func() {
			cancel()
			benchMust(b, <-errc)
		}
		for handled.Load() < benchRecords {
			time.Sleep(time.Millisecond)
		}
		benchMust(b, r.CatchUp(ctx))
		end()
	})
	stop()
	if handled.Load() != benchRecords || sum.Load() != 42*benchRecords {
		b.Fatalf("%s: projector handled %d events (sum %d), want %d", v.name, handled.Load(), sum.Load(), benchRecords)
	}
	if store { // the read model holds every event once
		vals, err := e.rdb.HVals(ctx, hash).Result()
		benchMust(b, err)
		var total int64
		for _, s := range vals {
			n, err := strconv.ParseInt(s, 10, 64)
			benchMust(b, err)
			total += n
		}
		if total != 42*benchRecords {
			b.Fatalf("%s: the Redis read model sums to %d, want %d", v.name, total, 42*benchRecords)
		}
	}
	return m
}

var benchQuietLog = slog.New(slog.DiscardHandler)

// benchMeasured is one timed run: its wall time and the CPU this process
// (the broker included: kfake runs in it) used meanwhile.
type benchMeasured struct{ wall, cpu time.Duration }

func (m benchMeasured) rate() float64 { return benchRecords / m.wall.Seconds() }

func (m benchMeasured) cpuPerEvent() float64 {
	return float64(m.cpu) / float64(time.Microsecond) / benchRecords
}

func benchMeasure(b *testing.B, fn func()) benchMeasured {
	runtime.GC()
	c0 := benchCPU(b)
	start := time.Now()
	fn()
	wall := time.Since(start)
	return benchMeasured{wall: wall, cpu: benchCPU(b) - c0}
}

func benchCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	benchMust(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchLoadAvg is the machine's 1-minute load average: other processes on
// a shared machine move every figure.
func benchLoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

func benchMust(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
