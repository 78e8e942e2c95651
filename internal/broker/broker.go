// Package broker runs the embedded Kafka-protocol broker (franz-go's kfake)
// that `recq dev` and the tests use: one broker on a fixed address, optionally
// persistent under a data directory.
package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

// ErrAddrInUse is returned when the broker's address is already taken.
var ErrAddrInUse = errors.New("address already in use")

// Config configures an embedded broker. The zero value listens on a random
// loopback port and keeps everything in memory.
type Config struct {
	Addr       string // host:port; empty means 127.0.0.1:0 (a free port)
	DataDir    string // empty: in memory only
	SyncWrites bool   // fsync every batch (survives power loss, not only a killed process)
	// AutoCreateTopics lets a metadata request that allows it create the
	// missing topics it names, as Apache Kafka does by default
	// (auto.create.topics.enable): kcat, librdkafka and kafkajs producers
	// then produce to a topic nobody created. Requests that do not allow it
	// (franz-go's default, so every recq client) still see a missing topic.
	// Off in the zero value: producing to a missing topic is an error, as on
	// a well-run cluster. `recq dev` turns it on.
	AutoCreateTopics bool
	// Partitions is the partition count of topics created without one:
	// auto-created topics, and CreateTopics requests asking for the broker's
	// default (-1); Kafka's num.partitions. Zero means DefaultPartitions (1).
	Partitions int32
	// Log receives the broker's warnings and errors (failing to save its
	// state, say) and a line per auto-created topic; nil discards them.
	Log io.Writer
	// MinFreeBytes is the free space of the data dir's file system under
	// which a persistent broker refuses new records with
	// KAFKA_STORAGE_ERROR (until twice that is free). Zero means
	// DefaultMinFreeBytes; negative turns the check off.
	MinFreeBytes int64
}

// Broker is a running embedded broker.
type Broker struct {
	c    *kfake.Cluster
	addr string
	dir  string     // the data dir; "" in memory
	disk *diskGuard // nil without a data dir
}

// Start listens on cfg.Addr and starts the broker. A taken port gives an error
// wrapping ErrAddrInUse that names the address.
func Start(cfg Config) (*Broker, error) {
	if cfg.Partitions < 0 {
		return nil, fmt.Errorf("broker: partitions of new topics must be at least 1, got %d", cfg.Partitions)
	}
	partitions := cmp.Or(cfg.Partitions, DefaultPartitions)
	var log io.Writer = io.Discard
	if cfg.Log != nil {
		log = &lockedWriter{w: cfg.Log} // kfake, the disk guard and auto-creation write from their goroutines
	}
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("broker: listen on %s: %w", addr, ErrAddrInUse)
		}
		return nil, fmt.Errorf("broker: listen on %s: %w", addr, err)
	}
	clean := true
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			ln.Close()
			return nil, fmt.Errorf("broker: data dir: %w", err)
		}
		if clean, err = stoppedCleanly(cfg.DataDir); err != nil {
			ln.Close()
			return nil, err
		}
	}
	g := newGate(ln)
	used := false
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		// kfake asks for a listener per broker; hand it the one bound above so
		// the port check and the serving socket are the same socket.
		kfake.ListenFn(func(string, string) (net.Listener, error) {
			if used {
				return nil, errors.New("broker: only one listener")
			}
			used = true
			return g, nil
		}),
	}
	if cfg.Log != nil {
		opts = append(opts, kfake.WithLogger(kfake.BasicLogger(log, kfake.LogLevelWarn)))
	}
	// kfake's own default is 10; Kafka's is 1. kfake's AllowAutoTopicCreation
	// stays off: see autoCreate for why recq creates the topics itself.
	opts = append(opts, kfake.DefaultNumPartitions(int(partitions)))
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("broker: start (data dir %q): %w", cfg.DataDir, err)
	}
	b := &Broker{c: c, addr: ln.Addr().String(), dir: cfg.DataDir}
	if !clean {
		ctx, cancel := context.WithTimeout(context.Background(), recoverTimeout)
		err := recoverOpen(ctx, g.dial, b.addr, log)
		cancel()
		if err != nil {
			fmt.Fprintf(log, "recq dev: the last stop was not clean, and ending the transactions it left open failed: %v; readers of their partitions may wait for them\n", err)
		}
	}
	close(g.open)
	if cfg.AutoCreateTopics {
		installAutoCreate(c, partitions, log)
	}
	if cfg.DataDir != "" && cfg.MinFreeBytes >= 0 {
		b.disk = startDiskGuard(c, cfg.DataDir, cmp.Or(cfg.MinFreeBytes, DefaultMinFreeBytes), log)
	}
	return b, nil
}

// lockedWriter serialises writes from the broker's goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Addr is the host:port clients connect to.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker, saving its state when it is persistent.
func (b *Broker) Close() {
	if b.disk != nil {
		b.disk.close()
		b.disk = nil
	}
	b.c.Close()
	if b.dir != "" {
		_ = markCleanStop(b.dir) // without it the next start only recovers again
	}
}
