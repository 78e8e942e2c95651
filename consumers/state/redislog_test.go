package state_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/recq/recq/consumers/state"
)

func TestRedisLoggerWritesSlogLines(t *testing.T) {
	var buf bytes.Buffer
	l := state.RedisLogger(slog.New(slog.NewTextHandler(&buf, nil)))
	l.Printf(context.Background(), "redis: %s:%d: connection pool: %s\n", "pool.go", 42, "retrying")
	got := strings.TrimSpace(buf.String())
	for _, want := range []string{"level=WARN", `msg="redis: pool.go:42: connection pool: retrying"`, "source=go-redis"} {
		if !strings.Contains(got, want) {
			t.Errorf("log line %q lacks %q", got, want)
		}
	}
}
