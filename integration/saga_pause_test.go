package integration

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/recq/recq/examples/shop"
)

// A payment written well before its deadline is due ships the order even
// when the saga could not handle it before the due time. The saga's Redis
// store is paused (CLIENT PAUSE ALL) for a while: orders whose payments
// were requested are paid, with Redis paused, more than 4 s before their
// due time, behind a few new orders the saga is stuck handling. The
// deadlines come due during the pause. Once Redis is back, every paid
// order must be shipped, none cancelled or refunded: the outcome follows
// the events' times, not the moment the saga got to them (the unpaid new
// orders are cancelled).
func TestSagaRedisPausedPaymentBeforeDue(t *testing.T) {
	const (
		n       = 100
		timeout = 6 * time.Second
		pause   = 7 * time.Second
	)
	e := newShopEnvTimeout(t, true, timeout)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	place := func(orders []*shopOrder) {
		for _, o := range orders {
			wg.Go(func() {
				if _, err := e.send(ctx, shop.OrdersName, o.id, shop.PlaceOrder{OrderID: o.id, Amount: o.amount}, "place-"+o.id); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	orders := make([]*shopOrder, n)
	for i := range orders {
		orders[i] = &shopOrder{id: fmt.Sprintf("P-%d", i), amount: 500}
	}
	place(orders)
	placed := time.Now()
	waitStarted(t, e, orders)
	started := time.Since(placed)
	if err := e.rdb.Do(ctx, "CLIENT", "PAUSE", strconv.FormatInt(pause.Milliseconds(), 10), "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	// New orders the saga routes, then waits for Redis to handle.
	filler := make([]*shopOrder, 2*routedPartitions)
	for i := range filler {
		filler[i] = &shopOrder{id: fmt.Sprintf("F-%d", i), amount: 100, payAfter: -1}
	}
	place(filler)
	time.Sleep(500 * time.Millisecond)
	paying := time.Since(placed)
	for _, o := range orders {
		o.payAfter = paying
		wg.Go(func() {
			if _, err := e.send(ctx, shop.PaymentsName, o.id, shop.Pay{}, "pay-"+o.id); err != nil {
				t.Error(err)
				return
			}
			o.paid = true
		})
	}
	wg.Wait()
	t.Logf("%d orders placed, their instances started %v later; Redis paused for %v; %d more orders placed; all paid %v to %v after placing (due after %v)",
		n, started.Round(time.Millisecond), pause, len(filler), paying.Round(time.Millisecond), time.Since(placed).Round(time.Millisecond), timeout)
	all := append(orders, filler...)
	e.waitEnded(all, time.Minute)
	e.check(all)
	e.checkHistories(all)
}

// waitStarted waits until every order's instance is in Redis with its
// deadline pending.
func waitStarted(t *testing.T, e *shopEnv, orders []*shopOrder) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ins, err := e.instances(orders)
		if err != nil {
			t.Fatal(err)
		}
		ready := 0
		for _, o := range orders {
			if in := ins[o.id]; in != nil && len(in.Deadlines) == 1 {
				ready++
			}
		}
		if ready == len(orders) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d instances started after 30 s", ready, len(orders))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
