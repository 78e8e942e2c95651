package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/recq/recq/schema/kafkastore"
	"github.com/recq/recq/schema/registry"
)

// registryConfig is what `recq registry` and `recq dev` need to serve the
// schema registry.
type registryConfig struct {
	addr     string
	topic    string
	authFile string
	maxBytes int64
	addrFlag string // the flag that sets addr, for the "address in use" hint
}

func (c *registryConfig) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.topic, "schemas-topic", kafkastore.DefaultTopic, "compacted topic the registry keeps its data on")
	cmd.Flags().StringVar(&c.authFile, "auth-file", "", "require HTTP basic auth; file of user:password lines")
	cmd.Flags().Int64Var(&c.maxBytes, "max-request-bytes", registry.DefaultMaxRequestBytes, "largest request body accepted (larger: 413)")
}

// runningRegistry is a registry serving HTTP until stop is called.
type runningRegistry struct {
	url  string
	stop func()
}

// startRegistry opens the registry's log on Kafka and serves the registry's
// REST API on cfg.addr.
func startRegistry(ctx context.Context, cfg registryConfig, brokers []string) (*runningRegistry, error) {
	var opts []registry.Option
	if cfg.authFile != "" {
		users, err := registry.LoadAuthFile(cfg.authFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, registry.WithAuth(users))
	}
	opts = append(opts, registry.WithMaxRequestBytes(cfg.maxBytes))
	ln, err := net.Listen("tcp", cfg.addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("registry address %s is already in use (another registry?); choose another with %s", cfg.addr, cfg.addrFlag)
	}
	if err != nil {
		return nil, fmt.Errorf("registry: listen on %s: %w", cfg.addr, err)
	}
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, err := kafkastore.Open(openCtx, brokers, cfg.topic)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("registry: %w", err)
	}
	srv, err := registry.New(store, opts...)
	if err != nil {
		ln.Close()
		store.Close()
		return nil, err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(ln) // returns when Shutdown closes the listener
	}()
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
		<-done
		srv.Close()
		store.Close()
	}
	return &runningRegistry{url: "http://" + ln.Addr().String(), stop: stop}, nil
}

func newRegistryCmd(g *globals) *cobra.Command {
	cfg := registryConfig{addrFlag: "--addr"}
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Serve the Confluent-compatible schema registry (Avro), stored on Kafka",
		Long: `Serve a schema registry that speaks the Confluent Schema Registry REST API v1
for Avro, so any Confluent client (and recq) can use it. Its data lives on a
compacted Kafka topic (--schemas-topic), so it survives restarts and several
instances on the same topic serve the same data and never hand out one
schema id twice.

recq dev already runs one; use this command in production or to run more.`,
		Example: `  recq registry --addr :8081 --brokers kafka-1:9092,kafka-2:9092
  recq registry --addr 127.0.0.1:18081 --auth-file users.txt`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			cl.Close()
			reg, err := startRegistry(cmd.Context(), cfg, g.brokerList())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "recq registry: serving %s (data on topic %s at %s)\n", reg.url, cfg.topic, g.brokers)
			fmt.Fprintln(cmd.OutOrStdout(), "recq registry: ready; Ctrl-C to stop")
			<-cmd.Context().Done()
			reg.stop()
			fmt.Fprintln(cmd.OutOrStdout(), "recq registry: stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&cfg.addr, "addr", "127.0.0.1:8081", "host:port the registry listens on")
	cfg.flags(cmd)
	return cmd
}
