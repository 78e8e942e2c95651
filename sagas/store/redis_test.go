package store_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/consumers/state/statetest"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/sagas/store"
	"github.com/recq/recq/sagas/store/storetest"
)

func TestRedisConformance(t *testing.T) {
	srv := testenv.Redis(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		c := testenv.RedisClient(t, srv.Addr)
		if err := c.FlushAll(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		st, err := store.NewRedis(c)
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

func TestRedisEndedExpire(t *testing.T) {
	c := testenv.RedisClient(t, testenv.Redis(t).Addr)
	st, err := store.NewRedis(c, store.WithEndedRetention(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, _ := st.Positions().Claim(ctx, "g.v1", state.Partition{Topic: "g.v1.routed"})
	b := st.Positions().Begin(l)
	_ = b.Do(ctx, func(ctx context.Context) error {
		st.Save(ctx, "g.v1", nil, &store.Instance{ID: "order=o1", Ended: true})
		return nil
	})
	if err := b.Commit(ctx, 1); err != nil {
		t.Fatal(err)
	}
	ttl := c.PTTL(ctx, store.DefaultKeyPrefix+"g.v1:i:order=o1").Val()
	if ttl <= 0 || ttl > time.Minute {
		t.Fatalf("an ended instance's TTL is %v, want up to 1m", ttl)
	}
}

func TestRedisBadConfig(t *testing.T) {
	c := testenv.RedisClient(t, testenv.Redis(t).Addr)
	if _, err := store.NewRedis(c, store.WithEndedRetention(-time.Second)); err == nil || !strings.Contains(err.Error(), "ended retention") {
		t.Fatalf("negative retention: %v", err)
	}
	if _, err := store.NewRedis(nil); err == nil {
		t.Fatal("nil client accepted")
	}
}

func TestRedisUnreachable(t *testing.T) {
	c := testenv.RedisClient(t, testenv.FreeAddr(t))
	st, err := store.NewRedis(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = st.Load(ctx, "g.v1", "order=o1")
	if err == nil || !strings.Contains(err.Error(), "on Redis at") {
		t.Fatalf("unreachable Redis: %v", err)
	}
}

// The folding batches keep the consumers/state contract, handlers' own
// Redis writes included.
func TestRedisPositionsConformance(t *testing.T) {
	srv := testenv.Redis(t)
	var c *redis.Client
	statetest.Run(t, statetest.Harness{
		New: func(t *testing.T) state.Store {
			c = testenv.RedisClient(t, srv.Addr)
			if err := c.FlushAll(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
			st, err := store.NewRedis(c)
			if err != nil {
				t.Fatal(err)
			}
			return st.Positions()
		},
		Add: func(ctx context.Context, _ state.Store, key string, delta int64) {
			state.Redis(ctx).IncrBy(ctx, key, delta)
		},
		Read: func(t *testing.T, _ state.Store, key string) int64 {
			n, err := c.Get(context.Background(), key).Int64()
			if err != nil && !errors.Is(err, redis.Nil) {
				t.Fatal(err)
			}
			return n
		},
	})
}

// A batch of more index entries and deadlines than one command of a batch
// takes (a few thousand arguments) is queued in several.
func TestRedisLargeBatch(t *testing.T) {
	c := testenv.RedisClient(t, testenv.Redis(t).Addr)
	st, err := store.NewRedis(c, store.WithKeyPrefix("large:"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := state.Partition{Topic: "g.v1.routed"}
	l, err := st.Positions().Claim(ctx, "g.v1", p)
	if err != nil {
		t.Fatal(err)
	}
	b := st.Positions().Begin(l)
	const n = 5000
	due := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range n {
		id := "order=o" + strconv.Itoa(i)
		in := &store.Instance{ID: id, Associations: []string{id, "payment=p" + strconv.Itoa(i)},
			Deadlines: []store.Deadline{{ID: "d" + strconv.Itoa(i), Name: "due", Due: due}}}
		if err := b.Do(ctx, func(ctx context.Context) error { st.Save(ctx, "g.v1", nil, in); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(ctx, n); err != nil {
		t.Fatal(err)
	}
	if got := c.HLen(ctx, "large:g.v1:assoc").Val(); got != 2*n {
		t.Fatalf("index has %d entries, want %d", got, 2*n)
	}
	if ds, err := st.Deadlines(ctx, "g.v1", 0); err != nil || len(ds) != n {
		t.Fatalf("%d deadlines pending (%v), want %d", len(ds), err, n)
	}
}
