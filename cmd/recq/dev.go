package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/recq/recq/internal/broker"
)

func newDevCmd() *cobra.Command {
	var cfg broker.Config
	var minFreeMB int64
	var metricsAddr string
	reg := registryConfig{addrFlag: "--registry-addr"}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the embedded dev platform: a persistent Kafka-protocol broker",
		Long: `Run everything a developer needs in one process, with no services installed:
a Kafka-protocol broker (franz-go's kfake) that any Kafka client can use
(kcat, librdkafka, kafkajs, franz-go), and the schema registry
(Confluent-compatible REST API, data on the broker's _schemas topic).

Records, topics and committed group offsets are kept under --data-dir and
survive a restart. Without --sync-writes, data survives a killed process
(the OS keeps what was written) but not a power loss.

Like Apache Kafka with its defaults (auto.create.topics.enable=true,
num.partitions=1), the broker creates a topic that a client asks for and
does not find, with --auto-create-partitions partitions (default 1), and
says so on stderr. Clients that ask are kcat, librdkafka and kafkajs
producers (and kafkajs consumers, and kcat -L -t NAME): they produce to a
topic nobody created.
franz-go clients, and so every recq command, do not ask: recq produce and
recq consume still refuse a missing topic. Topics created explicitly
(recq topic create, the runners' own topics) keep their partition count.
--auto-create-topics=false makes a missing topic an error for every
client, as on a well-run cluster.

When the data dir's disk has less than --min-free-mb free, the broker
refuses new records with KAFKA_STORAGE_ERROR (clients retry) and says so on
stderr, until twice that is free again: the space kept is what transaction
markers and group offsets still need.

With --metrics-addr it serves Prometheus metrics at /metrics, among them
recq.consumer.lag (recq_consumer_lag) for every consumer group and
partition, from the groups' committed offsets: a stopped consumer's lag
shows here, where its own process cannot report it.

Ctrl-C (SIGINT) or SIGTERM saves state and stops cleanly.`,
		Example: `  recq dev
  recq dev --broker-addr 127.0.0.1:19092 --registry-addr 127.0.0.1:18081 --data-dir /tmp/recq

  # kcat produces to a topic that does not exist yet: it is created with 3 partitions
  recq dev --auto-create-partitions 3
  echo hello | kcat -b 127.0.0.1:9092 -P -t new-topic

  # refuse producing to missing topics, whatever the client
  recq dev --auto-create-topics=false

  # every group's lag for Prometheus (then: curl -s 127.0.0.1:9464/metrics)
  recq dev --metrics-addr 127.0.0.1:9464`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Partitions < 1 {
				return usagef("--auto-create-partitions must be at least 1, got %d", cfg.Partitions)
			}
			unlock, err := lockDataDir(cfg.DataDir)
			if err != nil {
				return err
			}
			defer unlock()
			cfg.Log = cmd.ErrOrStderr()
			cfg.MinFreeBytes = minFreeMB << 20
			if minFreeMB <= 0 {
				cfg.MinFreeBytes = -1 // never refuse
			}
			b, err := broker.Start(cfg)
			if errors.Is(err, broker.ErrAddrInUse) {
				return fmt.Errorf("broker address %s is already in use (another recq dev or Kafka?); choose another with --broker-addr", cfg.Addr)
			}
			if err != nil {
				return err
			}
			defer b.Close()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "recq dev: Kafka broker listening on %s (data in %s)\n", b.Addr(), cfg.DataDir)
			r, err := startRegistry(cmd.Context(), reg, []string{b.Addr()})
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "recq dev: schema registry serving %s\n", r.url)
			if metricsAddr != "" {
				stop, err := serveGroupMetrics(cmd.Context(), metricsAddr, b.Addr())
				if err != nil {
					r.stop()
					return err
				}
				defer stop()
				fmt.Fprintf(out, "recq dev: metrics (every group's lag) at http://%s/metrics\n", metricsAddr)
			}
			fmt.Fprintf(out, "recq dev: connect with: export RECQ_BROKERS=%s RECQ_REGISTRY=%s\n", b.Addr(), r.url)
			fmt.Fprintln(out, "recq dev: ready; Ctrl-C to stop")
			<-cmd.Context().Done()
			fmt.Fprintln(out, "recq dev: shutting down")
			r.stop()
			b.Close()
			fmt.Fprintln(out, "recq dev: stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&cfg.Addr, "broker-addr", "127.0.0.1:9092", "host:port the broker listens on")
	cmd.Flags().StringVar(&cfg.DataDir, "data-dir", filepath.Join(".recq", "data"), "directory for the broker's persistent data")
	cmd.Flags().BoolVar(&cfg.SyncWrites, "sync-writes", false, "fsync every write (slower; survives power loss)")
	cmd.Flags().Int64Var(&minFreeMB, "min-free-mb", broker.DefaultMinFreeBytes>>20, "refuse new records while the data dir's disk has less free (MiB; 0: never)")
	cmd.Flags().BoolVar(&cfg.AutoCreateTopics, "auto-create-topics", true, "create a missing topic a client asks for, as Kafka does by default (kcat and kafkajs producers ask; recq's commands never do)")
	cmd.Flags().Int32Var(&cfg.Partitions, "auto-create-partitions", broker.DefaultPartitions, "partitions of auto-created topics and of topics created without a count (Kafka's num.partitions)")
	cmd.Flags().StringVar(&reg.addr, "registry-addr", "127.0.0.1:8081", "host:port the schema registry listens on")
	cmd.Flags().StringVar(&metricsAddr, "metrics-addr", "", "host:port to serve Prometheus metrics on, /metrics: every consumer group's lag (off when empty)")
	reg.flags(cmd)
	return cmd
}

// lockDataDir makes sure only one recq dev uses a data directory: two brokers
// writing the same files would corrupt them. The kernel drops the lock when
// the process dies, even by kill -9.
func lockDataDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, "recq-dev.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("data dir %s is in use by another recq dev (pid %s); stop it or choose another --data-dir", dir, owner)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())), 0)
	return func() { f.Close() }, nil
}
