package sagas_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/sagas"
	"github.com/recq/recq/sagas/store"
)

// countingStore counts what the runner asks Resolve for.
type countingStore struct {
	store.Store
	mu           sync.Mutex
	calls, asked int
	each         map[string]int
}

func (c *countingStore) Resolve(ctx context.Context, group string, assocs ...string) ([]store.Resolved, error) {
	c.mu.Lock()
	c.calls++
	c.asked += len(assocs)
	for _, a := range assocs {
		c.each[a]++
	}
	c.mu.Unlock()
	return c.Store.Resolve(ctx, group, assocs...)
}

// A routed batch of new instances asks the store about their associations
// in one call, not one per instance, and asks about each once: its later
// events find the instance the member holds.
func TestSagaResolvesABatchAtOnce(t *testing.T) {
	w := newWorld(t)
	const orders = 300
	for i := range orders {
		id := "o" + strconv.Itoa(i)
		w.publish(t, ordersTopic, id, OrderPlaced{Order: id, Amount: 1})
		w.publish(t, ordersTopic, id, OrderPaid{Order: id, Payment: "p" + strconv.Itoa(i)})
	}
	s := sagas.New[orderSaga]("test", "resolving", 1, ordersTopic)
	sagas.Start(s, sagas.By("order", func(e OrderPlaced) string { return e.Order }), func(_ context.Context, e OrderPlaced, in *sagas.Instance[orderSaga]) error {
		in.State.Amount = e.Amount
		return nil
	})
	sagas.On(s, sagas.By("order", func(e OrderPaid) string { return e.Order }), func(_ context.Context, e OrderPaid, in *sagas.Instance[orderSaga]) error {
		in.State.Paid = true
		return nil
	})
	st := &countingStore{Store: store.NewMemory(), each: map[string]int{}}
	r, err := sagas.NewRunner(s, w.serde, []string{w.addr}, noSender{}, sagas.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	testenv.RunUntilCleanup(t, r.Run)
	testenv.Eventually(t, "every order paid", 30*time.Second, func() error {
		ins, err := st.List(context.Background(), s.Group(), store.Filter{})
		if err != nil {
			return err
		}
		paid := 0
		for _, in := range ins {
			if string(in.State) == `{"Amount":1,"Paid":true,"Payment":""}` {
				paid++
			}
		}
		if paid != orders {
			return fmt.Errorf("%d of %d instances paid", paid, orders)
		}
		return nil
	})
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.asked != orders {
		t.Errorf("asked about %d associations for %d new instances, want each once", st.asked, orders)
	}
	for a, n := range st.each {
		if n != 1 {
			t.Errorf("asked about %s %d times", a, n)
		}
	}
	// The routed topic has 4 partitions; the records come in a few polls.
	if st.calls > orders/10 {
		t.Errorf("%d Resolve calls for %d new instances: the batches did not ask at once", st.calls, orders)
	}
}
