package dedupe_test

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recq/recq/consumers/dedupe"
	"github.com/recq/recq/consumers/dedupe/dedupetest"
	"github.com/recq/recq/internal/testenv"
)

func TestMemory(t *testing.T) {
	dedupetest.Run(t, func(t *testing.T, ttl time.Duration) dedupe.Store {
		s, err := dedupe.NewMemory(dedupe.WithMemoryTTL(ttl))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestMemoryBounded(t *testing.T) {
	s, err := dedupe.NewMemory(dedupe.WithMaxSize(3))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c", "d"} {
		_ = s.Mark(ctx, "g", id)
	}
	got, _ := s.Seen(ctx, "g", "a", "b", "c", "d")
	if got[0] || !got[1] || !got[3] {
		t.Fatalf("size 3 after 4 marks: %v; want the oldest (a) forgotten", got)
	}
	if _, err := dedupe.NewMemory(dedupe.WithMaxSize(-1)); err == nil {
		t.Fatal("negative size accepted")
	}
}

func TestRedis(t *testing.T) {
	srv := testenv.Redis(t)
	rdb := testenv.RedisClient(t, srv.Addr)
	var n atomic.Int64
	dedupetest.Run(t, func(t *testing.T, ttl time.Duration) dedupe.Store {
		s, err := dedupe.NewRedis(rdb, dedupe.WithTTL(ttl), dedupe.WithKeyPrefix("t"+strconv.FormatInt(n.Add(1), 10)+":"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})

	t.Run("Unreachable", func(t *testing.T) {
		s, _ := dedupe.NewRedis(rdb)
		ctx := context.Background()
		srv.Stop()
		if _, err := s.Seen(ctx, "g", "x"); err == nil || !strings.Contains(err.Error(), srv.Addr) || !strings.Contains(err.Error(), "redis-server running") {
			t.Fatalf("Seen with Redis down: %v", err)
		}
		if err := s.Mark(ctx, "g", "x"); err == nil || !strings.Contains(err.Error(), srv.Addr) {
			t.Fatalf("Mark with Redis down: %v", err)
		}
		srv.Start()
		if err := s.Mark(ctx, "g", "x"); err != nil {
			t.Fatalf("Mark after restart: %v", err)
		}
		if got, err := s.Seen(ctx, "g", "x"); err != nil || !got[0] {
			t.Fatalf("Seen after restart: %v %v", got, err)
		}
	})
}

func TestRedisConfig(t *testing.T) {
	if _, err := dedupe.NewRedis(nil); err == nil {
		t.Error("nil client accepted")
	}
	if _, err := dedupe.NewRedis(redis.NewClient(&redis.Options{}), dedupe.WithTTL(time.Microsecond)); err == nil {
		t.Error("sub-millisecond TTL accepted")
	}
}
