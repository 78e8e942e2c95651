package sagas_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recq/recq/consumers"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/sagas"
	"github.com/recq/recq/sagas/store"
)

// A handler that changed the state and then failed is run again on the
// state before it, not on what the failed attempt left (the runner keeps
// state values between events; a map shows a change made in place).
func TestSagaRetryStartsFromTheStateBefore(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testRetryState(t, store.NewMemory()) })
	t.Run("redis", func(t *testing.T) {
		st, err := store.NewRedis(testenv.RedisClient(t, testenv.Redis(t).Addr))
		if err != nil {
			t.Fatal(err)
		}
		testRetryState(t, st)
	})
}

type tally struct{ Paid map[string]int }

func testRetryState(t *testing.T, st store.Store) {
	w := newWorld(t)
	s := sagas.New[tally]("test", "retry", 1, ordersTopic)
	sagas.Start(s, sagas.By("order", func(e OrderPlaced) string { return e.Order }), func(_ context.Context, e OrderPlaced, in *sagas.Instance[tally]) error {
		in.State.Paid = map[string]int{}
		return nil
	})
	var failed atomic.Bool
	sagas.On(s, sagas.By("order", func(e OrderPaid) string { return e.Order }), func(_ context.Context, e OrderPaid, in *sagas.Instance[tally]) error {
		in.State.Paid[e.Payment]++
		if e.Payment == "b" && !failed.Swap(true) {
			return errors.New("the first attempt fails")
		}
		return nil
	})
	r, err := sagas.NewRunner(s, w.serde, []string{w.addr}, w.iv, sagas.WithStore(st),
		sagas.WithRunnerOptions(consumers.WithRetryBackoff(time.Millisecond, 10*time.Millisecond),
			consumers.WithLogger(slog.New(slog.NewTextHandler(testWriter{t}, nil)))))
	if err != nil {
		t.Fatal(err)
	}
	testenv.RunUntilCleanup(t, r.Run)
	w.publish(t, ordersTopic, "o1", OrderPlaced{Order: "o1", Amount: 10})
	for _, p := range []string{"a", "b", "c"} {
		w.publish(t, ordersTopic, "o1", OrderPaid{Order: "o1", Payment: p})
	}
	want := map[string]int{"a": 1, "b": 1, "c": 1}
	testenv.Eventually(t, "three payments counted once each", 30*time.Second, func() error {
		in := load(t, st, s.Group(), "order=o1")
		var got tally
		if in != nil {
			_ = json.Unmarshal(in.State, &got)
		}
		if !maps.Equal(got.Paid, want) {
			return fmt.Errorf("state %+v, want %v", got, want)
		}
		return nil
	})
	if !failed.Load() {
		t.Fatal("the failing attempt never ran")
	}
}
