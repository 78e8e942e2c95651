package consumers_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/consumers"
	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

// benchEvents is how many events each benchmark iteration consumes, from a
// new group, on one broker and topic shared by the three benchmarks.
const benchEvents = 200_000

var (
	benchOnce sync.Once
	benchBank *bank
)

// benchSetup publishes benchEvents once per process (the broker lives as
// long as the first benchmark that started it, which is the parent).
func benchSetup(b *testing.B) *bank {
	benchOnce.Do(func() {
		benchBank = newBank(b, 8)
		for range benchEvents / 20_000 {
			benchBank.publish(20_000, 1000)
		}
	})
	return benchBank
}

// BenchmarkConsume compares, on the same broker and topic in one run:
// raw franz-go group consuming (no decoding, no handler), the same with the
// envelope read and each event decoded by hand, a projector on Kafka
// offsets (at-least-once) and a projector on the Redis store (exactly-once:
// read model writes and positions in one script per partition batch). Each
// reports events/s.
func BenchmarkConsume(b *testing.B) {
	bk := benchSetup(b)
	rdb := testenv.RedisClient(b, testenv.Redis(b).Addr)
	var group atomic.Int64
	newGroup := func() string { return "bench-" + strconv.FormatInt(group.Add(1), 10) }

	b.Run("raw-franz-go", func(b *testing.B) {
		for range b.N {
			cl := testenv.Client(b, bk.addr, kgo.ConsumerGroup(newGroup()), kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			n := 0
			for n < benchEvents {
				fs := cl.PollFetches(context.Background())
				fs.EachRecord(func(*kgo.Record) { n++ })
			}
			cl.Close()
		}
		b.ReportMetric(float64(benchEvents*b.N)/b.Elapsed().Seconds(), "events/s")
	})

	// What a franz-go user writes to do the projector's work by hand: read
	// the envelope and decode each event into its Go type (informational:
	// the target compares with raw-franz-go).
	b.Run("raw-franz-go-decode", func(b *testing.B) {
		deposited, withdrawn := typeName(b, bk.serde, Deposited{}), typeName(b, bk.serde, Withdrawn{})
		for range b.N {
			cl := testenv.Client(b, bk.addr, kgo.ConsumerGroup(newGroup()), kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			var n, sum int64
			for n < benchEvents {
				fs := cl.PollFetches(context.Background())
				fs.EachRecord(func(r *kgo.Record) {
					n++
					env, _ := streams.ReadEnvelope(r)
					switch env.Type {
					case deposited:
						var e Deposited
						must(b, bk.serde.Decode(context.Background(), r.Topic, r.Value, &e))
						sum += e.Amount
					case withdrawn:
						var e Withdrawn
						must(b, bk.serde.Decode(context.Background(), r.Topic, r.Value, &e))
						sum -= e.Amount
					}
				})
			}
			cl.Close()
		}
		b.ReportMetric(float64(benchEvents*b.N)/b.Elapsed().Seconds(), "events/s")
	})

	// run consumes every event from a new group per iteration; mk defines
	// the projector and reports how many events it has applied.
	run := func(b *testing.B, mk func() (*consumers.Consumer, func() int64), opts ...consumers.RunnerOption) {
		for range b.N {
			c, applied := mk()
			r, err := consumers.NewRunner(c, bk.serde, []string{bk.addr}, append(opts, consumers.WithLogger(quiet))...)
			must(b, err)
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() { errc <- r.Run(ctx) }()
			for applied() < bk.handled {
				time.Sleep(time.Millisecond)
			}
			cancel()
			must(b, <-errc)
		}
		b.ReportMetric(float64(benchEvents*b.N)/b.Elapsed().Seconds(), "events/s")
	}

	// counting is a projector on Kafka offsets that counts what it applies;
	// fail, if set, makes a handler fail permanently.
	counting := func(fail func(amount int64) bool) func() (*consumers.Consumer, func() int64) {
		return func() (*consumers.Consumer, func() int64) {
			var n atomic.Int64
			p := consumers.NewProjector("bank", newGroup(), 1, topic)
			count := func(ctx context.Context, amount int64) error {
				if fail != nil && fail(amount) {
					n.Add(1) // dead counts as done
					return errors.New("refused")
				}
				state.OnCommit(ctx, func() { n.Add(1) })
				return nil
			}
			consumers.On(p, func(ctx context.Context, e Deposited, _ consumers.Metadata) error { return count(ctx, e.Amount) })
			consumers.On(p, func(ctx context.Context, e Withdrawn, _ consumers.Metadata) error { return count(ctx, -e.Amount) })
			return p, n.Load
		}
	}

	b.Run("projector-kafka-offsets", func(b *testing.B) {
		run(b, counting(nil), consumers.WithKafkaOffsets())
	})

	// The same without a dead event queue: what checking each event
	// against the queue's index costs.
	b.Run("projector-kafka-offsets-no-dlq", func(b *testing.B) {
		run(b, counting(nil), consumers.WithKafkaOffsets(), consumers.WithoutDeadLetters())
	})

	// About 1% of the events (amount 1) fail at once and are written to
	// the dead event queue, one acknowledged produce each.
	b.Run("projector-kafka-offsets-1pct-dead", func(b *testing.B) {
		run(b, counting(func(amount int64) bool { return amount == 1 }), consumers.WithKafkaOffsets(),
			consumers.WithParking(false), consumers.WithRetryPolicy(deadletter.Policy{Attempts: 1}))
	})

	b.Run("projector-redis-exactly-once", func(b *testing.B) {
		run(b, func() (*consumers.Consumer, func() int64) {
			p := redisProjector(newGroup(), 1)
			var polls, total int64
			return p, func() int64 {
				if polls++; polls%20 == 0 { // read the model every ~20 ms
					total = 0
					for _, c := range redisLedger(b, rdb, p.Group()).Count {
						total += c
					}
				}
				return total
			}
		}, consumers.WithStore(redisStore(b, rdb)))
	})
}

// BenchmarkRunnerStart measures a projector's start (to ready, on an empty
// topic of 8 partitions, in a new group) and stop, with and without the
// dead event queue: the fixed cost the queue adds (its three topics, a
// second client, reading it to its end, the retry topic's partitions in
// the group).
func BenchmarkRunnerStart(b *testing.B) {
	addr, serde := testenv.Kafka(b), testenv.Serde(b)
	const empty = "bank.empty"
	testenv.Topic(b, addr, empty, 8)
	for _, c := range []struct {
		name string
		opts []consumers.RunnerOption
	}{{"dlq", nil}, {"no-dlq", []consumers.RunnerOption{consumers.WithoutDeadLetters()}}} {
		b.Run(c.name, func(b *testing.B) {
			for i := range b.N {
				p := consumers.NewProjector("bank", "start-"+c.name+"-"+strconv.Itoa(i), 1, empty)
				consumers.On(p, func(context.Context, Deposited, consumers.Metadata) error { return nil })
				r, err := consumers.NewRunner(p, serde, []string{addr}, append(c.opts, consumers.WithLogger(quiet))...)
				must(b, err)
				ctx, cancel := context.WithCancel(context.Background())
				errc := make(chan error, 1)
				go func() { errc <- r.Run(ctx) }()
				waitHead(b, r)
				cancel()
				must(b, <-errc)
			}
		})
	}
}
