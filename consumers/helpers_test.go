package consumers_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/consumers"
	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

// The test domain: accounts whose balance is the fold of their events.
type (
	Deposited struct{ Amount int64 }
	Withdrawn struct{ Amount int64 }
	Audited   struct{ Note string } // no projector handles it
)

const topic = "bank.events"

// bank is a broker, a registry and a publisher of bank events.
type bank struct {
	t     testing.TB
	addr  string
	serde *schema.Serde
	pub   *streams.Publisher
	seq   int
	// handled counts the published events a projector handles (all but
	// the audit notes).
	handled int64
}

// quiet discards the logs of benchmarks.
var quiet = slog.New(slog.DiscardHandler)

func newBank(t testing.TB, partitions int32) *bank {
	t.Helper()
	b := &bank{t: t, addr: testenv.Kafka(t), serde: testenv.Serde(t)}
	testenv.Topic(t, b.addr, topic, partitions)
	var err error
	b.pub, err = streams.NewPublisher([]string{b.addr}, streams.WithCodec(b.serde))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.pub.Close(context.Background()) })
	return b
}

// publish writes n events over accounts accounts: deposits, withdrawals
// and one audit note in ten.
func (b *bank) publish(n, accounts int) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs := make([]*kgo.Record, 0, n)
	for range n {
		b.seq++
		var v any = Deposited{Amount: int64(1 + b.seq%97)}
		switch b.seq % 10 {
		case 3, 7:
			v = Withdrawn{Amount: int64(b.seq % 13)}
			b.handled++
		case 9:
			v = Audited{Note: "checked"}
		default:
			b.handled++
		}
		recs = append(recs, b.record(ctx, "acct-"+strconv.Itoa(rand.IntN(accounts)), v))
	}
	if err := b.pub.Publish(ctx, recs...); err != nil {
		b.t.Fatal(err)
	}
}

func (b *bank) record(ctx context.Context, account string, v any) *kgo.Record {
	b.t.Helper()
	val, typ, err := b.serde.Encode(ctx, topic, v)
	if err != nil {
		b.t.Fatal(err)
	}
	r := &kgo.Record{Topic: topic, Key: []byte(account), Value: val}
	streams.Envelope{Type: typ, AggregateID: account}.Write(r)
	return r
}

// ledger is a read model: balance and event count per account, and (for
// some projectors and folds) the amounts in the order they were applied.
type ledger struct {
	Balance map[string]int64
	Count   map[string]int64
	Order   map[string][]int64
}

func newLedger() ledger {
	return ledger{Balance: map[string]int64{}, Count: map[string]int64{}, Order: map[string][]int64{}}
}

// fold is the ledger the topic's committed events make: what every
// projector must end with.
func (b *bank) fold() ledger { return b.foldWithout(nil) }

// foldWithout is the fold of the topic without the events ids (dead ones,
// by deadletter.ID).
func (b *bank) foldWithout(ids map[string]bool) ledger {
	b.t.Helper()
	l := newLedger()
	ctx := context.Background()
	for _, r := range testenv.ReadTopic(b.t, b.addr, topic) {
		if ids[deadletter.ID(r.Topic, r.Partition, r.Offset)] {
			continue
		}
		typ, _ := streams.Header(r, streams.HeaderType)
		acct := string(r.Key)
		var delta int64
		switch typ {
		case typeName(b.t, b.serde, Deposited{}):
			var e Deposited
			must(b.t, b.serde.Decode(ctx, topic, r.Value, &e))
			delta = e.Amount
		case typeName(b.t, b.serde, Withdrawn{}):
			var e Withdrawn
			must(b.t, b.serde.Decode(ctx, topic, r.Value, &e))
			delta = -e.Amount
		default:
			continue
		}
		l.Balance[acct] += delta
		l.Count[acct]++
		l.Order[acct] = append(l.Order[acct], delta)
	}
	return l
}

func typeName(t testing.TB, s *schema.Serde, v any) string {
	t.Helper()
	n, err := s.TypeName(v)
	must(t, err)
	return n
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// memoryProjector keeps its ledger in process memory, written through
// state.OnCommit so it changes only with the positions.
func memoryProjector(name string, version int) (*consumers.Consumer, func() ledger) {
	return checkedProjector(name, version, nil)
}

// checkedProjector is a memoryProjector whose handlers first ask check
// (if not nil), which may fail or panic; its ledger also keeps the order
// in which each account's amounts were applied.
func checkedProjector(name string, version int, check func(md consumers.Metadata, amount int64) error) (*consumers.Consumer, func() ledger) {
	p := consumers.NewProjector("bank", name, version, topic)
	var mu sync.Mutex
	l := newLedger()
	apply := func(ctx context.Context, md consumers.Metadata, delta int64) error {
		if check != nil {
			if err := check(md, delta); err != nil {
				return err
			}
		}
		acct := md.Key()
		state.OnCommit(ctx, func() {
			mu.Lock()
			defer mu.Unlock()
			l.Balance[acct] += delta
			l.Count[acct]++
			l.Order[acct] = append(l.Order[acct], delta)
		})
		return nil
	}
	consumers.On(p, func(ctx context.Context, e Deposited, md consumers.Metadata) error {
		return apply(ctx, md, e.Amount)
	})
	consumers.On(p, func(ctx context.Context, e Withdrawn, md consumers.Metadata) error {
		return apply(ctx, md, -e.Amount)
	})
	return p, func() ledger {
		mu.Lock()
		defer mu.Unlock()
		order := map[string][]int64{}
		for k, v := range l.Order {
			order[k] = slices.Clone(v)
		}
		return ledger{Balance: maps.Clone(l.Balance), Count: maps.Clone(l.Count), Order: order}
	}
}

// redisProjector keeps its ledger in two Redis hashes under its group's
// name, written through the batch's pipeline.
func redisProjector(name string, version int) *consumers.Consumer {
	p := consumers.NewProjector("bank", name, version, topic)
	apply := func(ctx context.Context, md consumers.Metadata, delta int64) {
		tx, acct := state.Redis(ctx), md.Key()
		tx.HIncrBy(ctx, md.Group+":balance", acct, delta)
		tx.HIncrBy(ctx, md.Group+":count", acct, 1)
	}
	consumers.On(p, func(ctx context.Context, e Deposited, md consumers.Metadata) error {
		apply(ctx, md, e.Amount)
		return nil
	})
	consumers.On(p, func(ctx context.Context, e Withdrawn, md consumers.Metadata) error {
		apply(ctx, md, -e.Amount)
		return nil
	})
	return p
}

// redisLedger reads a redisProjector's ledger.
func redisLedger(t testing.TB, rdb *redis.Client, group string) ledger {
	t.Helper()
	l := newLedger()
	for field, m := range map[string]map[string]int64{"balance": l.Balance, "count": l.Count} {
		vals, err := rdb.HGetAll(context.Background(), group+":"+field).Result()
		must(t, err)
		for k, v := range vals {
			n, err := strconv.ParseInt(v, 10, 64)
			must(t, err)
			m[k] = n
		}
	}
	return l
}

func redisStore(t testing.TB, rdb redis.UniversalClient) state.Store {
	t.Helper()
	s, err := state.NewRedis(rdb)
	must(t, err)
	return s
}

// start runs a runner until the test's cleanup (or stop) and returns it.
func start(t testing.TB, b *bank, c *consumers.Consumer, opts ...consumers.RunnerOption) (*consumers.Runner, func()) {
	t.Helper()
	r, err := consumers.NewRunner(c, b.serde, []string{b.addr}, opts...)
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("runner %s: %v", r.Group(), err)
			}
		})
	}
	t.Cleanup(stop)
	return r, stop
}

// equal fails the test unless got equals want, naming the first difference.
func equal(t testing.TB, what string, got, want ledger) {
	t.Helper()
	if err := diff(got, want); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func diff(got, want ledger) error {
	for _, m := range []struct {
		name      string
		got, want map[string]int64
	}{{"balance", got.Balance, want.Balance}, {"count", got.Count, want.Count}} {
		if len(m.got) != len(m.want) {
			return fmt.Errorf("%s: %d accounts, want %d", m.name, len(m.got), len(m.want))
		}
		for k, v := range m.want {
			if m.got[k] != v {
				return fmt.Errorf("%s of %s: %d, want %d", m.name, k, m.got[k], v)
			}
		}
	}
	return nil
}

func waitHead(t testing.TB, r *consumers.Runner) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	must(t, r.WaitHead(ctx))
}

func catchUp(t testing.TB, r *consumers.Runner) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	must(t, r.CatchUp(ctx))
}
