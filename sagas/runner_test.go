package sagas_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/consumers"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/sagas"
	"github.com/recq/recq/sagas/store"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

// The test domain: orders placed and paid on two topics, and a ledger
// aggregate the saga charges and refunds.
type (
	OrderPlaced struct {
		Order  string
		Amount int64
	}
	OrderPaid struct {
		Order   string
		Payment string
	}
	PaymentNoted struct{ Payment string }
	Charge       struct{ Amount int64 }
	Cancel       struct{ Why string }
	Charged      struct{ Amount int64 }
	Cancelled    struct{ Why string }
)

type ledger struct {
	Charged   int64
	Cancelled bool
}

func ledgerAggregate() *aggregates.Aggregate[ledger] {
	a := aggregates.New[ledger]("ledger")
	aggregates.Create(a, func(_ context.Context, c Charge, s *ledger) ([]any, error) {
		if c.Amount <= 0 {
			return nil, errors.New("nothing to charge")
		}
		return []any{Charged{Amount: c.Amount}}, nil
	})
	aggregates.Handle(a, func(_ context.Context, c Cancel, s *ledger) ([]any, error) {
		if s.Cancelled {
			return nil, errors.New("cancelled already")
		}
		return []any{Cancelled{Why: c.Why}}, nil
	})
	aggregates.Apply(a, func(s *ledger, e Charged) { s.Charged += e.Amount })
	aggregates.Apply(a, func(s *ledger, e Cancelled) { s.Cancelled = true })
	return a
}

type orderSaga struct {
	Amount  int64
	Paid    bool
	Payment string
}

const (
	ordersTopic   = "shop.orders"
	paymentsTopic = "shop.payments"
)

func orderSagaDef(timeout time.Duration) *sagas.Saga[orderSaga] {
	s := sagas.New[orderSaga]("test", "orders", 1, ordersTopic, paymentsTopic)
	sagas.Start(s, sagas.By("order", func(e OrderPlaced) string { return e.Order }), func(ctx context.Context, e OrderPlaced, in *sagas.Instance[orderSaga]) error {
		in.State.Amount = e.Amount
		in.Schedule("pay", timeout)
		_, err := in.Send(ctx, "ledger", e.Order, Charge{Amount: e.Amount})
		return err
	})
	sagas.On(s, sagas.By("order", func(e OrderPaid) string { return e.Order }), func(ctx context.Context, e OrderPaid, in *sagas.Instance[orderSaga]) error {
		in.State.Paid, in.State.Payment = true, e.Payment
		in.Cancel("pay")
		in.Associate("payment", e.Payment)
		return nil
	})
	sagas.On(s, sagas.By("payment", func(e PaymentNoted) string { return e.Payment }), func(ctx context.Context, e PaymentNoted, in *sagas.Instance[orderSaga]) error {
		in.End()
		return nil
	})
	sagas.OnDeadline(s, "pay", func(ctx context.Context, in *sagas.Instance[orderSaga]) error {
		_, err := in.Send(ctx, "ledger", in.ID()[len("order="):], Cancel{Why: "not paid"})
		if err != nil {
			return err
		}
		in.End()
		return nil
	})
	return s
}

type world struct {
	addr  string
	serde *schema.Serde
	iv    *aggregates.Invoker
	pub   *streams.Publisher
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{addr: testenv.Kafka(t), serde: testenv.Serde(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := aggregates.EnsureTopics(ctx, streams.NewAdmin(testenv.Client(t, w.addr)), "ledger", 4); err != nil {
		t.Fatal(err)
	}
	testenv.Topic(t, w.addr, ordersTopic, 4)
	testenv.Topic(t, w.addr, paymentsTopic, 2)
	r, err := aggregates.NewRunner(ledgerAggregate(), w.serde, []string{w.addr})
	if err != nil {
		t.Fatal(err)
	}
	testenv.RunUntilCleanup(t, r.Run)
	if w.iv, err = aggregates.NewInvoker(ctx, []string{w.addr}, w.serde); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.iv.Close)
	if w.pub, err = streams.NewPublisher([]string{w.addr}, streams.WithCodec(w.serde)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.pub.Close(context.Background()) })
	return w
}

func (w *world) publish(t *testing.T, topic, key string, v any) {
	t.Helper()
	if err := w.pub.PublishValue(context.Background(), topic, key, v); err != nil {
		t.Fatal(err)
	}
}

func (w *world) run(t *testing.T, s *sagas.Saga[orderSaga], st store.Store) *sagas.Runner[orderSaga] {
	t.Helper()
	r, err := sagas.NewRunner(s, w.serde, []string{w.addr}, w.iv, sagas.WithStore(st),
		sagas.WithRunnerOptions(consumers.WithLogger(slog.New(slog.NewTextHandler(testWriter{t}, nil)))))
	if err != nil {
		t.Fatal(err)
	}
	testenv.RunUntilCleanup(t, r.Run)
	return r
}

func load(t *testing.T, st store.Store, group, id string) *store.Instance {
	t.Helper()
	in, err := st.Load(context.Background(), group, id)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestSagaStartDeadlineAssociationEnd(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testSagaFlow(t, store.NewMemory()) })
	t.Run("redis", func(t *testing.T) {
		st, err := store.NewRedis(testenv.RedisClient(t, testenv.Redis(t).Addr))
		if err != nil {
			t.Fatal(err)
		}
		testSagaFlow(t, st)
	})
}

func testSagaFlow(t *testing.T, st store.Store) {
	w := newWorld(t)
	s := orderSagaDef(2 * time.Second)
	w.run(t, s, st)
	g := s.Group()

	w.publish(t, ordersTopic, "o1", OrderPlaced{Order: "o1", Amount: 5}) // paid in time
	w.publish(t, ordersTopic, "o2", OrderPlaced{Order: "o2", Amount: 7}) // never paid
	w.publish(t, paymentsTopic, "zz", OrderPaid{Order: "nobody", Payment: "p0"})
	testenv.Eventually(t, "o1 started", 30*time.Second, func() error {
		if in := load(t, st, g, "order=o1"); in == nil || len(in.Deadlines) != 1 {
			return fmt.Errorf("instance %+v", in)
		}
		return nil
	})
	w.publish(t, paymentsTopic, "p1", OrderPaid{Order: "o1", Payment: "p1"})
	testenv.Eventually(t, "o1 paid", 30*time.Second, func() error {
		in := load(t, st, g, "order=o1")
		var s orderSaga
		_ = json.Unmarshal(in.State, &s)
		if !s.Paid || len(in.Deadlines) != 0 || len(in.Associations) != 2 {
			return fmt.Errorf("instance %+v", in)
		}
		return nil
	})
	// Found through the association it added.
	w.publish(t, paymentsTopic, "p1", PaymentNoted{Payment: "p1"})
	testenv.Eventually(t, "o1 ended, o2 cancelled by its deadline", 30*time.Second, func() error {
		o1, o2 := load(t, st, g, "order=o1"), load(t, st, g, "order=o2")
		if !o1.Ended || o2 == nil || !o2.Ended {
			return fmt.Errorf("o1 %+v o2 %+v", o1, o2)
		}
		return nil
	})
	if in := load(t, st, g, "order=nobody"); in != nil {
		t.Fatalf("a payment of no order started an instance: %+v", in)
	}
	ctx := context.Background()
	// The deadline cancelled o2 once; o1 was never cancelled.
	if _, err := w.iv.Send(ctx, "ledger", "o2", Cancel{Why: "again"}); err == nil {
		t.Fatal("o2 was not cancelled by the deadline")
	}
	if _, err := w.iv.Send(ctx, "ledger", "o1", Cancel{Why: "check"}); err != nil {
		t.Fatalf("o1 was cancelled: %v", err)
	}
}

// testWriter sends logs to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// An event whose association is empty is dead, with the reason, not
// skipped; the events after it are handled.
func TestSagaEmptyAssociationIsDead(t *testing.T) {
	w := newWorld(t)
	st := store.NewMemory()
	s := orderSagaDef(time.Hour)
	r := w.run(t, s, st)
	w.publish(t, ordersTopic, "k", OrderPlaced{Order: "", Amount: 1})
	w.publish(t, ordersTopic, "k2", OrderPlaced{Order: "o3", Amount: 1})
	testenv.Eventually(t, "o3 started", 30*time.Second, func() error {
		if load(t, st, s.Group(), "order=o3") == nil {
			return errors.New("not yet")
		}
		return nil
	})
	testenv.Eventually(t, "the dead event", 30*time.Second, func() error {
		if r.Status().Dead != 1 {
			return fmt.Errorf("status %+v", r.Status())
		}
		return nil
	})
	x, err := deadletter.Load(context.Background(), []string{w.addr}, s.Group())
	if err != nil {
		t.Fatal(err)
	}
	items := x.List(deadletter.Filter{})
	if len(items) != 1 || !strings.Contains(items[0].Entry.Error, "association \"order\"") || !strings.Contains(items[0].Entry.Error, "empty") {
		t.Fatalf("dead events: %+v", items)
	}
}

func TestNewRunnerRefusesBadDefinitions(t *testing.T) {
	serde := testenv.Serde(t)
	brokers := []string{"127.0.0.1:1"}
	noStart := sagas.New[orderSaga]("test", "orders", 1, ordersTopic)
	sagas.On(noStart, sagas.By("order", func(e OrderPaid) string { return e.Order }), func(context.Context, OrderPaid, *sagas.Instance[orderSaga]) error { return nil })
	badKey := sagas.New[orderSaga]("test", "orders", 1, ordersTopic)
	sagas.Start(badKey, sagas.By("order id", func(e OrderPlaced) string { return e.Order }), func(context.Context, OrderPlaced, *sagas.Instance[orderSaga]) error { return nil })
	for _, c := range []struct {
		name string
		s    *sagas.Saga[orderSaga]
		opts []sagas.Option
		want string
	}{
		{"no start handler", noStart, nil, "no Start handler"},
		{"bad association key", badKey, nil, `association "order id"`},
		{"bad name", sagas.New[orderSaga]("test", "my saga", 1, ordersTopic), nil, "without spaces"},
		{"no topics", sagas.New[orderSaga]("test", "orders", 1), nil, "no topics"},
		{"a consumer store", orderSagaDef(time.Second), []sagas.Option{sagas.WithRunnerOptions(consumers.WithKafkaOffsets())}, "sagas.WithStore"},
		{"negative timeout", orderSagaDef(time.Second), []sagas.Option{sagas.WithSendTimeout(-time.Second)}, "SendTimeout"},
	} {
		if c.name == "bad name" {
			sagas.Start(c.s, sagas.By("order", func(e OrderPlaced) string { return e.Order }), func(context.Context, OrderPlaced, *sagas.Instance[orderSaga]) error { return nil })
		}
		_, err := sagas.NewRunner(c.s, serde, brokers, noSender{}, c.opts...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

// noSender is for definitions that never run.
type noSender struct{}

func (noSender) Send(context.Context, string, string, any, ...aggregates.SendOption) (aggregates.Result, error) {
	return aggregates.Result{}, errors.New("not sending")
}

func TestRunUnreachableBroker(t *testing.T) {
	r, err := sagas.NewRunner(orderSagaDef(time.Second), testenv.Serde(t), []string{testenv.FreeAddr(t)}, noSender{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = r.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "sagas: test.orders.v1") || !errors.Is(err, streams.ErrBrokerUnreachable) {
		t.Fatalf("Run on an unreachable broker: %v", err)
	}
}

// A saga event that fails for good is dead, its instance's later events
// wait behind it, and a redrive handles them in order, on the instance's
// home partition.
func TestSagaDeadEventParksAndRedrives(t *testing.T) {
	w := newWorld(t)
	st := store.NewMemory()
	var broken atomic.Bool
	broken.Store(true)
	s := sagas.New[orderSaga]("test", "orders", 1, ordersTopic, paymentsTopic)
	sagas.Start(s, sagas.By("order", func(e OrderPlaced) string { return e.Order }), func(ctx context.Context, e OrderPlaced, in *sagas.Instance[orderSaga]) error {
		if broken.Load() {
			return errors.New("the pricing table is broken")
		}
		in.State.Amount = e.Amount
		return nil
	})
	sagas.On(s, sagas.By("order", func(e OrderPaid) string { return e.Order }), func(ctx context.Context, e OrderPaid, in *sagas.Instance[orderSaga]) error {
		if in.State.Amount == 0 {
			return errors.New("paid before placed: order lost")
		}
		in.State.Paid = true
		in.End()
		return nil
	})
	r := w.run(t, s, st)
	dead := func(n int) func() error {
		return func() error {
			if d := r.Status().Dead; d != n {
				return fmt.Errorf("%d dead", d)
			}
			return nil
		}
	}
	// Events of two topics have no order between them until routed: the
	// payment is written once the order's event is dead.
	w.publish(t, ordersTopic, "o5", OrderPlaced{Order: "o5", Amount: 9})
	testenv.Eventually(t, "the dead event", 60*time.Second, dead(1))
	w.publish(t, paymentsTopic, "o5", OrderPaid{Order: "o5", Payment: "p5"})
	testenv.Eventually(t, "the parked one", 60*time.Second, dead(2))
	if in := load(t, st, s.Group(), "order=o5"); in != nil {
		t.Fatalf("an instance from a dead start: %+v", in)
	}
	broken.Store(false)
	ctx := context.Background()
	if _, err := deadletter.Redrive(ctx, []string{w.addr}, s.Group(), deadletter.Selection{Key: "order=o5"}, deadletter.Decision{Who: "test", Why: "fixed"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "o5 placed then paid", 60*time.Second, func() error {
		in := load(t, st, s.Group(), "order=o5")
		if in == nil || !in.Ended || len(in.History) != 2 {
			return fmt.Errorf("instance %+v", in)
		}
		return nil
	})
	if r.Status().Dead != 0 {
		t.Fatalf("dead events left: %+v", r.Status())
	}
}

// A new version rebuilds its instances from the topics: a deadline the
// old version fired fires again with the same command ids (applied once),
// and one still pending is pending in the new version with its due time.
func TestNewVersionKeepsDeadlines(t *testing.T) {
	w := newWorld(t)
	mk := func(version int, timeout time.Duration) *sagas.Saga[orderSaga] {
		s := sagas.New[orderSaga]("test", "orders", version, ordersTopic, paymentsTopic)
		sagas.Start(s, sagas.By("order", func(e OrderPlaced) string { return e.Order }), func(ctx context.Context, e OrderPlaced, in *sagas.Instance[orderSaga]) error {
			in.Schedule("pay", timeout)
			return nil
		})
		sagas.OnDeadline(s, "pay", func(ctx context.Context, in *sagas.Instance[orderSaga]) error {
			if _, err := in.Send(ctx, "ledger", in.ID()[len("order="):], Charge{Amount: 1}); err != nil {
				return err
			}
			in.End()
			return nil
		})
		return s
	}
	v1, st1 := mk(1, 0), store.NewMemory()
	ctx, stop := context.WithCancel(context.Background())
	r1, err := sagas.NewRunner(v1, w.serde, []string{w.addr}, w.iv, sagas.WithStore(st1))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r1.Run(ctx) }()
	w.publish(t, ordersTopic, "a", OrderPlaced{Order: "a"}) // due at once: fired by v1
	testenv.Eventually(t, "v1 fired a's deadline", 30*time.Second, func() error {
		if in := load(t, st1, v1.Group(), "order=a"); in == nil || !in.Ended {
			return fmt.Errorf("a: %+v", in)
		}
		return nil
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	due := time.Now().Add(3 * time.Second)
	w.publish(t, ordersTopic, "b", OrderPlaced{Order: "b"}) // written while no saga runs

	v2, st2 := mk(2, 3*time.Second), store.NewMemory()
	w.run(t, v2, st2)
	testenv.Eventually(t, "v2 rebuilt a and has b's deadline pending", 30*time.Second, func() error {
		a, b := load(t, st2, v2.Group(), "order=a"), load(t, st2, v2.Group(), "order=b")
		if a == nil || !a.Ended || b == nil || len(b.Deadlines) != 1 {
			return fmt.Errorf("a %+v b %+v", a, b)
		}
		if d := b.Deadlines[0].Due; d.Before(due.Add(-time.Second)) || d.After(due.Add(time.Second)) {
			return fmt.Errorf("b due %v, want about %v (from the event's time)", d, due)
		}
		return nil
	})
	testenv.Eventually(t, "b's deadline fired", 30*time.Second, func() error {
		if b := load(t, st2, v2.Group(), "order=b"); !b.Ended {
			return fmt.Errorf("b %+v", b)
		}
		return nil
	})
	// One Charged event per order: v2 fired a's deadline again while
	// rebuilding (its due time had passed), and the charge it sent had the
	// command id v1's had (ids derive from the saga's name, the instance
	// and the deadline, not the version or the due time), so the ledger
	// applied it once.
	charged := map[string]int{}
	for _, rec := range testenv.ReadTopic(t, w.addr, aggregates.EventsTopic("ledger")) {
		charged[string(rec.Key)]++
	}
	if charged["a"] != 1 || charged["b"] != 1 {
		t.Fatalf("charges per order: %v, want one each", charged)
	}
}
