package snapshot_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recq/recq/aggregates/snapshot"
	"github.com/recq/recq/aggregates/snapshot/snapshottest"
	"github.com/recq/recq/internal/testenv"
)

func TestMemory(t *testing.T) {
	snapshottest.Run(t, func(*testing.T) snapshot.Store { return snapshot.NewMemory() })
}

func TestRedis(t *testing.T) {
	c := testenv.RedisClient(t, testenv.Redis(t).Addr)
	snapshottest.Run(t, func(t *testing.T) snapshot.Store {
		// Every subtest has its own keys in the one server.
		return redisStore(t, c, snapshot.WithKeyPrefix(t.Name()+":"))
	})
}

func redisStore(t testing.TB, c *redis.Client, opts ...snapshot.RedisOption) snapshot.Store {
	t.Helper()
	s, err := snapshot.NewRedis(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testSnapshot(version int64) snapshot.Snapshot {
	return snapshot.Snapshot{Aggregate: "todo", ID: "a:b", Version: version, State: make([]byte, 1024), Offset: version}
}

// TestRedisKeys checks the documented key layout and that expiry follows
// the latest save's configuration.
func TestRedisKeys(t *testing.T) {
	c := testenv.RedisClient(t, testenv.Redis(t).Addr)
	ctx := t.Context()
	const key = snapshot.DefaultKeyPrefix + "todo:a:b"

	if err := redisStore(t, c, snapshot.WithTTL(time.Hour)).Save(ctx, testSnapshot(1)); err != nil {
		t.Fatal(err)
	}
	if ttl := c.PTTL(ctx, key).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("PTTL %s = %v after a save with TTL 1h", key, ttl)
	}
	if err := redisStore(t, c).Save(ctx, testSnapshot(2)); err != nil {
		t.Fatal(err)
	}
	// PTTL answers -1 for a key without expiry.
	if ttl := c.PTTL(ctx, key).Val(); ttl != -1 {
		t.Fatalf("PTTL %s = %v after a save without TTL, want no expiry", key, ttl)
	}
}

// TestRedisForeignKey checks that a key holding something else is reported
// as such, naming the key, rather than read as a snapshot.
func TestRedisForeignKey(t *testing.T) {
	c := testenv.RedisClient(t, testenv.Redis(t).Addr)
	ctx := t.Context()
	s := redisStore(t, c)
	c.HSet(ctx, snapshot.DefaultKeyPrefix+"todo:hash", "version", "x")
	c.Set(ctx, snapshot.DefaultKeyPrefix+"todo:string", "x", 0)

	if _, err := s.Load(ctx, "todo", "hash"); err == nil || !strings.Contains(err.Error(), "does not hold a snapshot") {
		t.Errorf("Load of a foreign hash = %v, want 'does not hold a snapshot'", err)
	}
	var reply redis.Error
	if err := s.Save(ctx, snapshot.Snapshot{Aggregate: "todo", ID: "string", Version: 1}); !errors.As(err, &reply) {
		t.Errorf("Save over a string = %v, want Redis's WRONGTYPE", err)
	}
}

// TestRedisDown checks that an unreachable Redis is an error that says so,
// within the client's timeouts, and that the store works again once Redis
// is back.
func TestRedisDown(t *testing.T) {
	srv := testenv.Redis(t)
	c := redis.NewClient(&redis.Options{
		Addr:          srv.Addr,
		DialTimeout:   200 * time.Millisecond,
		ReadTimeout:   200 * time.Millisecond,
		MaxRetries:    -1,
		DialerRetries: 1,
	})
	t.Cleanup(func() { c.Close() })
	s := redisStore(t, c)
	ctx := t.Context()
	if err := s.Save(ctx, testSnapshot(1)); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	start := time.Now()
	_, loadErr := s.Load(ctx, "todo", "a:b")
	for i, err := range []error{loadErr, s.Save(ctx, testSnapshot(2)), s.Delete(ctx, "todo", "a:b")} {
		if err == nil || !strings.Contains(err.Error(), "Redis at "+srv.Addr+" is unreachable") {
			t.Errorf("%s with Redis down = %v, want 'Redis at %s is unreachable'", []string{"Load", "Save", "Delete"}[i], err, srv.Addr)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("three operations on a stopped Redis took %v", d)
	}

	srv.Start()
	// The first command may still meet a pooled connection to the old
	// process; the caller's retry is what recovers.
	deadline := time.Now().Add(5 * time.Second)
	for err := s.Save(ctx, testSnapshot(3)); err != nil; err = s.Save(ctx, testSnapshot(3)) {
		if time.Now().After(deadline) {
			t.Fatalf("Save after Redis restarted: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRedisConfig(t *testing.T) {
	for _, ttl := range []time.Duration{-time.Second, time.Microsecond} {
		if err := (snapshot.RedisConfig{TTL: ttl}).Validate(); err == nil {
			t.Errorf("Validate(TTL %v) = nil, want an error", ttl)
		}
	}
	if err := (snapshot.RedisConfig{}).Validate(); err != nil {
		t.Errorf("zero RedisConfig: %v", err)
	}
	c := testenv.RedisClient(t, "127.0.0.1:1") // never dialled
	if _, err := snapshot.NewRedis(c, snapshot.WithTTL(-1)); err == nil {
		t.Error("NewRedis with a negative TTL: no error")
	}
	if _, err := snapshot.NewRedis(nil); err == nil {
		t.Error("NewRedis without a client: no error")
	}
}

func BenchmarkSave(b *testing.B) {
	benchStores(b, func(b *testing.B, s snapshot.Store) {
		snap := testSnapshot(0)
		for b.Loop() {
			snap.Version++ // a higher version each time, so every save writes
			if err := s.Save(b.Context(), snap); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkLoad(b *testing.B) {
	benchStores(b, func(b *testing.B, s snapshot.Store) {
		if err := s.Save(b.Context(), testSnapshot(1)); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := s.Load(b.Context(), "todo", "a:b"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchStores runs bench on each store with a 1 KiB state.
func benchStores(b *testing.B, bench func(b *testing.B, s snapshot.Store)) {
	b.Run("memory", func(b *testing.B) { bench(b, snapshot.NewMemory()) })
	b.Run("redis", func(b *testing.B) {
		bench(b, redisStore(b, testenv.RedisClient(b, testenv.Redis(b).Addr)))
	})
}
