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
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Recq builds ./cmd/recq once per test binary and returns the executable's
// path. The binary is built with -race when the tests are, so subprocesses
// are checked too.
func Recq(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "recq-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "recq")
		args := []string{"build", "-o", buildPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "github.com/recq/recq/cmd/recq")...)
		cmd.Dir = moduleRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = &buildError{out: string(out), err: err}
		}
	})
	if buildErr != nil {
		t.Fatalf("testenv: build recq: %v", buildErr)
	}
	return buildPath
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
