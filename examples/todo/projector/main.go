// Command projector runs the TodoList stats projector: per-list counts and
// minute sums in Redis, written exactly once with the positions, served over
// HTTP with readiness probes, until SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
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

	"github.com/recq/recq/consumers"
	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/examples/todo"
	"github.com/recq/recq/health"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

type config struct {
	brokers  []string
	registry string
	redis    string
	version  int
	instance string
	session  time.Duration
	maxPoll  int
	http     string
}

func main() {
	var c config
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka brokers, comma-separated")
	flag.StringVar(&c.registry, "registry", "http://127.0.0.1:8081", "schema registry URL")
	flag.StringVar(&c.redis, "redis", "127.0.0.1:6379", "Redis address: the read model and the positions")
	flag.IntVar(&c.version, "version", 1, "projector version: a new one rebuilds the stats from the beginning (group todo.stats.v<version>)")
	flag.StringVar(&c.instance, "instance", "", "static group member id, e.g. the pod name (a restart within the session timeout keeps its partitions)")
	flag.DurationVar(&c.session, "session-timeout", 0, "how long the group waits for a crashed member (0: franz-go's default, 45s)")
	flag.IntVar(&c.maxPoll, "max-poll", 0, "records per poll (0: 50000)")
	flag.StringVar(&c.http, "http", "", "address to serve /query/ (the projection) and /health/ (livez, readyz, status); empty: none")
	flag.Parse()
	c.brokers = strings.Split(*brokers, ",")
	redis.SetLogger(state.RedisLogger(slog.Default()))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "todo projector:", err)
		os.Exit(1)
	}
}

// crashHooks is fault injection for crash tests: with
// RECQ_CRASH_AFTER_DEAD=N the process kills itself (SIGKILL) right after
// writing its N-th dead event, before the batch holding it commits.
func crashHooks() deadletter.Hooks {
	n, _ := strconv.Atoi(os.Getenv("RECQ_CRASH_AFTER_DEAD"))
	if n <= 0 {
		return deadletter.Hooks{}
	}
	var dead atomic.Int32
	return deadletter.Hooks{Dead: func(e deadletter.Entry) {
		if dead.Add(1) == int32(n) {
			fmt.Println("todo projector: killing itself after writing dead event", e.ID)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}}
}

// freezing is fault injection for the zombie test: with
// RECQ_FREEZE_ON_SIGUSR1=1, a SIGUSR1 makes the process stop itself
// (SIGSTOP) while it decodes the next event it handles, so it is frozen
// with a batch in hand, as a long pause of the whole process would freeze
// it, until SIGCONT.
func freezing(codec streams.TypedCodec) streams.TypedCodec {
	if os.Getenv("RECQ_FREEZE_ON_SIGUSR1") != "1" {
		return codec
	}
	f := &freezingCodec{TypedCodec: codec}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	go func() {
		for range ch {
			f.armed.Store(true)
		}
	}()
	return f
}

type freezingCodec struct {
	streams.TypedCodec
	armed atomic.Bool
}

func (f *freezingCodec) Decode(ctx context.Context, topic string, value []byte, into any) error {
	if f.armed.CompareAndSwap(true, false) {
		fmt.Println("todo projector: freezing itself (SIGSTOP) with an event in hand")
		_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP)
		fmt.Println("todo projector: resumed")
	}
	return f.TypedCodec.Decode(ctx, topic, value, into)
}

func run(ctx context.Context, c config) error {
	src, err := sr.NewClient(sr.URLs(c.registry))
	if err != nil {
		return err
	}
	serde, err := schema.NewSerde(src, schema.WithAutoRegister(true))
	if err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: c.redis})
	defer rdb.Close()
	store, err := state.NewRedis(rdb)
	if err != nil {
		return err
	}
	r, err := consumers.NewRunner(todo.StatsProjector(c.version), freezing(serde), c.brokers,
		consumers.WithStore(store), consumers.WithInstanceID(c.instance),
		consumers.WithSessionTimeout(c.session), consumers.WithMaxPollRecords(c.maxPoll),
		consumers.WithHooks(crashHooks()))
	if err != nil {
		return err
	}
	if c.http != "" {
		ln, err := net.Listen("tcp", c.http)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/query/", http.StripPrefix("/query", todo.StatsProjection(rdb, r, r.Group()).Handler()))
		mux.Handle("/health/", http.StripPrefix("/health", health.Handler(r)))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}
	fmt.Println("todo projector: running", r.Group())
	go func() {
		if r.WaitHead(ctx) == nil {
			fmt.Println("todo projector: at head")
		}
	}()
	err = r.Run(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
