package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/recq/recq/consumers"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
	"github.com/recq/recq/tracing"
)

// Tick is the payload of the metrics workload; a negative N is refused for
// good.
type Tick struct{ N int }

// The Prometheus endpoint, scraped after a known workload, counts it: the
// records sent and consumed, the failed attempts, the retry, the dead
// event; the lag of a projector whose handler is held rises to what it
// has not handled, with an age, and falls to zero once it catches up.
func TestMetricsOverPrometheus(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("SENTRY_DSN", "")
	addr := testenv.FreeAddr(t)
	shutdown, err := tracing.Setup(context.Background(), tracing.WithMetricsAddr(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	if tracing.Enabled() || !tracing.MetricsEnabled() {
		t.Fatalf("tracing %v, metrics %v; want metrics alone", tracing.Enabled(), tracing.MetricsEnabled())
	}
	url := "http://" + addr + "/metrics"
	kafka, serde := testenv.Kafka(t), testenv.Serde(t)
	testenv.Topic(t, kafka, "ticks", 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	held := make(chan struct{})
	var release sync.Once
	p := consumers.NewProjector("metrics", "ticks", 1, "ticks")
	consumers.On(p, func(ctx context.Context, e Tick, _ consumers.Metadata) error {
		<-held
		if e.N < 0 {
			return deadletter.Permanent(errors.New("negative"))
		}
		return nil
	}, consumers.Retry(deadletter.Policy{Attempts: 2, Backoff: time.Millisecond}))
	r, err := consumers.NewRunner(p, serde, []string{kafka})
	if err != nil {
		t.Fatal(err)
	}
	testenv.RunUntilCleanup(t, r.Run)
	t.Cleanup(func() { release.Do(func() { close(held) }) }) // before the runner stops, even on a failure
	if err := r.WaitHead(ctx); err != nil {
		t.Fatal(err)
	}
	pub, err := streams.NewPublisher([]string{kafka}, streams.WithCodec(serde))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(context.Background())
	const events = 10 // the last refused
	for i := range events {
		n := i
		if i == events-1 {
			n = -1
		}
		if err := pub.PublishValue(ctx, "ticks", fmt.Sprintf("k%d", i), Tick{N: n}); err != nil {
			t.Fatal(err)
		}
	}
	group := `messaging_consumer_group_name="metrics.ticks.v1"`
	testenv.Eventually(t, "the held projector's lag", 30*time.Second, func() error {
		s := testenv.Scrape(t, url)
		if lag, _ := s.Sum("recq_consumer_lag", group, `messaging_destination_name="ticks"`); lag != events {
			return fmt.Errorf("lag %v; want %d while the handler is held", lag, events)
		}
		if age, _ := s.Sum("recq_consumer_lag_age_seconds", group, `messaging_destination_name="ticks"`); age <= 0 {
			return fmt.Errorf("lag age %v; want above 0", age)
		}
		return nil
	})
	release.Do(func() { close(held) })
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the workload's counts", 30*time.Second, func() error {
		s := testenv.Scrape(t, url)
		var errs []error
		for _, c := range []struct {
			name   string
			labels []string
			want   float64
		}{
			{"messaging_client_sent_messages_total", []string{`messaging_destination_name="ticks"`}, events},
			{"messaging_client_consumed_messages_total", []string{group, `messaging_destination_name="ticks"`}, events},
			{"messaging_process_duration_seconds_count", []string{group, `messaging_destination_name="ticks"`}, events},
			{"recq_handler_failures_total", []string{group, `recq_error_kind="permanent"`}, 2},
			{"recq_handler_retries_total", []string{group}, 1},
			{"recq_dead_events_total", []string{group, `recq_dead_reason="handler"`}, 1},
			{"messaging_client_sent_messages_total", []string{`messaging_destination_name="metrics.ticks.v1.dlq"`}, 1},
			{"recq_consumer_lag", []string{group, `messaging_destination_name="ticks"`}, 0},
			{"recq_consumer_lag_age_seconds", []string{group, `messaging_destination_name="ticks"`}, 0},
		} {
			if got, n := s.Sum(c.name, c.labels...); got != c.want || n == 0 {
				errs = append(errs, fmt.Errorf("%s%v = %v over %d samples; want %v", c.name, c.labels, got, n, c.want))
			}
		}
		return errors.Join(errs...)
	})
}
