// Command runner serves the TodoList aggregate: it creates the todo topics
// if needed and handles commands exactly once until SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/examples/todo"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka brokers, comma-separated")
	registry := flag.String("registry", "http://127.0.0.1:8081", "schema registry URL")
	partitions := flag.Int("partitions", 8, "partitions of the todo topics when creating them")
	session := flag.Duration("session-timeout", 0, "how long the group waits for a crashed member (0: franz-go's default, 45s)")
	instance := flag.String("instance", "", "stable identity of this runner (a restart with the same one fences its crashed predecessor at once)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, strings.Split(*brokers, ","), *registry, int32(*partitions), *instance, *session); err != nil {
		fmt.Fprintln(os.Stderr, "todo runner:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, brokers []string, registry string, partitions int32, instance string, session time.Duration) error {
	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cl, err := streams.Dial(setup, brokers)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := aggregates.EnsureTopics(setup, streams.NewAdmin(cl), todo.Name, partitions); err != nil {
		return err
	}
	src, err := sr.NewClient(sr.URLs(registry))
	if err != nil {
		return err
	}
	serde, err := schema.NewSerde(src, schema.WithAutoRegister(true))
	if err != nil {
		return err
	}
	r, err := aggregates.NewRunner(todo.Aggregate(), serde, brokers, aggregates.WithInstanceID(instance), aggregates.WithSessionTimeout(session))
	if err != nil {
		return err
	}
	fmt.Println("todo runner: ready")
	return r.Run(ctx)
}
