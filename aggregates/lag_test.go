package aggregates_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
	"github.com/recq/recq/tracing"
)

type (
	Meter   struct{ N int }
	Metered struct{ N int }
	meter   struct{ N int }
)

// The aggregate runner reports its own lag: while its handler is held, the
// commands not handled yet, with the age of the oldest; once released,
// none. A service's command backlog shows without recq dev.
func TestRunnerReportsItsLag(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("SENTRY_DSN", "")
	maddr := testenv.FreeAddr(t)
	shutdown, err := tracing.Setup(context.Background(), tracing.WithMetricsAddr(maddr))
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	url := "http://" + maddr + "/metrics"

	addr, serde := platform(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := aggregates.EnsureTopics(ctx, streams.NewAdmin(testenv.Client(t, addr)), "meter", 4); err != nil {
		t.Fatal(err)
	}
	held := make(chan struct{})
	var release sync.Once
	a := aggregates.New[meter]("meter")
	aggregates.Create(a, func(_ context.Context, c Meter, _ *meter) ([]any, error) {
		<-held
		return []any{Metered(c)}, nil
	})
	aggregates.Apply(a, func(s *meter, e Metered) { s.N = e.N })
	r, err := aggregates.NewRunner(a, serde, []string{addr})
	if err != nil {
		t.Fatal(err)
	}
	testenv.RunUntilCleanup(t, r.Run)
	// Registered after the runner's, so it runs first: the held handler is
	// released before the runner is stopped, even on a failure.
	t.Cleanup(func() { release.Do(func() { close(held) }) })
	iv, err := aggregates.NewInvoker(ctx, []string{addr}, serde)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(iv.Close)

	const commands = 12
	var sends sync.WaitGroup
	errs := make(chan error, commands)
	for i := range commands {
		sends.Go(func() {
			_, err := iv.Send(ctx, "meter", "m"+strconv.Itoa(i), Meter{N: i})
			errs <- err
		})
	}
	group := `messaging_consumer_group_name="meter.runner"`
	topic := `messaging_destination_name="meter.commands"`
	testenv.Eventually(t, "the held runner's lag", 30*time.Second, func() error {
		s := testenv.Scrape(t, url)
		if lag, n := s.Sum("recq_consumer_lag", group, topic); lag != commands || n != 4 {
			return fmt.Errorf("lag %v over %d partitions; want %d over 4 while the handler is held", lag, n, commands)
		}
		if age, _ := s.Sum("recq_consumer_lag_age_seconds", group, topic); age <= 0 {
			return fmt.Errorf("lag age %v; want above 0", age)
		}
		return nil
	})
	release.Do(func() { close(held) })
	sends.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, "no lag once released", 30*time.Second, func() error {
		s := testenv.Scrape(t, url)
		lag, _ := s.Sum("recq_consumer_lag", group, topic)
		age, _ := s.Sum("recq_consumer_lag_age_seconds", group, topic)
		if lag != 0 || age != 0 {
			return fmt.Errorf("lag %v, age %v; want 0 and 0", lag, age)
		}
		return nil
	})
}
