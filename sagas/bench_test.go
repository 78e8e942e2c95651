package sagas_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/consumers"
	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/sagas"
	"github.com/recq/recq/sagas/store"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

// The benchmarks' domain: an instance is opened (Start), then stepped (On)
// many times; a timed instance schedules one deadline when it opens.
type (
	BenchOpened  struct{ Instance string }
	BenchStepped struct {
		Instance string
		Amount   int64
	}
	BenchTimed struct {
		Instance string
		// DueMs is when its deadline is due (ms since the epoch): the
		// handler schedules it DueMs - Now() after the event's time.
		DueMs int64
	}
)

type benchCount struct {
	Count int64 // events handled
	Sum   int64
}

// benchQuiet discards the runners' logs.
var benchQuiet = slog.New(slog.DiscardHandler)

// benchSender is the Sender of sagas that send nothing.
type benchSender struct{}

func (benchSender) Send(context.Context, string, string, any, ...aggregates.SendOption) (aggregates.Result, error) {
	return aggregates.Result{}, errors.New("the benchmark sagas send nothing")
}

const (
	tputEvents     = 50_000
	tputInstances  = 1_000
	tputPartitions = 8
	tputTopicA     = "bench.saga.a"
	tputTopicB     = "bench.saga.b"
)

// benchEnv is a broker, a registry, a redis-server and a publisher, for
// the life of the parent benchmark (its sub-benchmarks run -count times).
type benchEnv struct {
	addr  string
	serde *schema.Serde
	pub   *streams.Publisher
	rdb   *redis.Client
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	e := &benchEnv{addr: testenv.Kafka(b), serde: testenv.Serde(b)}
	e.rdb = testenv.RedisClient(b, testenv.Redis(b).Addr)
	var err error
	if e.pub, err = streams.NewPublisher([]string{e.addr}, streams.WithCodec(e.serde)); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.pub.Close(context.Background()) })
	return e
}

func (e *benchEnv) record(b *testing.B, topic, key string, v any) *kgo.Record {
	val, typ, err := e.serde.Encode(context.Background(), topic, v)
	if err != nil {
		b.Fatal(err)
	}
	r := &kgo.Record{Topic: topic, Key: []byte(key), Value: val}
	streams.Envelope{Type: typ, AggregateID: key}.Write(r)
	return r
}

// publish produces recs in chunks, waiting for each.
func (e *benchEnv) publish(b *testing.B, recs []*kgo.Record) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for c := range slices.Chunk(recs, 10_000) {
		if err := e.pub.Publish(ctx, c...); err != nil {
			b.Fatal(err)
		}
	}
}

// runBench runs run until stop is called, which reports Run's error.
func runBench(b *testing.B, run func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx) }()
	return func() {
		cancel()
		if err := <-errc; err != nil {
			b.Fatalf("run: %v", err)
		}
	}
}

// cpuNow is the CPU time this process (the broker included: kfake runs
// in it) and redis-server have used.
func cpuNow(ctx context.Context, b *testing.B, rdb *redis.Client) (proc, rds time.Duration) {
	var ru syscall.Rusage
	benchMust(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	proc = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return proc, redisCPU(ctx, b, rdb)
}

// redisCPU is the CPU time redis-server has used (user + system).
func redisCPU(ctx context.Context, b *testing.B, rdb *redis.Client) time.Duration {
	info, err := rdb.Info(ctx, "cpu").Result()
	benchMust(b, err)
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_user" || k == "used_cpu_sys" {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

// loadAvg is the machine's 1-minute load average: other processes on
// this shared machine move every figure.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "unknown"
	}
	return f[0]
}

func benchMust(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSagaThroughput: 50,000 events over 1,000 instances on two input
// topics, in the topics before anything starts, consumed in one run by
//
//   - raw franz-go: a group consumer of both topics that only counts
//     records (the baseline);
//   - a consumers projector on state.NewRedis, one HINCRBY per event;
//   - a sagas.Runner on store.NewRedis: the first event of an instance
//     starts it, the others are handled by an On handler; handlers only
//     change the state (no Send).
//
// Each consumes from a new group; done is CatchUp (the saga's twice: once
// the inputs are routed, the routed topic holds them all). An instance's
// events are all on one topic (instances alternate between the two), keyed
// by its id, so its start event is routed before its other events: with
// an instance's events on both topics, an On event could be routed before
// its Start and be skipped.
func BenchmarkSagaThroughput(b *testing.B) {
	e := newBenchEnv(b)
	testenv.Topic(b, e.addr, tputTopicA, tputPartitions)
	testenv.Topic(b, e.addr, tputTopicB, tputPartitions)
	recs := make([]*kgo.Record, 0, tputEvents)
	var sum int64
	for i := range tputEvents {
		inst := i % tputInstances
		id := "i" + strconv.Itoa(inst)
		topic := tputTopicA
		if inst%2 == 1 {
			topic = tputTopicB
		}
		var v any = BenchOpened{Instance: id}
		if i >= tputInstances {
			amount := int64(1 + i%97)
			sum += amount
			v = BenchStepped{Instance: id, Amount: amount}
		}
		recs = append(recs, e.record(b, topic, id, v))
	}
	e.publish(b, recs)

	var run atomic.Int64
	b.Run("redis", func(b *testing.B) {
		for range b.N {
			benchThroughput(b, e, run.Add(1), sum)
		}
	})
}

// measured is one consumer's run over the events: its wall time (from
// the runner's creation to caught up), and the CPU this process (broker
// included) and redis-server used meanwhile.
type measured struct {
	wall, proc, redis time.Duration
}

func (m measured) rate() float64 { return tputEvents / m.wall.Seconds() }

// cpuPerEvent is the CPU, process and Redis, per event in µs.
func (m measured) cpuPerEvent() float64 {
	return float64(m.proc+m.redis) / float64(time.Microsecond) / tputEvents
}

// measure times fn and the CPU used while it runs.
func measure(ctx context.Context, b *testing.B, rdb *redis.Client, fn func()) measured {
	runtime.GC()
	p0, r0 := cpuNow(ctx, b, rdb)
	start := time.Now()
	fn()
	wall := time.Since(start)
	p1, r1 := cpuNow(ctx, b, rdb)
	return measured{wall: wall, proc: p1 - p0, redis: r1 - r0}
}

func benchThroughput(b *testing.B, e *benchEnv, n, sum int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	raw := measure(ctx, b, e.rdb, func() { benchRaw(b, e, "bench.raw."+strconv.FormatInt(n, 10)) })
	var proj, saga measured
	// Alternate which of the two runs first, so neither always runs on
	// the heap the other left.
	for _, which := range []int64{n % 2, (n + 1) % 2} {
		if which == 0 {
			proj = benchProjector(ctx, b, e, n)
		} else {
			saga = benchSagaRun(ctx, b, e, n, sum)
		}
	}
	b.ReportMetric(raw.rate(), "raw-events/s")
	b.ReportMetric(proj.rate(), "projector-events/s")
	b.ReportMetric(saga.rate(), "saga-events/s")
	b.ReportMetric(saga.rate()/proj.rate(), "saga/projector")
	b.ReportMetric(saga.rate()/raw.rate(), "saga/raw")
	b.ReportMetric(proj.cpuPerEvent(), "projector-cpu-µs/event")
	b.ReportMetric(saga.cpuPerEvent(), "saga-cpu-µs/event")
	b.ReportMetric(float64(saga.redis)/float64(time.Microsecond)/tputEvents, "saga-redis-cpu-µs/event")
}

// benchRaw consumes every input event with a franz-go group consumer.
func benchRaw(b *testing.B, e *benchEnv, group string) {
	cl := testenv.Client(b, e.addr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(tputTopicA, tputTopicB),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	n := 0
	for n < tputEvents {
		cl.PollFetches(context.Background()).EachRecord(func(*kgo.Record) { n++ })
	}
	cl.Close()
}

// benchProjector runs a projector writing one HINCRBY per event on
// state.NewRedis until it caught up with both topics.
func benchProjector(ctx context.Context, b *testing.B, e *benchEnv, n int64) measured {
	p := consumers.NewProjector("sagabench", "projector", int(n), tputTopicA, tputTopicB)
	hash := p.Group() + ":count"
	consumers.On(p, func(ctx context.Context, ev BenchOpened, md consumers.Metadata) error {
		state.Redis(ctx).HIncrBy(ctx, hash, ev.Instance, 1)
		return nil
	})
	consumers.On(p, func(ctx context.Context, ev BenchStepped, md consumers.Metadata) error {
		state.Redis(ctx).HIncrBy(ctx, hash, ev.Instance, 1)
		return nil
	})
	st, err := state.NewRedis(e.rdb)
	benchMust(b, err)
	var stop func()
	m := measure(ctx, b, e.rdb, func() {
		r, err := consumers.NewRunner(p, e.serde, []string{e.addr}, consumers.WithStore(st), consumers.WithLogger(benchQuiet))
		benchMust(b, err)
		stop = runBench(b, r.Run)
		benchMust(b, r.CatchUp(ctx))
	})
	stop()
	// Check, untimed, that every event was counted.
	counts, err := e.rdb.HGetAll(ctx, hash).Result()
	benchMust(b, err)
	var total int64
	for _, v := range counts {
		c, _ := strconv.ParseInt(v, 10, 64)
		total += c
	}
	if total != tputEvents || len(counts) != tputInstances {
		b.Fatalf("projector: %d events over %d instances counted, want %d over %d", total, len(counts), tputEvents, tputInstances)
	}
	return m
}

// benchSagaRun runs the counting saga on store.NewRedis until it has
// handled every event.
func benchSagaRun(ctx context.Context, b *testing.B, e *benchEnv, n, sum int64) measured {
	s := sagas.New[benchCount]("sagabench", "saga", int(n), tputTopicA, tputTopicB)
	sagas.Start(s, sagas.By("i", func(ev BenchOpened) string { return ev.Instance }), func(_ context.Context, _ BenchOpened, in *sagas.Instance[benchCount]) error {
		in.State.Count++
		return nil
	})
	sagas.On(s, sagas.By("i", func(ev BenchStepped) string { return ev.Instance }), func(_ context.Context, ev BenchStepped, in *sagas.Instance[benchCount]) error {
		in.State.Count++
		in.State.Sum += ev.Amount
		return nil
	})
	st, err := store.NewRedis(e.rdb)
	benchMust(b, err)
	var stop func()
	var routed time.Duration
	m := measure(ctx, b, e.rdb, func() {
		start := time.Now()
		r, err := sagas.NewRunner(s, e.serde, []string{e.addr}, benchSender{}, sagas.WithStore(st),
			sagas.WithRunnerOptions(consumers.WithLogger(benchQuiet)))
		benchMust(b, err)
		stop = runBench(b, r.Run)
		// The first CatchUp returns once every input event is routed (a
		// batch's routed records are acknowledged before its position
		// moves); the routed topic then holds them all, and the second
		// waits for them.
		benchMust(b, r.CatchUp(ctx))
		routed = time.Since(start)
		benchMust(b, r.CatchUp(ctx))
	})
	stop()
	// Check, untimed, that every instance handled every one of its events.
	ins, err := st.List(ctx, s.Group(), store.Filter{})
	benchMust(b, err)
	var count, total, size int64
	for _, in := range ins {
		var c benchCount
		benchMust(b, json.Unmarshal(in.State, &c))
		count, total = count+c.Count, total+c.Sum
		js, _ := json.Marshal(in)
		size += int64(len(js))
	}
	if len(ins) != tputInstances || count != tputEvents || total != sum {
		b.Fatalf("saga: %d instances handled %d events (sum %d), want %d, %d (sum %d)", len(ins), count, total, tputInstances, tputEvents, sum)
	}
	b.Logf("saga (load average %s): inputs routed after %v, all handled after %v; an instance is %d bytes of JSON at the end", loadAvg(), routed.Round(time.Millisecond), m.wall.Round(time.Millisecond), size/int64(len(ins)))
	return m
}

const (
	lateInstances  = 100_000
	latePartitions = 8
	// lateWindow is how the due times spread.
	lateWindow = 10 * time.Second
)

// lateAllowance is how long after the events are published the first
// deadline is due: the runner must have handled the 100,000 start events
// (and armed its timers) before then, or the lateness measured would be
// its catch-up. The benchmark fails when it did not.
var lateAllowance = map[string]time.Duration{"memory": 10 * time.Second, "redis": 20 * time.Second}

// BenchmarkSagaDeadlineLateness: 100,000 instances each schedule one
// deadline, the due times spread evenly over 10 s (10,000 due per
// second), all pending in one runner's timers once it caught up; each
// deadline's handler records how late it runs (time.Now minus its due
// time, which is Instance.Now in a deadline handler), once per instance,
// and ends the instance. Memory and Redis stores; p50, p99 and max in ms.
// The due times are in the events (BenchTimed.DueMs), set when they are
// published, lateAllowance ahead: the runner arms its timers only once it
// caught up, and the benchmark fails if that came too late. ns/op is from
// caught up to the last deadline handled.
func BenchmarkSagaDeadlineLateness(b *testing.B) {
	e := newBenchEnv(b)
	var run atomic.Int64
	for _, kind := range []string{"memory", "redis"} {
		b.Run(kind, func(b *testing.B) {
			for range b.N {
				benchLateness(b, e, kind, run.Add(1))
			}
		})
	}
}

// lateness is when a deadline was due and how late its handler ran.
type lateness struct {
	due  time.Time
	late time.Duration
}

func benchLateness(b *testing.B, e *benchEnv, kind string, n int64) {
	b.StopTimer()
	topic := "bench.late." + strconv.FormatInt(n, 10)
	testenv.Topic(b, e.addr, topic, latePartitions)
	first := time.Now().Add(lateAllowance[kind])
	recs := make([]*kgo.Record, lateInstances)
	for i := range recs {
		id := "t" + strconv.Itoa(i)
		due := first.Add(time.Duration(i) * lateWindow / lateInstances)
		recs[i] = e.record(b, topic, id, BenchTimed{Instance: id, DueMs: due.UnixMilli()})
	}
	e.publish(b, recs)

	var (
		mu    sync.Mutex
		late  = make(map[string]lateness, lateInstances)
		again int // handler runs for an instance already recorded
		done  = make(chan struct{})
	)
	s := sagas.New[benchCount]("sagabench", "late", int(n), topic)
	sagas.Start(s, sagas.By("t", func(ev BenchTimed) string { return ev.Instance }), func(_ context.Context, ev BenchTimed, in *sagas.Instance[benchCount]) error {
		in.Schedule("due", time.UnixMilli(ev.DueMs).Sub(in.Now()))
		return nil
	})
	sagas.OnDeadline(s, "due", func(_ context.Context, in *sagas.Instance[benchCount]) error {
		d := time.Since(in.Now()) // Now is the due time
		mu.Lock()
		if _, ok := late[in.ID()]; !ok {
			late[in.ID()] = lateness{due: in.Now(), late: d}
			if len(late) == lateInstances {
				close(done)
			}
		} else {
			again++
		}
		mu.Unlock()
		in.End()
		return nil
	})
	var st store.Store = store.NewMemory()
	if kind == "redis" {
		var err error
		st, err = store.NewRedis(e.rdb)
		benchMust(b, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := sagas.NewRunner(s, e.serde, []string{e.addr}, benchSender{}, sagas.WithStore(st),
		sagas.WithRunnerOptions(consumers.WithLogger(benchQuiet)))
	benchMust(b, err)
	start := time.Now()
	stop := runBench(b, r.Run)
	defer stop()
	benchMust(b, r.CatchUp(ctx))
	benchMust(b, r.CatchUp(ctx))
	for r.Pending() < lateInstances {
		if time.Now().After(first) {
			b.Fatalf("%d of %d deadlines pending when the first was due", r.Pending(), lateInstances)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ready := time.Now()
	if slack := first.Sub(ready); slack < time.Second {
		b.Fatalf("caught up %v before the first deadline was due: raise lateAllowance[%q]", slack, kind)
	}
	b.StartTimer()
	select {
	case <-done:
	case <-ctx.Done():
		mu.Lock()
		got := len(late)
		mu.Unlock()
		b.Fatalf("%d of %d deadlines handled", got, lateInstances)
	}
	b.StopTimer()
	ds := make([]time.Duration, 0, lateInstances)
	// Per second of the window, to see whether the tail is spread or in
	// bursts.
	bySecond := make([][]time.Duration, int(lateWindow/time.Second)+1)
	mu.Lock()
	for _, l := range late {
		ds = append(ds, l.late)
		i := int(l.due.Sub(first) / time.Second)
		bySecond[i] = append(bySecond[i], l.late)
	}
	mu.Unlock()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	quantile := func(ds []time.Duration, p float64) time.Duration {
		slices.Sort(ds)
		return ds[int(p*float64(len(ds)-1))]
	}
	var per []string
	for i, sl := range bySecond {
		if len(sl) > 0 {
			per = append(per, fmt.Sprintf("%ds: p99 %.1f ms, max %.1f ms", i, ms(quantile(sl, 0.99)), ms(sl[len(sl)-1])))
		}
	}
	mu.Lock()
	twice := again
	mu.Unlock()
	b.Logf("%s (load average %s): caught up in %v; %d handler runs again; per second of the window: %s", kind, loadAvg(), ready.Sub(start).Round(time.Millisecond), twice, strings.Join(per, "; "))
	q := func(p float64) time.Duration { return quantile(ds, p) }
	b.ReportMetric(ms(q(0.50)), "p50-ms")
	b.ReportMetric(ms(q(0.99)), "p99-ms")
	b.ReportMetric(ms(ds[len(ds)-1]), "max-ms")
	b.ReportMetric(ms(ds[0]), "min-ms")
	b.ReportMetric(ready.Sub(start).Seconds(), "catchup-s")
}
