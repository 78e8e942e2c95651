// Command saga runs the shop's fulfilment saga (group shop.fulfilment.v1):
// it requests the payment of every order placed, ships the orders paid in
// time and cancels (and refunds, if need be) the others, until SIGINT or
// SIGTERM.
//
//	go run ./examples/shop/saga                                  # memory store: rebuilt from the topics at every start
//	go run ./examples/shop/saga -redis 127.0.0.1:6379 -instance a -payment-timeout 1m
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

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/consumers"
	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/examples/shop"
	"github.com/recq/recq/health"
	"github.com/recq/recq/sagas"
	"github.com/recq/recq/sagas/store"
	"github.com/recq/recq/tracing"
)

type config struct {
	metricsAddr string // Prometheus /metrics; off when empty
	brokers     []string
	registry    string
	partitions  int
	routed      int
	redis       string
	instance    string
	session     time.Duration
	send        time.Duration
	http        string
	saga        shop.SagaConfig
}

func main() {
	var c config
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka brokers, comma-separated")
	flag.StringVar(&c.registry, "registry", "http://127.0.0.1:8081", "schema registry URL")
	flag.StringVar(&c.metricsAddr, "metrics-addr", "", "host:port to serve Prometheus metrics on, /metrics (off when empty)")
	flag.IntVar(&c.partitions, "partitions", 4, "partitions of the shop topics when creating them (the aggregates make the same)")
	flag.IntVar(&c.routed, "routed-partitions", 0, "partitions of the saga's routed topic when creating it (0: as many as the widest input topic): how many instances are handled at once, and how many members can share them")
	flag.StringVar(&c.redis, "redis", "", "Redis for the saga store (instances, deadlines, positions): redis://host:port/db or host:port (empty: memory, rebuilt from the topics at every start)")
	flag.StringVar(&c.instance, "instance", "", "static group member id, e.g. the pod name (a restart within the session timeout keeps its partitions)")
	flag.DurationVar(&c.session, "session-timeout", 0, "how long the group waits for a member that stopped answering (0: franz-go's default, 45s)")
	flag.DurationVar(&c.send, "send-timeout", 0, "how long a command waits for its answer before the handler is retried (0: 30s)")
	flag.DurationVar(&c.saga.PaymentTimeout, "payment-timeout", shop.DefaultPaymentTimeout, "how long after an order is placed its payment is due")
	flag.StringVar(&c.http, "http", "", "address serving /health/ (livez, readyz, status) and /sagas/ (the instances, for recq sagas --http); empty: none")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `Usage: saga [flags]

Runs the shop.fulfilment saga over the shop.orders and shop.payments
aggregates (run them with ../aggregates) on the brokers and registry given.

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
		fmt.Fprintln(os.Stderr, "shop saga:", err)
		os.Exit(1)
	}
	fmt.Println("shop saga: stopped")
}

func run(ctx context.Context, c config) error {
	// Tracing is off unless OTEL_EXPORTER_OTLP_ENDPOINT or SENTRY_DSN is set,
	// metrics unless -metrics-addr is; the shutdown flushes.
	shutdown, err := tracing.Setup(ctx, tracing.WithServiceName("shop-saga"), tracing.WithMetricsAddr(c.metricsAddr))
	if err != nil {
		return err
	}
	defer shutdown(context.WithoutCancel(ctx))
	serde, err := shop.Connect(ctx, c.brokers, c.registry, int32(c.partitions))
	if err != nil {
		return err
	}
	st := store.NewMemory()
	if c.redis != "" {
		o, err := shop.RedisOptions(c.redis)
		if err != nil {
			return err
		}
		rdb := redis.NewClient(o)
		defer rdb.Close()
		if st, err = store.NewRedis(rdb); err != nil {
			return err
		}
	}
	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	iv, err := aggregates.NewInvoker(setup, c.brokers, serde)
	if err != nil {
		return err
	}
	defer iv.Close()
	saga := shop.Saga(c.saga)
	r, err := sagas.NewRunner(saga, serde, c.brokers, iv, sagas.WithStore(st), sagas.WithSendTimeout(c.send),
		sagas.WithRoutedPartitions(int32(c.routed)),
		sagas.WithRunnerOptions(consumers.WithInstanceID(c.instance), consumers.WithSessionTimeout(c.session)))
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
		mux.Handle("/sagas/", sagas.InspectHandler(r.Group(), st)) // recq sagas list|show --http
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}
	fmt.Println("shop saga: ready", r.Group())
	go func() {
		if r.WaitHead(ctx) == nil {
			fmt.Println("shop saga: at head")
		}
	}()
	if err := r.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// redisOptions reads a redis:// URL or a bare host:port.
