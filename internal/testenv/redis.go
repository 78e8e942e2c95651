package testenv

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisServer is a redis-server subprocess on a fixed loopback address. It
// can be stopped and started again on the same address, as an outage would,
// so clients that knew it reconnect.
type RedisServer struct {
	Addr string // host:port

	t       testing.TB
	dir     string
	persist bool
	proc    *Proc
}

// Redis starts a redis-server without persistence on a free loopback port
// and returns once it answers PING. It is killed at cleanup.
func Redis(t testing.TB) *RedisServer {
	t.Helper()
	r := &RedisServer{Addr: FreeAddr(t), t: t, dir: t.TempDir()}
	r.Start()
	return r
}

// RedisPersistent is Redis with an append-only file synced on every write:
// a Stop (SIGKILL) and Start keep everything acknowledged, as a Redis with
// persistence on a real disk would.
func RedisPersistent(t testing.TB) *RedisServer {
	t.Helper()
	r := &RedisServer{Addr: FreeAddr(t), t: t, dir: t.TempDir(), persist: true}
	r.Start()
	return r
}

// Start starts the server again after Stop, on the same address: empty, or
// with its data for a RedisPersistent. Call it from the test's goroutine: it
// fails the test if the server does not come up.
func (r *RedisServer) Start() {
	r.t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		r.t.Fatal("redis-server not found: install it with 'apt-get install redis-server' (make test does this when run as root)")
	}
	_, port, _ := strings.Cut(r.Addr, ":")
	// Redis has logged this line since 2.x, once it accepts connections.
	aof := []string{"--appendonly", "no"}
	if r.persist {
		aof = []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
	args := append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--dir", r.dir}, aof...)
	r.proc = Start(r.t, "Ready to accept connections", bin, args...)
	r.ping()
}

// RedisClient returns a client of the server at addr, closed at cleanup.
// It does not retry a failed command (MaxRetries -1): the code under test
// decides what to retry.
func RedisClient(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop kills the server (SIGKILL, as a crash would) and waits until it has
// exited, so the address refuses connections when Stop returns.
func (r *RedisServer) Stop() { r.proc.Kill9() }

// ping checks that the server answers; the log line Start waited for says
// only that it listens.
func (r *RedisServer) ping() {
	r.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		r.t.Fatalf("testenv: redis-server on %s does not answer PING: %v\n%s", r.Addr, err, r.proc.Output())
	}
}
