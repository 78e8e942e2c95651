package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/examples/shop"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/sagas"
	"github.com/recq/recq/sagas/store"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

// The shop's fulfilment saga (examples/shop) runs as its own process
// beside recq dev, redis-server and the shop's aggregates process. Orders
// are placed from the test through an invoker, and paid after a random
// delay on both sides of a short payment timeout, or never; the saga
// process is killed with SIGKILL three times while they flow, once while
// the store holds deadlines past their due time, and restarted each time.
// Afterwards every instance has ended, and the events topics show each
// order in the outcome its inputs call for (shipped when paid in time;
// cancelled, with the payment cancelled or refunded once, when not), no
// command applied twice and no deadline fired twice.
//
// The orders are placed over a minute (about 33 a second): faster, the
// aggregates process (race-built, a cold load per new order and payment)
// answers in seconds and the saga falls as far behind.
// RECQ_SAGA_TEST_SPREAD=20s places them faster, to load the saga more.
func TestSagaKill9Redis(t *testing.T) {
	spread := time.Minute
	if v := os.Getenv("RECQ_SAGA_TEST_SPREAD"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("RECQ_SAGA_TEST_SPREAD=%q: want a duration such as 20s", v)
		}
		spread = d
	}
	e := newShopEnv(t, true)
	orders := e.workload(2000, spread, func(elapsed func() time.Duration) {
		for kill := range 3 {
			for elapsed() < time.Duration(kill+1)*spread/4 {
				time.Sleep(10 * time.Millisecond)
			}
			if kill == 1 {
				// Kill while deadlines are due: pending in the store, their
				// due time passed, their handlers not yet run.
				until := time.Now().Add(15 * time.Second)
				n := e.overdue()
				for ; n == 0 && time.Now().Before(until); n = e.overdue() {
					time.Sleep(5 * time.Millisecond)
				}
				if n == 0 {
					t.Error("the store never held a deadline past its due time: the kill missed the case it is for")
				}
				e.overdueAtKill.Store(int64(n))
			}
			e.killSaga()
		}
	})
	start := time.Now()
	e.waitEnded(orders, 2*time.Minute)
	t.Logf("every instance ended %v after the last payment; %d deadlines were overdue in the store at the second kill",
		time.Since(start).Round(time.Millisecond), e.overdueAtKill.Load())
	e.check(orders)
	e.checkHistories(orders)
}

// The same on memory stores: each restarted saga rebuilds its instances
// from the topics (running the handlers again, whose commands are answered
// as duplicates), and the outcomes are read from the events topics.
func TestSagaKill9MemoryRebuild(t *testing.T) {
	e := newShopEnv(t, false)
	orders := e.workload(500, 15*time.Second, func(elapsed func() time.Duration) {
		for kill := range 3 {
			for elapsed() < time.Duration(kill+1)*4*time.Second {
				time.Sleep(10 * time.Millisecond)
			}
			e.killSaga()
		}
	})
	start := time.Now()
	e.waitOutcomes(orders, 2*time.Minute)
	t.Logf("every order reached its outcome %v after the last payment", time.Since(start).Round(time.Millisecond))
	// The last saga process rebuilt every instance: each has ended there,
	// and nothing more happens once it has caught up.
	e.waitSagaReady(time.Minute)
	e.waitEnded(orders, time.Minute)
	time.Sleep(2 * time.Second)
	e.check(orders)
	e.checkHistories(orders)
}

const (
	shopPartitions = 8
	// One instance's handler at a time per routed partition, waiting for
	// its commands' answers: the routed partitions are the saga's lanes.
	routedPartitions = 32
	paymentTimeout   = 3 * time.Second
	// Payments within this much of the due time may go either way: the
	// saga's handling of a payment and its deadline's firing race.
	dueWindow = time.Second
)

var fulfilmentGroup = shop.Saga(shop.SagaConfig{}).Group()

type shopEnv struct {
	t       *testing.T
	dev     *testenv.Dev
	rdb     *redis.Client // nil: memory stores
	rdsAddr string
	serde   *schema.Serde
	iv      *aggregates.Invoker
	bin     string
	http    string
	timeout time.Duration // the saga's payment timeout

	mu            sync.Mutex
	saga          *testenv.Proc
	procs         []*testenv.Proc
	kills         int
	overdueAtKill atomic.Int64
}

func newShopEnv(t *testing.T, withRedis bool) *shopEnv {
	t.Helper()
	return newShopEnvTimeout(t, withRedis, paymentTimeout)
}

// newShopEnvTimeout is newShopEnv with the saga's payment timeout.
func newShopEnvTimeout(t *testing.T, withRedis bool, timeout time.Duration) *shopEnv {
	t.Helper()
	e := &shopEnv{t: t, dev: testenv.StartDev(t, t.TempDir()), http: testenv.FreeAddr(t), timeout: timeout}
	if withRedis {
		rds := testenv.Redis(t)
		e.rdsAddr = rds.Addr
		e.rdb = testenv.RedisClient(t, rds.Addr)
	}
	aggs := testenv.Binary(t, "github.com/recq/recq/examples/shop/aggregates")
	e.bin = testenv.Binary(t, "github.com/recq/recq/examples/shop/saga")
	e.procs = append(e.procs, testenv.Start(t, "shop aggregates: ready", aggs, "-brokers", e.dev.Addr, "-registry", e.dev.Registry,
		"-partitions", strconv.Itoa(shopPartitions), "-instance", "aggs", "-session-timeout", "6s"))
	e.startSaga()
	e.serde = serdeAt(t, e.dev.Registry)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if e.iv, err = aggregates.NewInvoker(ctx, []string{e.dev.Addr}, e.serde); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.iv.Close)
	t.Cleanup(e.checkRaces)
	return e
}

func (e *shopEnv) startSaga() {
	args := []string{"-brokers", e.dev.Addr, "-registry", e.dev.Registry, "-partitions", strconv.Itoa(shopPartitions),
		"-instance", "saga", "-session-timeout", "6s", "-payment-timeout", e.timeout.String(), "-send-timeout", "10s", "-http", e.http,
		"-routed-partitions", strconv.Itoa(routedPartitions)}
	if e.rdb != nil {
		args = append(args, "-redis", e.rdsAddr)
	}
	p := testenv.Start(e.t, "shop saga: ready", e.bin, args...)
	e.mu.Lock()
	e.saga = p
	e.procs = append(e.procs, p)
	e.mu.Unlock()
}

// killSaga kills the saga with SIGKILL and restarts it about a second
// later.
func (e *shopEnv) killSaga() {
	e.mu.Lock()
	p := e.saga
	e.kills++
	e.mu.Unlock()
	p.Kill9()
	e.t.Logf("saga killed (%d)", e.kills)
	time.Sleep(time.Duration(800+rand.IntN(400)) * time.Millisecond)
	e.startSaga()
}

// checkRaces fails the test if a process reported a data race, and logs
// how often the saga fired deadlines before it had caught up (its settle
// wait ran out).
func (e *shopEnv) checkRaces() {
	e.mu.Lock()
	defer e.mu.Unlock()
	unsettled := 0
	for _, p := range e.procs {
		out := p.Output()
		if strings.Contains(out, "WARNING: DATA RACE") {
			e.t.Errorf("a process reported a data race:\n%s", out)
		}
		unsettled += strings.Count(out, "deadlines fire before the saga caught up")
	}
	if unsettled > 0 {
		e.t.Logf("the saga fired deadlines %d times before it had caught up with its topics", unsettled)
	}
}

// shopOrder is one order of the workload and what the test did with it.
type shopOrder struct {
	id       string
	amount   int64
	payAfter time.Duration // < 0: never paid
	paid     bool          // Pay was accepted
	refused  bool          // Pay was refused: the payment was cancelled first
	placing  time.Duration // how long PlaceOrder took to be answered
}

// workload places n orders over spread, each from its own goroutine, and
// pays each after a random delay of 0 to 2*paymentTimeout (one in ten
// never), resending unanswered commands with their ids; meanwhile it
// runs faults, given the time since the first order. It returns when
// every order is placed and paid or refused, and faults has returned.
func (e *shopEnv) workload(n int, spread time.Duration, faults func(elapsed func() time.Duration)) []*shopOrder {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	orders := make([]*shopOrder, n)
	for i := range orders {
		o := &shopOrder{id: fmt.Sprintf("O-%d", i), amount: int64(100 + rand.IntN(10_000)), payAfter: -1}
		if rand.IntN(10) != 0 {
			o.payAfter = time.Duration(rand.Int64N(int64(2 * e.timeout)))
		}
		orders[i] = o
	}
	begin := time.Now()
	elapsed := func() time.Duration { return time.Since(begin) }
	faulted := make(chan struct{})
	go func() {
		defer close(faulted)
		faults(elapsed)
	}()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, o := range orders {
		wg.Go(func() {
			time.Sleep(time.Until(begin.Add(time.Duration(i) * spread / time.Duration(n))))
			if err := e.order(ctx, o); err != nil {
				errs <- fmt.Errorf("order %s: %w", o.id, err)
			}
		})
	}
	wg.Wait()
	<-faulted
	close(errs)
	for err := range errs {
		e.t.Fatal(err)
	}
	paid, refused := 0, 0
	placing := make([]time.Duration, 0, n)
	for _, o := range orders {
		placing = append(placing, o.placing)
		if o.paid {
			paid++
		}
		if o.refused {
			refused++
		}
	}
	e.t.Logf("%d orders placed over %v: %d paid, %d payments refused (cancelled first), %d never paid; %d saga kills; workload took %v",
		n, spread, paid, refused, n-paid-refused, e.kills, elapsed().Round(time.Millisecond))
	slices.Sort(placing)
	e.t.Logf("PlaceOrder answered in p50 %v, p99 %v", placing[n/2].Round(time.Millisecond), placing[n*99/100].Round(time.Millisecond))
	return orders
}

// order places o, then pays it after o.payAfter.
func (e *shopEnv) order(ctx context.Context, o *shopOrder) error {
	start := time.Now()
	if _, err := e.send(ctx, shop.OrdersName, o.id, shop.PlaceOrder{OrderID: o.id, Amount: o.amount}, "place-"+o.id); err != nil {
		return err
	}
	o.placing = time.Since(start)
	if o.payAfter < 0 {
		return nil
	}
	time.Sleep(o.payAfter)
	for {
		_, err := e.send(ctx, shop.PaymentsName, o.id, shop.Pay{}, "pay-"+o.id)
		switch {
		case err == nil:
			o.paid = true
			return nil
		case shop.Rejected(err, shop.ErrPaymentCancelled):
			o.refused = true
			return nil
		case errors.Is(err, aggregates.ErrNotFound) && ctx.Err() == nil:
			// The saga has not requested the payment yet (it may be down):
			// the customer tries again.
			time.Sleep(50 * time.Millisecond)
		default:
			return err
		}
	}
}

// send sends cmd with the command id, again with the same id while it is
// unanswered.
func (e *shopEnv) send(ctx context.Context, aggregate, id string, cmd any, cid string) (aggregates.Result, error) {
	for {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := e.iv.Send(sctx, aggregate, id, cmd, aggregates.WithCommandID(cid))
		cancel()
		if err == nil || !strings.Contains(err.Error(), "send again with WithCommandID") || ctx.Err() != nil {
			return res, err
		}
	}
}

func dueKey(p int) string {
	return fmt.Sprintf("%s%s:due:%d", store.DefaultKeyPrefix, fulfilmentGroup, p)
}

func instanceKey(orderID string) string {
	return store.DefaultKeyPrefix + fulfilmentGroup + ":i:order=" + orderID
}

// overdue counts the deadlines pending in the Redis store whose due time
// has passed.
func (e *shopEnv) overdue() int {
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	n := 0
	for p := range routedPartitions {
		c, err := e.rdb.ZCount(context.Background(), dueKey(p), "-inf", now).Result()
		if err != nil {
			e.t.Errorf("overdue deadlines: %v", err)
			return 0
		}
		n += int(c)
	}
	return n
}

// instances reads the orders' saga instances (nil where none): from
// Redis, as the store lays them out, or, on memory stores, from the saga
// process's InspectHandler.
func (e *shopEnv) instances(orders []*shopOrder) (map[string]*store.Instance, error) {
	if e.rdb == nil {
		return e.inspected()
	}
	out := map[string]*store.Instance{}
	for chunk := range slices.Chunk(orders, 500) {
		keys := make([]string, len(chunk))
		for i, o := range chunk {
			keys[i] = instanceKey(o.id)
		}
		vals, err := e.rdb.MGet(context.Background(), keys...).Result()
		if err != nil {
			return nil, err
		}
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue
			}
			var in store.Instance
			if err := json.Unmarshal([]byte(s), &in); err != nil {
				return nil, fmt.Errorf("%s: %w", keys[i], err)
			}
			out[chunk[i].id] = &in
		}
	}
	return out, nil
}

// inspected reads every instance, running and ended, from the saga
// process over HTTP.
func (e *shopEnv) inspected() (map[string]*store.Instance, error) {
	r := sagas.NewInspectClient("http://"+e.http, nil)
	out := map[string]*store.Instance{}
	for _, ended := range []bool{false, true} {
		ins, err := r.List(context.Background(), fulfilmentGroup, store.Filter{Ended: ended})
		if err != nil {
			return nil, err
		}
		for _, in := range ins {
			out[strings.TrimPrefix(in.ID, "order=")] = in
		}
	}
	return out, nil
}

// waitEnded waits until every order's instance has ended.
func (e *shopEnv) waitEnded(orders []*shopOrder, timeout time.Duration) {
	e.t.Helper()
	testenv.Eventually(e.t, "every saga instance ended", timeout, func() error {
		in, err := e.instances(orders)
		if err != nil {
			return err
		}
		var running []string
		for _, o := range orders {
			if x := in[o.id]; x == nil || !x.Ended {
				running = append(running, o.id)
			}
		}
		if len(running) > 0 {
			return fmt.Errorf("%d instances not ended, e.g. %v", len(running), running[:min(5, len(running))])
		}
		return nil
	})
}

// checkHistories checks the ended instances: none handled a deadline
// twice, none kept deadlines, associations or state, and the deadline
// fired in exactly the instances whose order the events show cancelled
// (only the deadline's handler cancels).
func (e *shopEnv) checkHistories(orders []*shopOrder) {
	e.t.Helper()
	ins, err := e.instances(orders)
	if err != nil {
		e.t.Fatal(err)
	}
	out := e.outcomes()
	fired, bad := 0, 0
	report := func(format string, args ...any) {
		if bad++; bad <= 10 {
			e.t.Errorf(format, args...)
		}
	}
	for _, o := range orders {
		in := ins[o.id]
		if in == nil {
			report("%s: no instance", o.id)
			continue
		}
		seen := map[string]int{}
		for _, h := range in.History {
			if h.Type == "deadline "+shop.PaymentDue {
				if seen[h.ID]++; seen[h.ID] > 1 {
					report("%s: deadline %s fired twice: %+v", in.ID, h.ID, in.History)
				}
				fired++
			}
		}
		if !in.Ended || len(in.Deadlines) > 0 || len(in.Associations) > 0 || len(in.State) > 0 {
			report("%s: want it ended without deadlines, associations or state: %+v", in.ID, in)
		}
		if x := out[o.id]; x != nil && (len(seen) > 0) != (x.cancelled > 0) {
			report("%s: deadline fired %v, order cancelled %d times: history %+v", in.ID, len(seen) > 0, x.cancelled, in.History)
		}
	}
	if bad > 10 {
		e.t.Errorf("... %d instance failures in all", bad)
	}
	e.t.Logf("%d instances ended; %d deadlines fired, none twice", len(ins), fired)
}

// outcome is what the events topics say of one order.
type outcome struct {
	placed                     int
	placedAt                   time.Time
	shipped, cancelled         int
	cancelledAt                time.Time
	requested, received        int
	receivedAt                 time.Time
	paymentCancelled, refunded int
}

// outcomes folds both events topics into each order's outcome and checks
// that no command id caused two events.
func (e *shopEnv) outcomes() map[string]*outcome {
	e.t.Helper()
	name := func(v any) string {
		n, err := e.serde.TypeName(v)
		if err != nil {
			e.t.Fatal(err)
		}
		return n
	}
	out := map[string]*outcome{}
	for _, topic := range []string{aggregates.EventsTopic(shop.OrdersName), aggregates.EventsTopic(shop.PaymentsName)} {
		causes := map[string]int{}
		for _, r := range testenv.ReadTopic(e.t, e.dev.Addr, topic) {
			env, err := streams.ReadEnvelope(r)
			if err != nil {
				e.t.Fatal(err)
			}
			if causes[env.CausationID]++; causes[env.CausationID] > 1 {
				e.t.Errorf("%s: command %s caused a second event (%s of %s at offset %d): applied twice", topic, env.CausationID, env.Type, env.AggregateID, r.Offset)
			}
			o := out[env.AggregateID]
			if o == nil {
				o = &outcome{}
				out[env.AggregateID] = o
			}
			switch env.Type {
			case name(shop.OrderPlaced{}):
				o.placed++
				o.placedAt = r.Timestamp
			case name(shop.OrderShipped{}):
				o.shipped++
			case name(shop.OrderCancelled{}):
				o.cancelled++
				o.cancelledAt = r.Timestamp
			case name(shop.PaymentRequested{}):
				o.requested++
			case name(shop.PaymentReceived{}):
				o.received++
				o.receivedAt = r.Timestamp
			case name(shop.PaymentCancelled{}):
				o.paymentCancelled++
			case name(shop.PaymentRefunded{}):
				o.refunded++
			default:
				e.t.Errorf("%s: unexpected event type %s", topic, env.Type)
			}
		}
	}
	return out
}

// final says whether o is in a final state: shipped, or cancelled with its
// payment cancelled or refunded.
func (o *outcome) final() bool {
	return o.shipped > 0 || o.cancelled > 0 && (o.paymentCancelled > 0 || o.refunded > 0)
}

// waitOutcomes waits until every order is in a final state in the events.
func (e *shopEnv) waitOutcomes(orders []*shopOrder, timeout time.Duration) {
	e.t.Helper()
	testenv.Eventually(e.t, "every order shipped or cancelled", timeout, func() error {
		out := e.outcomes()
		var open []string
		for _, o := range orders {
			if x := out[o.id]; x == nil || !x.final() {
				open = append(open, o.id)
			}
		}
		if len(open) > 0 {
			return fmt.Errorf("%d orders not yet shipped or cancelled, e.g. %v", len(open), open[:min(5, len(open))])
		}
		return nil
	})
}

// waitSagaReady waits until the saga process reports ready.
func (e *shopEnv) waitSagaReady(timeout time.Duration) {
	e.t.Helper()
	testenv.Eventually(e.t, "the saga ready", timeout, func() error {
		resp, err := http.Get("http://" + e.http + "/health/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz %d: %s", resp.StatusCode, b)
		}
		return nil
	})
}

// check compares every order's outcome in the events topics with what its
// inputs call for. Failures are reported by rule, with a count, a few
// examples and, for those, the instance's records in the routed topic
// (the order in which the saga handled them).
func (e *shopEnv) check(orders []*shopOrder) {
	e.t.Helper()
	out := e.outcomes()
	var inTime, late, unpaid, window, windowShipped int
	var cancelLag []time.Duration
	failed := map[string][]string{} // rule -> order ids
	var rules []string
	fail := func(o *shopOrder, rule string) {
		if failed[rule] == nil {
			rules = append(rules, rule)
		}
		failed[rule] = append(failed[rule], o.id)
	}
	for _, o := range orders {
		x := out[o.id]
		if x == nil {
			fail(o, "no events")
			continue
		}
		switch {
		case x.placed != 1 || x.requested != 1:
			fail(o, "want one OrderPlaced and one PaymentRequested")
			continue
		case x.shipped > 1 || x.cancelled > 1 || x.received > 1 || x.paymentCancelled > 1 || x.refunded > 1:
			fail(o, "an event twice (at most one OrderCancelled, OrderShipped, PaymentReceived, PaymentCancelled, PaymentRefunded)")
			continue
		case x.shipped+x.cancelled != 1:
			fail(o, "want the order shipped or cancelled, exactly one of them")
			continue
		case (x.received == 1) != o.paid:
			fail(o, "PaymentReceived does not match the accepted Pay")
			continue
		}
		due := x.placedAt.Add(e.timeout)
		if x.cancelled == 1 {
			cancelLag = append(cancelLag, x.cancelledAt.Sub(due))
			if x.cancelledAt.Before(due) {
				fail(o, "cancelled before the payment was due")
			}
			if x.received == 1 && (x.refunded != 1 || x.paymentCancelled != 0) {
				fail(o, "cancelled after a payment: want it refunded once, its payment not cancelled")
			}
			if x.received == 0 && (x.paymentCancelled != 1 || x.refunded != 0) {
				fail(o, "cancelled unpaid: want the payment cancelled, not refunded")
			}
		} else if x.refunded != 0 || x.paymentCancelled != 0 || x.received != 1 {
			fail(o, "shipped: want it paid, neither refunded nor its payment cancelled")
		}
		switch {
		case x.received == 0:
			unpaid++
			if x.cancelled != 1 {
				fail(o, "never paid: want it cancelled")
			}
		case x.receivedAt.Before(due.Add(-dueWindow)):
			inTime++
			if x.shipped != 1 {
				fail(o, fmt.Sprintf("paid more than %v before the due time: want it shipped", dueWindow))
			}
		case x.receivedAt.After(due.Add(dueWindow)):
			late++
			if x.cancelled != 1 {
				fail(o, fmt.Sprintf("paid more than %v after the due time: want it cancelled and refunded", dueWindow))
			}
		default:
			window++
			windowShipped += x.shipped
		}
	}
	slices.Sort(cancelLag)
	pct := func(p int) time.Duration {
		if len(cancelLag) == 0 {
			return 0
		}
		return cancelLag[min(len(cancelLag)-1, len(cancelLag)*p/100)].Round(time.Millisecond)
	}
	e.t.Logf("inputs: %d paid more than %v before the due time (to ship), %d paid more than %v after it and %d never paid (to cancel; the paid ones refunded), %d paid within %v of it (%d of them shipped)",
		inTime, dueWindow, late, dueWindow, unpaid, window, dueWindow, windowShipped)
	e.t.Logf("OrderCancelled written after the due time: p50 %v, p90 %v, p99 %v, max %v", pct(50), pct(90), pct(99), pct(100))
	routed := testenv.ReadTopic(e.t, e.dev.Addr, sagas.RoutedTopic(fulfilmentGroup))
	e.t.Logf("%d records in %s", len(routed), sagas.RoutedTopic(fulfilmentGroup))
	byID := map[string]*shopOrder{}
	for _, o := range orders {
		byID[o.id] = o
	}
	for _, rule := range rules {
		ids := failed[rule]
		var b strings.Builder
		for _, id := range ids[:min(3, len(ids))] {
			o, x := byID[id], out[id]
			fmt.Fprintf(&b, "\n  %s: placed %s (due %s), Pay after %v accepted %v refused %v; events %+v",
				id, stamp(x.placedAt), stamp(x.placedAt.Add(e.timeout)), o.payAfter.Round(time.Millisecond), o.paid, o.refused, x.brief())
			for _, r := range routed {
				if string(r.Key) == "order="+id {
					typ, _ := streams.Header(r, streams.HeaderType)
					src, _ := streams.Header(r, sagas.HeaderSource)
					fmt.Fprintf(&b, "\n    routed %d@%d %s at %s %s", r.Partition, r.Offset, typ, stamp(r.Timestamp), src)
				}
			}
		}
		e.t.Errorf("%d orders: %s, e.g. %v%s", len(ids), rule, ids[:min(10, len(ids))], b.String())
	}
	if n := len(testenv.ReadTopic(e.t, e.dev.Addr, fulfilmentGroup+".dlq")); n != 0 {
		e.t.Errorf("%d dead events in the saga's queue", n)
	}
}

func stamp(t time.Time) string { return t.Format("15:04:05.000") }

func (o *outcome) brief() string {
	s := fmt.Sprintf("shipped %d cancelled %d", o.shipped, o.cancelled)
	if o.cancelled > 0 {
		s += " at " + stamp(o.cancelledAt)
	}
	s += fmt.Sprintf(", payment received %d", o.received)
	if o.received > 0 {
		s += " at " + stamp(o.receivedAt)
	}
	return s + fmt.Sprintf(" cancelled %d refunded %d", o.paymentCancelled, o.refunded)
}
