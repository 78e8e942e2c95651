// Command service runs the whole TodoList system in one process: the
// aggregate, the lists projector and projection, the completion observer
// and the HTTP API with its page. `make run` starts it beside recq dev.
//
//	go run ./examples/todo/service                          # memory read model, on recq dev
//	go run ./examples/todo/service --redis 127.0.0.1:6379   # read model, positions and snapshots in Redis
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
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/examples/todo"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/tracing"
)

type config struct {
	metricsAddr string // Prometheus /metrics; off when empty
	httpAddr    string
	brokers     string
	registry    string
	redis       string
	todo        todo.Config
}

func main() {
	var c config
	flag.StringVar(&c.httpAddr, "http-addr", "127.0.0.1:8080", "address of the HTTP API and page")
	flag.StringVar(&c.brokers, "brokers", "127.0.0.1:9092", "Kafka brokers, comma-separated")
	flag.StringVar(&c.registry, "registry", "http://127.0.0.1:8081", "schema registry URL")
	flag.StringVar(&c.metricsAddr, "metrics-addr", "", "host:port to serve Prometheus metrics on, /metrics (off when empty)")
	flag.StringVar(&c.redis, "redis", "", "Redis for the read model, positions, dedupe and snapshots: redis://host:port/db or host:port (empty: memory, rebuilt at every start)")
	partitions := flag.Int("partitions", 4, "partitions of the todolist topics when creating them")
	flag.StringVar(&c.todo.Instance, "instance", "", "stable identity of this process: a restart with the same one fences its crashed predecessor at once")
	flag.DurationVar(&c.todo.CommandTimeout, "command-timeout", 5*time.Second, "how long a request waits for its command or read; then 503")
	flag.DurationVar(&c.todo.SessionTimeout, "session-timeout", 10*time.Second, "how long the aggregate's group waits for a crashed member before its commands move on")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `Usage: service [flags]

Runs the TodoList system (aggregate, projector, projection, observer, HTTP
API and page at /) on the brokers and registry given.

Examples:
  service                                    # on recq dev (make run starts both)
  service --redis 127.0.0.1:6379 --instance a
  curl -s -XPOST localhost:8080/lists -d '{"title":"groceries","owner":"ann"}'

Flags:
`)
		flag.PrintDefaults()
	}
	flag.Parse()
	c.todo.Partitions = int32(*partitions)
	redis.SetLogger(state.RedisLogger(slog.Default()))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "todo service:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	// Tracing is off unless OTEL_EXPORTER_OTLP_ENDPOINT or SENTRY_DSN is set,
	// metrics unless -metrics-addr is; the shutdown flushes.
	shutdown, err := tracing.Setup(ctx, tracing.WithServiceName("todo-service"), tracing.WithMetricsAddr(c.metricsAddr))
	if err != nil {
		return err
	}
	defer shutdown(context.WithoutCancel(ctx))
	c.todo.Brokers = strings.Split(c.brokers, ",")
	src, err := sr.NewClient(sr.URLs(c.registry))
	if err != nil {
		return err
	}
	if c.todo.Serde, err = schema.NewSerde(src, schema.WithAutoRegister(true)); err != nil {
		return err
	}
	if c.redis != "" {
		opts, err := redisOptions(c.redis)
		if err != nil {
			return err
		}
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		c.todo.Redis = rdb
	}
	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sys, err := todo.New(setup, c.todo)
	if err != nil {
		return err
	}
	defer sys.Close()
	ln, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sys.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("todo service: ready on http://%s\n", ln.Addr())
	err = sys.Run(ctx)
	fmt.Println("todo service: stopping")
	// Open event streams would hold Shutdown: they end with the context
	// of their requests, which Close cancels after a grace period.
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer scancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		srv.Close()
	}
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err == nil {
		fmt.Println("todo service: stopped")
	}
	return err
}

// redisOptions reads a redis:// URL or a bare host:port.
func redisOptions(v string) (*redis.Options, error) {
	if strings.Contains(v, "://") {
		o, err := redis.ParseURL(v)
		if err != nil {
			return nil, fmt.Errorf("--redis %q: %w (want redis://host:port/db or host:port)", v, err)
		}
		return o, nil
	}
	return &redis.Options{Addr: v}, nil
}
