package state_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/consumers/state/statetest"
	"github.com/recq/recq/internal/testenv"
)

func TestRedis(t *testing.T) {
	srv := testenv.Redis(t)
	rdb := testenv.RedisClient(t, srv.Addr)
	var n atomic.Int64
	prefixes := map[state.Store]string{}
	statetest.Run(t, statetest.Harness{
		New: func(t *testing.T) state.Store {
			p := "t" + strconv.FormatInt(n.Add(1), 10) + ":"
			s, err := state.NewRedis(rdb, state.WithKeyPrefix(p))
			if err != nil {
				t.Fatal(err)
			}
			prefixes[s] = p
			return s
		},
		Add: func(ctx context.Context, s state.Store, key string, delta int64) {
			state.Redis(ctx).IncrBy(ctx, prefixes[s]+key, delta)
		},
		Read: func(t *testing.T, s state.Store, key string) int64 {
			v, err := rdb.Get(context.Background(), prefixes[s]+key).Int64()
			if err != nil && !errors.Is(err, redis.Nil) {
				t.Fatal(err)
			}
			return v
		},
	})
}

func TestRedisBatchIsOneRoundTrip(t *testing.T) {
	rdb := testenv.RedisClient(t, testenv.Redis(t).Addr)
	var calls atomic.Int64
	rdb.AddHook(countHook{&calls})
	s, err := state.NewRedis(rdb)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := s.Claim(ctx, "g", state.Partition{Topic: "t", Partition: 0})
	if err != nil {
		t.Fatal(err)
	}
	b := s.Begin(l)
	for i := range 500 {
		_ = b.Do(ctx, func(ctx context.Context) error {
			tx := state.Redis(ctx)
			tx.HIncrBy(ctx, "h", "n", 1)
			tx.Set(ctx, "last", i, 0)
			return nil
		})
	}
	calls.Store(0)
	if err := b.Commit(ctx, 500); err != nil {
		t.Fatal(err)
	}
	// Script.Run is EVALSHA, and EVAL only when Redis lacks the script.
	if got := calls.Load(); got != 1 {
		t.Fatalf("commit of 500 records sent %d commands, want 1", got)
	}
	if n, _ := rdb.HGet(ctx, "h", "n").Int(); n != 500 {
		t.Fatalf("h.n = %d, want 500", n)
	}
	if v, _ := rdb.Get(ctx, "last").Int(); v != 499 {
		t.Fatalf("last = %d, want 499", v)
	}
}

type countHook struct{ n *atomic.Int64 }

func (countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "evalsha" {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func TestRedisRefusesScriptBreakingCommands(t *testing.T) {
	rdb := testenv.RedisClient(t, testenv.Redis(t).Addr)
	s, _ := state.NewRedis(rdb)
	ctx := context.Background()
	l, _ := s.Claim(ctx, "g", state.Partition{Topic: "t", Partition: 0})
	err := s.Begin(l).Do(ctx, func(ctx context.Context) error {
		state.Redis(ctx).BLPop(ctx, 0, "q")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "blpop") {
		t.Fatalf("BLPOP in a batch: %v", err)
	}
	fields := make([]any, 0, 8000)
	for i := range 4000 {
		fields = append(fields, strconv.Itoa(i), "v")
	}
	err = s.Begin(l).Do(ctx, func(ctx context.Context) error {
		state.Redis(ctx).HSet(ctx, "h", fields...)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "split it") {
		t.Fatalf("HSET of 4000 fields in a batch (more arguments than the script can pass on): %v", err)
	}
}

func TestRedisUnreachableThenBack(t *testing.T) {
	srv := testenv.Redis(t)
	rdb := testenv.RedisClient(t, srv.Addr)
	s, _ := state.NewRedis(rdb)
	ctx := context.Background()
	p := state.Partition{Topic: "t", Partition: 0}
	l, err := s.Claim(ctx, "g", p)
	if err != nil {
		t.Fatal(err)
	}
	b := s.Begin(l)
	_ = b.Do(ctx, func(ctx context.Context) error { state.Redis(ctx).IncrBy(ctx, "k", 1); return nil })
	srv.Stop()
	err = b.Commit(ctx, 1)
	if err == nil || !strings.Contains(err.Error(), srv.Addr) || !strings.Contains(err.Error(), "redis-server running") {
		t.Fatalf("commit with Redis down: want an error naming %s and what to check, got %v", srv.Addr, err)
	}
	if _, err := s.Claim(ctx, "g", p); err == nil || !strings.Contains(err.Error(), srv.Addr) {
		t.Fatalf("claim with Redis down: %v", err)
	}
	// The restarted server is empty: the old lease's epoch is gone, so its
	// commit is fenced rather than applied over an unknown state.
	srv.Start()
	if err := b.Commit(ctx, 1); !errors.Is(err, state.ErrFenced) {
		t.Fatalf("old lease after an empty restart: want ErrFenced, got %v", err)
	}
	l2, err := s.Claim(ctx, "g", p)
	if err != nil || l2.Next != state.NoPosition {
		t.Fatalf("claim after restart: %+v %v", l2, err)
	}
}

func TestNewRedisErrors(t *testing.T) {
	if _, err := state.NewRedis(nil); err == nil {
		t.Error("nil client accepted")
	}
	if _, err := state.NewRedis(redis.NewClient(&redis.Options{}), state.WithKeyPrefix("a b")); err == nil {
		t.Error("prefix with a space accepted")
	}
}

// BenchmarkCommit commits batches of 500 records with two writes each:
// through the memory store (OnCommit), and through Redis with every record
// writing its own fields (nothing folds: 1,000 commands in the script) or
// all records adding to the same two counters (folded to 2 commands).
func BenchmarkCommit(b *testing.B) {
	rdb := testenv.RedisClient(b, testenv.Redis(b).Addr)
	redisStore, _ := state.NewRedis(rdb)
	const records = 500
	var runs atomic.Int64
	fields := make([]string, records)
	for i := range fields {
		fields[i] = "f" + strconv.Itoa(i)
	}
	for _, bc := range []struct {
		name  string
		s     state.Store
		write func(ctx context.Context, i int)
	}{
		{"memory", state.NewMemory(), func(ctx context.Context, _ int) { state.OnCommit(ctx, func() {}) }},
		{"redis-distinct", redisStore, func(ctx context.Context, i int) {
			tx := state.Redis(ctx)
			tx.HIncrBy(ctx, "bench:n", fields[i], 1)
			tx.HIncrBy(ctx, "bench:sum", fields[i], 7)
		}},
		{"redis-folded", redisStore, func(ctx context.Context, _ int) {
			tx := state.Redis(ctx)
			tx.HIncrBy(ctx, "bench:h", "n", 1)
			tx.HIncrBy(ctx, "bench:h", "sum", 7)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			// A new group each run: a position left by an earlier run
			// would make every commit "already applied".
			group := "bench-" + bc.name + "-" + strconv.FormatInt(runs.Add(1), 10)
			l, _ := bc.s.Claim(ctx, group, state.Partition{Topic: "t", Partition: 0})
			for i := range b.N {
				bt := bc.s.Begin(l)
				for r := range records {
					_ = bt.Do(ctx, func(ctx context.Context) error { bc.write(ctx, r); return nil })
				}
				if err := bt.Commit(ctx, int64(i+1)*records); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*records)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// Folding increments must leave Redis exactly as running every command in
// order would: random mixes of increments, writes and deletes on a few keys
// go once through a batch and once, command by command, to other keys.
func TestRedisFoldedIncrementsMatchSequential(t *testing.T) {
	rdb := testenv.RedisClient(t, testenv.Redis(t).Addr)
	s, _ := state.NewRedis(rdb)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		l, _ := s.Claim(ctx, "fold", state.Partition{Topic: "t", Partition: int32(round)})
		b := s.Begin(l)
		var direct []func(prefix string, c redis.Cmdable)
		for range 200 {
			k := "k" + strconv.Itoa(rng.IntN(3))
			f := "f" + strconv.Itoa(rng.IntN(2))
			n := rng.Int64N(11) - 5
			var op func(prefix string, c redis.Cmdable)
			switch rng.IntN(10) {
			case 0:
				op = func(p string, c redis.Cmdable) { c.Del(ctx, p+k) }
			case 1:
				op = func(p string, c redis.Cmdable) { c.HSet(ctx, p+k, f, n) }
			case 2:
				op = func(p string, c redis.Cmdable) { c.IncrBy(ctx, p+"s"+k, n) }
			case 3:
				op = func(p string, c redis.Cmdable) { c.Set(ctx, p+"s"+k, n, 0) }
			default:
				op = func(p string, c redis.Cmdable) { c.HIncrBy(ctx, p+k, f, n) }
			}
			direct = append(direct, op)
			_ = b.Do(ctx, func(ctx context.Context) error { op("batch:", state.Redis(ctx)); return nil })
		}
		if err := b.Commit(ctx, 200); err != nil {
			t.Fatal(err)
		}
		for _, op := range direct {
			op("seq:", rdb)
		}
		for _, k := range []string{"k0", "k1", "k2"} {
			got, _ := rdb.HGetAll(ctx, "batch:"+k).Result()
			want, _ := rdb.HGetAll(ctx, "seq:"+k).Result()
			gs, _ := rdb.Get(ctx, "batch:s"+k).Result()
			ws, _ := rdb.Get(ctx, "seq:s"+k).Result()
			if fmt.Sprint(got) != fmt.Sprint(want) || gs != ws {
				t.Fatalf("round %d key %s: batch %v %q, sequential %v %q", round, k, got, gs, want, ws)
			}
		}
	}
}
