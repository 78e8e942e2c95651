package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/recq/recq/consumers/state"
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
