// Command aggregates runs the shop's two aggregates, shop.orders and
// shop.payments, in one process: it creates their topics if needed,
// registers their schemas and handles commands exactly once until SIGINT
// or SIGTERM.
//
//	go run ./examples/shop/aggregates                    # on recq dev
//	go run ./examples/shop/aggregates -instance a -http 127.0.0.1:8090
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
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/aggregates/snapshot"
	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/examples/shop"
	"github.com/recq/recq/health"
	"github.com/recq/recq/tracing"
)

type config struct {
	metricsAddr string // Prometheus /metrics; off when empty
	brokers     []string
	registry    string
	partitions  int
	instance    string
	session     time.Duration
	redis       string
	http        string
}

func main() {
	var c config
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka brokers, comma-separated")
	flag.StringVar(&c.registry, "registry", "http://127.0.0.1:8081", "schema registry URL")
	flag.StringVar(&c.metricsAddr, "metrics-addr", "", "host:port to serve Prometheus metrics on, /metrics (off when empty)")
	flag.IntVar(&c.partitions, "partitions", 4, "partitions of the shop topics when creating them")
	flag.StringVar(&c.instance, "instance", "", "stable identity of this process: a restart with the same one fences its crashed predecessor at once")
	flag.DurationVar(&c.session, "session-timeout", 10*time.Second, "how long the groups wait for a member that stopped answering")
	flag.StringVar(&c.redis, "redis", "", "Redis for the aggregates' snapshots: redis://host:port/db or host:port (empty: no snapshots, state rebuilt from the events)")
	flag.StringVar(&c.http, "http", "", "address serving /health/ (livez, readyz, status); empty: none")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `Usage: aggregates [flags]

Runs the shop.orders and shop.payments aggregates on the brokers and
registry given (send them commands with recq send or an aggregates.Invoker).

Flags:
`)
		flag.PrintDefaults()
	}
	flag.Parse()
	c.brokers = strings.Split(*brokers, ",")
	redis.SetLogger(state.RedisLogger(slog.Default()))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "shop aggregates:", err)
		os.Exit(1)
	}
	fmt.Println("shop aggregates: stopped")
}

func run(ctx context.Context, c config) error {
	// Tracing is off unless OTEL_EXPORTER_OTLP_ENDPOINT or SENTRY_DSN is set,
	// metrics unless -metrics-addr is; the shutdown flushes.
	shutdown, err := tracing.Setup(ctx, tracing.WithServiceName("shop-aggregates"), tracing.WithMetricsAddr(c.metricsAddr))
	if err != nil {
		return err
	}
	defer shutdown(context.WithoutCancel(ctx))
	serde, err := shop.Connect(ctx, c.brokers, c.registry, int32(c.partitions))
	if err != nil {
		return err
	}
	opts := []aggregates.RunnerOption{aggregates.WithInstanceID(c.instance), aggregates.WithSessionTimeout(c.session)}
	if c.redis != "" {
		o, err := shop.RedisOptions(c.redis)
		if err != nil {
			return err
		}
		rdb := redis.NewClient(o)
		defer rdb.Close()
		snaps, err := snapshot.NewRedis(rdb)
		if err != nil {
			return err
		}
		opts = append(opts, aggregates.WithSnapshots(snaps, aggregates.DefaultSnapshotEvery))
	}
	orders, err := aggregates.NewRunner(shop.Orders(), serde, c.brokers, opts...)
	if err != nil {
		return err
	}
	payments, err := aggregates.NewRunner(shop.Payments(), serde, c.brokers, opts...)
	if err != nil {
		return err
	}
	if c.http != "" {
		ln, err := net.Listen("tcp", c.http)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/health/", http.StripPrefix("/health", health.Handler(orders, payments)))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}
	fmt.Println("shop aggregates: ready")
	ctx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	var wg sync.WaitGroup
	runs := []func(context.Context) error{orders.Run, payments.Run}
	errs := make([]error, len(runs))
	for i, run := range runs {
		wg.Go(func() {
			// One runner ending stops the other: the process is then
			// restarted whole.
			if errs[i] = run(ctx); errs[i] != nil {
				cancelRun()
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if errors.Is(err, context.Canceled) {
			errs[i] = nil // stopped by the signal, or by the other runner's error
		}
	}
	return errors.Join(errs...)
}

// redisOptions reads a redis:// URL or a bare host:port.
