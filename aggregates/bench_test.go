package aggregates_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/aggregates/snapshot"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

// BenchmarkSend measures commands per second end to end: SendAsync with up
// to 256 commands in flight over 64 aggregates, each answered after its
// events, reply and offset were committed in one transaction.
func BenchmarkSend(b *testing.B) {
	addr, serde := platform(b)
	iv := runTodoWith(b, addr, serde)
	ctx := context.Background()
	for i := range 64 {
		if _, err := iv.Send(ctx, "todo", "l"+strconv.Itoa(i), CreateList{Name: "x"}); err != nil {
			b.Fatal(err)
		}
	}
	sem := make(chan struct{}, 256)
	done := make(chan error, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		sem <- struct{}{}
		ch := iv.SendAsync(ctx, "todo", "l"+strconv.Itoa(i%64), AddItem{Title: strconv.Itoa(i)})
		go func() {
			o := <-ch
			<-sem
			done <- o.Err
		}()
	}
	for i := 0; i < b.N; i++ {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commands/s")
}

// BenchmarkRawTransactionalProduce is the baseline: franz-go producing the
// same number of records in transactions of 100 to the same broker.
func BenchmarkRawTransactionalProduce(b *testing.B) {
	addr := testenv.Kafka(b)
	testenv.Topic(b, addr, "raw", 4)
	cl := testenv.Client(b, addr, kgo.TransactionalID("raw-bench"), kgo.DefaultProduceTopic("raw"))
	ctx := context.Background()
	value := make([]byte, 40)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i += 100 {
		if err := cl.BeginTransaction(); err != nil {
			b.Fatal(err)
		}
		for j := i; j < min(i+100, b.N); j++ {
			cl.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(j % 64)), Value: value}, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

// Counter is the benchmark's aggregate: its state stays the same size
// however long its history, so load time shows what replay costs.
type (
	Counter      struct{ N int64 }
	Increment    struct{ By int64 }
	Incremented  struct{ By int64 }
	StartCount   struct{}
	CountStarted struct{}
)

func counter() *aggregates.Aggregate[Counter] {
	a := aggregates.New[Counter]("counter")
	aggregates.Create(a, func(context.Context, StartCount, *Counter) ([]any, error) { return []any{CountStarted{}}, nil })
	aggregates.Handle(a, func(_ context.Context, c Increment, _ *Counter) ([]any, error) { return []any{Incremented(c)}, nil })
	aggregates.Apply(a, func(*Counter, CountStarted) {})
	aggregates.Apply(a, func(s *Counter, e Incremented) { s.N += e.By })
	return a
}

// BenchmarkLoad measures loading an aggregate with a long history on a
// runner that has it in neither cache nor memory: one Send to it per
// iteration, with a cache of one aggregate and a Send to a second aggregate
// between (untimed), so every timed Send loads. Snapshots are on (every 100
// events), so a load is the snapshot plus the events after it, whatever the
// history's length.
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{100, 10_000, 1_000_000} {
		b.Run(strconv.Itoa(n)+"-events", func(b *testing.B) {
			addr, serde := platform(b)
			store := snapshot.NewMemory()
			ctx := context.Background()
			events := aggregates.EventsTopic("counter")
			if err := aggregates.EnsureTopics(ctx, streams.NewAdmin(testenv.Client(b, addr)), "counter", 1); err != nil {
				b.Fatal(err)
			}
			// The history, written directly: a start and n-1 increments.
			p, err := streams.NewPublisher([]string{addr}, streams.WithCodec(serde))
			if err != nil {
				b.Fatal(err)
			}
			var last *kgo.Record
			for v := 1; v <= n; v++ {
				var evt any = Incremented{By: 1}
				if v == 1 {
					evt = CountStarted{}
				}
				val, typ, err := serde.Encode(ctx, events, evt)
				if err != nil {
					b.Fatal(err)
				}
				r := &kgo.Record{Topic: events, Key: []byte("big"), Value: val}
				streams.Envelope{Type: typ, AggregateID: "big", AggregateVersion: int64(v)}.Write(r)
				last = r
				p.PublishAsync(ctx, r, func(_ *kgo.Record, err error) {
					if err != nil {
						b.Error(err)
					}
				})
			}
			if err := p.Close(ctx); err != nil {
				b.Fatal(err)
			}
			// The snapshot a runner would have taken at the last event.
			sb, _ := json.Marshal(map[string]any{"state": Counter{N: int64(n - 1)}})
			if err := store.Save(ctx, snapshot.Snapshot{Aggregate: "counter", ID: "big", Version: int64(n), State: sb, Partition: 0, Offset: last.Offset}); err != nil {
				b.Fatal(err)
			}
			r, err := aggregates.NewRunner(counter(), serde, []string{addr}, aggregates.WithSnapshots(store, 100), aggregates.WithCacheSize(1))
			if err != nil {
				b.Fatal(err)
			}
			testenv.RunUntilCleanup(b, r.Run)
			iv, err := aggregates.NewInvoker(ctx, []string{addr}, serde)
			if err != nil {
				b.Fatal(err)
			}
			defer iv.Close()
			if _, err := iv.Send(ctx, "counter", "other", StartCount{}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := iv.Send(ctx, "counter", "big", Increment{By: 1})
				if err != nil || res.Version != int64(n+i+1) {
					b.Fatalf("send: %+v %v", res, err)
				}
				b.StopTimer()
				if _, err := iv.Send(ctx, "counter", "other", Increment{By: 1}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkSendLatency paces SendAsync at a fixed rate (RECQ_BENCH_RATE,
// default 5000 commands/s: about half of BenchmarkSend's throughput here)
// and reports the p50 and p99 of send-to-reply latency.
func BenchmarkSendLatency(b *testing.B) {
	rate := 5000.0
	if v, err := strconv.ParseFloat(os.Getenv("RECQ_BENCH_RATE"), 64); err == nil && v > 0 {
		rate = v
	}
	addr, serde := platform(b)
	iv := runTodo(b, addr, serde)
	ctx := context.Background()
	for i := range 64 {
		if _, err := iv.Send(ctx, "todo", "l"+strconv.Itoa(i), CreateList{Name: "x"}); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / rate)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		sent := time.Now()
		ch := iv.SendAsync(ctx, "todo", "l"+strconv.Itoa(i%64), AddItem{Title: strconv.Itoa(i)})
		wg.Go(func() {
			if o := <-ch; o.Err != nil {
				b.Error(o.Err)
			}
			lat[i] = time.Since(sent)
		})
	}
	wg.Wait()
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
