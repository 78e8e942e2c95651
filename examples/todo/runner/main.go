// Command runner serves the TodoList aggregate: it creates the todo topics
// if needed and handles commands exactly once until SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/aggregates/snapshot"
	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/examples/todo"
	"github.com/recq/recq/health"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

type config struct {
	brokers    []string
	registry   string
	partitions int32
	instance   string
	session    time.Duration
	cache      int
	redis      string
	every      int64
	http       string
}

func main() {
	var c config
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka brokers, comma-separated")
	flag.StringVar(&c.registry, "registry", "http://127.0.0.1:8081", "schema registry URL")
	partitions := flag.Int("partitions", 8, "partitions of the todo topics when creating them")
	flag.DurationVar(&c.session, "session-timeout", 0, "how long the group waits for a crashed member (0: franz-go's default, 45s)")
	flag.StringVar(&c.instance, "instance", "", "stable identity of this runner (a restart with the same one fences its crashed predecessor at once)")
	flag.IntVar(&c.cache, "cache-size", 0, "aggregates kept loaded (0: 10000); the rest are reloaded from snapshot and events")
	flag.StringVar(&c.redis, "redis", "", "Redis address for snapshots (empty: no snapshots)")
	flag.Int64Var(&c.every, "snapshot-every", aggregates.DefaultSnapshotEvery, "events between snapshots (with -redis)")
	flag.StringVar(&c.http, "http", "", "address to serve /health/ (livez, readyz, status); empty: none")
	flag.Parse()
	c.brokers, c.partitions = strings.Split(*brokers, ","), int32(*partitions)
	redis.SetLogger(state.RedisLogger(slog.Default()))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "todo runner:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cl, err := streams.Dial(setup, c.brokers)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := aggregates.EnsureTopics(setup, streams.NewAdmin(cl), todo.Name, c.partitions); err != nil {
		return err
	}
	src, err := sr.NewClient(sr.URLs(c.registry))
	if err != nil {
		return err
	}
	serde, err := schema.NewSerde(src, schema.WithAutoRegister(true))
	if err != nil {
		return err
	}
	opts := []aggregates.RunnerOption{aggregates.WithInstanceID(c.instance), aggregates.WithSessionTimeout(c.session), aggregates.WithCacheSize(c.cache)}
	if c.redis != "" {
		rdb := redis.NewClient(&redis.Options{Addr: c.redis})
		defer rdb.Close()
		store, err := snapshot.NewRedis(rdb)
		if err != nil {
			return err
		}
		opts = append(opts, aggregates.WithSnapshots(store, c.every))
	}
	r, err := aggregates.NewRunner(todo.Aggregate(), crashing(serde), c.brokers, opts...)
	if err != nil {
		return err
	}
	if c.http != "" {
		ln, err := net.Listen("tcp", c.http)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/health/", http.StripPrefix("/health", health.Handler(r)))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}
	fmt.Println("todo runner: ready")
	return r.Run(ctx)
}

// crashing is fault injection for crash tests: with RECQ_CRASH_AT_EVENT=N
// the process kills itself (SIGKILL) while encoding its N-th event, after a
// pause that lets the events before it in the transaction reach the broker:
// it dies with a transaction open that holds events and no offsets yet, the
// state an unfenced successor has to wait out.
func crashing(codec aggregates.Codec) aggregates.Codec {
	n, _ := strconv.Atoi(os.Getenv("RECQ_CRASH_AT_EVENT"))
	if n <= 0 {
		return codec
	}
	return &crashCodec{Codec: codec, at: int64(n)}
}

type crashCodec struct {
	aggregates.Codec
	at    int64
	count atomic.Int64
}

func (c *crashCodec) Encode(ctx context.Context, topic string, v any) ([]byte, string, error) {
	if topic == aggregates.EventsTopic(todo.Name) && c.count.Add(1) == c.at {
		time.Sleep(300 * time.Millisecond)
		fmt.Println("todo runner: killing itself in a transaction, at event", c.at)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	return c.Codec.Encode(ctx, topic, v)
}
