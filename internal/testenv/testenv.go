// Package testenv starts the real parts recq's tests run against: the
// embedded broker over TCP, redis-server on a free port, and the built recq
// binary. Everything started is stopped by t.Cleanup.
package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/internal/broker"
	"github.com/recq/recq/streams"
)

// Kafka starts an in-memory embedded broker on a free loopback port and
// returns its address.
func Kafka(t testing.TB) string {
	t.Helper()
	b, err := broker.Start(broker.Config{})
	if err != nil {
		t.Fatalf("testenv: start broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b.Addr()
}

// Client returns a recq-default client for addr, closed at cleanup.
func Client(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := streams.NewClient([]string{addr}, opts...)
	if err != nil {
		t.Fatalf("testenv: client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Topic creates a topic with n partitions on the broker at addr.
func Topic(t testing.TB, addr, name string, n int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := streams.NewAdmin(Client(t, addr)).CreateTopic(ctx, streams.TopicSpec{Name: name, Partitions: n}); err != nil {
		t.Fatalf("testenv: create topic %s: %v", name, err)
	}
}

var (
	buildMu sync.Mutex
	built   = map[string]*buildResult{}
)

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// Recq builds ./cmd/recq once per test binary and returns the executable's
// path.
func Recq(t testing.TB) string {
	t.Helper()
	return Binary(t, "github.com/recq/recq/cmd/recq")
}

// Binary builds the main package pkg once per test binary and returns the
// executable's path. It is built with -race when the tests are, so
// subprocesses are checked too.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	b := built[pkg]
	if b == nil {
		b = &buildResult{}
		built[pkg] = b
	}
	buildMu.Unlock()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "recq-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, filepath.Base(pkg))
		args := []string{"build", "-o", b.path}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = &buildError{out: string(out), err: err}
		}
	})
	if b.err != nil {
		t.Fatalf("testenv: build %s: %v", pkg, b.err)
	}
	return b.path
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// ReadTopic returns every committed record of topic up to its current end.
func ReadTopic(t testing.TB, addr, topic string) []*kgo.Record {
	t.Helper()
	rd, err := streams.NewReader([]string{addr}, streams.WithTopics(topic), streams.WithStopAtEnd())
	if err != nil {
		t.Fatalf("testenv: read %s: %v", topic, err)
	}
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	recs, err := rd.ReadAll(ctx)
	if err != nil {
		t.Fatalf("testenv: read %s: %v", topic, err)
	}
	return recs
}
