package consumers_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/consumers"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

// fastRetries keeps the tests' retries short.
var fastRetries = consumers.WithRetryPolicy(deadletter.Policy{Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})

// queue reads group's dead event queue.
func queue(t testing.TB, b *bank, group string) *deadletter.Index {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	idx, err := deadletter.Load(ctx, []string{b.addr}, group)
	must(t, err)
	return idx
}

// produce writes raw records (no stamping, no encoding).
func (b *bank) produce(recs ...*kgo.Record) {
	b.t.Helper()
	cl := testenv.Client(b.t, b.addr)
	must(b.t, cl.ProduceSync(context.Background(), recs...).FirstErr())
}

func ids(items []deadletter.Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Entry.ID)
	}
	return out
}

func set(ids []string) map[string]bool {
	m := map[string]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// Poison in a live stream: random bytes, an unknown schema id, valid Avro
// of another type, a record without a recq type, an event the handler
// panics on, and an account whose handler always fails. Each reaches the
// dead event queue with its reason (the failing account's later events
// parked behind its first), and every other event is applied: the ledger
// equals the fold of the topic without them, and every record is applied,
// dead, or of a type nobody here handles.
func TestPoisonEventsGoToTheDeadEventQueue(t *testing.T) {
	b := newBank(t, 3)
	p, read := checkedProjector("poison", 1, func(md consumers.Metadata, amount int64) error {
		switch {
		case amount == 666:
			panic("the number of the beast")
		case md.Key() == "acct-bad":
			return errors.New("account acct-bad is closed")
		}
		return nil
	})
	ctx := context.Background()
	deposited := typeName(t, b.serde, Deposited{})
	typed := func(key string, value []byte) *kgo.Record {
		r := &kgo.Record{Topic: topic, Key: []byte(key), Value: value}
		streams.Envelope{Type: deposited, AggregateID: key}.Write(r)
		return r
	}
	wrongType := b.record(ctx, "poison-wrong-type", Audited{Note: "not a deposit"})
	streams.Envelope{Type: deposited}.Write(wrongType)
	b.publish(300, 10)
	b.produce(
		typed("poison-bytes", []byte{0xff, 0x13, 0x37, 0x00, 0x42}),
		typed("poison-schema-id", []byte{0, 0x00, 0x0f, 0x42, 0x3f, 0x02}),
		wrongType,
		&kgo.Record{Topic: topic, Key: []byte("poison-no-type"), Value: []byte("hello")},
		b.record(ctx, "poison-panic", Deposited{Amount: 666}),
	)
	for i := range 5 {
		b.produce(b.record(ctx, "acct-bad", Deposited{Amount: int64(10 + i)}))
	}
	b.publish(300, 10)

	r, _ := start(t, b, p, fastRetries)
	waitHead(t, r)
	idx := queue(t, b, p.Group())
	want := map[string]struct {
		reason deadletter.Reason
		err    string
	}{
		"poison-bytes":      {deadletter.ReasonUndecodable, "not Confluent-framed"},
		"poison-schema-id":  {deadletter.ReasonUndecodable, "unknown schema id"},
		"poison-wrong-type": {deadletter.ReasonUndecodable, "incompatible"},
		"poison-no-type":    {deadletter.ReasonNoType, "no recq-type header"},
		"poison-panic":      {deadletter.ReasonPanic, "the number of the beast"},
	}
	for key, w := range want {
		items := idx.List(deadletter.Filter{Key: key})
		if len(items) != 1 {
			t.Fatalf("%s: %d dead events, want 1", key, len(items))
		}
		e := items[0].Entry
		if e.Reason != w.reason || !strings.Contains(e.Error, w.err) || items[0].Status != deadletter.StatusPending {
			t.Errorf("%s: reason %s, error %q, status %s; want %s, an error saying %q, pending", key, e.Reason, e.Error, items[0].Status, w.reason, w.err)
		}
		if e.Group != p.Group() || e.Topic != topic || e.Generation != 1 || e.FirstFailure.IsZero() || e.LastFailure.Before(e.FirstFailure) {
			t.Errorf("%s: entry %+v", key, e)
		}
	}
	if e := idx.List(deadletter.Filter{Key: "poison-panic"})[0].Entry; e.Attempts != 3 || !strings.Contains(e.Stack, "goroutine") || e.Kind != deadletter.KindPermanent {
		t.Errorf("panic: %d attempts, kind %s, stack %q; want 3 attempts, permanent, a stack", e.Attempts, e.Kind, e.Stack)
	}
	if e := idx.List(deadletter.Filter{Key: "poison-bytes"})[0].Entry; e.Attempts != 1 || e.Handler != deposited {
		t.Errorf("undecodable: %d attempts, handler %q; want dead at the first attempt, handler %s", e.Attempts, e.Handler, deposited)
	}
	bad := idx.List(deadletter.Filter{Key: "acct-bad"})
	if len(bad) != 5 || bad[0].Entry.Reason != deadletter.ReasonHandler || bad[0].Entry.Attempts != 3 {
		t.Fatalf("acct-bad: %d dead events, the first %+v; want 5, the first failed 3 times", len(bad), bad[0].Entry)
	}
	for _, it := range bad[1:] {
		if it.Entry.Reason != deadletter.ReasonParked || it.Entry.ParkedBehind != bad[0].Entry.ID || it.Entry.Offset <= bad[0].Entry.Offset {
			t.Fatalf("acct-bad: %+v, want parked behind %s", it.Entry, bad[0].Entry.ID)
		}
	}
	// The original record is kept whole.
	if e := idx.List(deadletter.Filter{Key: "poison-bytes"})[0].Entry; string(e.Value) != "\xff\x13\x37\x00\x42" {
		t.Errorf("poison-bytes: value %q not kept", e.Value)
	}

	dead := set(ids(idx.List(deadletter.Filter{})))
	if n := r.Status().Dead; n != len(dead) {
		t.Fatalf("Status().Dead = %d, the queue holds %d pending", n, len(dead))
	}
	got := read()
	equal(t, "ledger without the dead events", got, b.foldWithout(dead))
	var applied, unhandled, total int
	for _, n := range got.Count {
		applied += int(n)
	}
	for _, rec := range testenv.ReadTopic(t, b.addr, topic) {
		total++
		if typ, _ := streams.Header(rec, streams.HeaderType); typ == typeName(t, b.serde, Audited{}) && !dead[deadletter.ID(rec.Topic, rec.Partition, rec.Offset)] {
			unhandled++
		}
	}
	if applied+len(dead)+unhandled != total {
		t.Fatalf("%d records: %d applied, %d dead, %d not handled here: %d lost or counted twice", total, applied, len(dead), unhandled, total-applied-len(dead)-unhandled)
	}
	t.Logf("%d records: %d applied, %d dead, %d audit notes skipped", total, applied, len(dead), unhandled)
}

// A dependency down for two seconds (connection refused, unmarked: the
// classifier calls it transient) holds the partitions: nothing goes to the
// dead event queue, nothing is skipped, and handling resumes.
func TestTransientOutageDeadLettersNothing(t *testing.T) {
	b := newBank(t, 2)
	var until atomic.Int64
	p, read := checkedProjector("outage", 1, func(consumers.Metadata, int64) error {
		if time.Now().UnixNano() < until.Load() {
			return fmt.Errorf("ledger service: %w", syscall.ECONNREFUSED)
		}
		return nil
	})
	var retried atomic.Int64
	hooks := consumers.WithHooks(deadletter.Hooks{Retried: func(_, _ string, k deadletter.Kind) {
		if k == deadletter.KindTransient {
			retried.Add(1)
		}
	}})
	b.publish(500, 10)
	until.Store(time.Now().Add(2 * time.Second).UnixNano())
	r, _ := start(t, b, p, fastRetries, hooks)
	waitHead(t, r)
	if time.Now().UnixNano() < until.Load() {
		t.Fatal("reached the head during the outage")
	}
	equal(t, "after the outage", read(), b.fold())
	if items := queue(t, b, p.Group()).List(deadletter.Filter{}); len(items) != 0 {
		t.Fatalf("%d dead events after a transient outage, want none: %v", len(items), ids(items))
	}
	if retried.Load() < 10 {
		t.Fatalf("%d transient retries reported, want many over two seconds", retried.Load())
	}
}

// An account's handler fails for good: its first event is dead and its
// later ones are parked behind it. Redriving while it still fails sends
// them back (generation 2, attempts counted on); once it is fixed,
// redriving the first one alone releases the rest, which are applied in
// their original order, with those that came in meanwhile, and later
// events of the account flow again.
func TestParkedEventsAreRedrivenInOrder(t *testing.T) {
	b := newBank(t, 3)
	var frozen atomic.Bool
	frozen.Store(true)
	var elsewhere atomic.Int64 // handlings that saw another place than the event's own
	p, read := checkedProjector("parking", 1, func(md consumers.Metadata, _ int64) error {
		if md.Topic != topic {
			elsewhere.Add(1)
		}
		if md.Key() == "acct-1" && frozen.Load() {
			return errors.New("acct-1 is frozen")
		}
		return nil
	})
	b.publish(400, 5)
	r, stop := start(t, b, p, fastRetries)
	waitHead(t, r)
	items := queue(t, b, p.Group()).List(deadletter.Filter{Key: "acct-1"})
	if len(items) < 10 || items[0].Entry.Reason != deadletter.ReasonHandler {
		t.Fatalf("acct-1: %d dead events, want its ~70 events, the first failed", len(items))
	}
	for _, it := range items[1:] {
		if it.Entry.Reason != deadletter.ReasonParked {
			t.Fatalf("acct-1: %+v not parked", it.Entry)
		}
	}
	equal(t, "with acct-1 parked", read(), b.foldWithout(set(ids(items))))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	redrive := func(why string) {
		t.Helper()
		acts, err := deadletter.Redrive(ctx, []string{b.addr}, p.Group(), deadletter.Selection{IDs: ids(items)}, deadletter.Decision{Who: "test", Why: why})
		must(t, err)
		if len(acts) != len(items) {
			t.Fatalf("%d actions for %d events", len(acts), len(items))
		}
	}
	// Still frozen: back to the queue, one generation on.
	redrive("try again")
	testenv.Eventually(t, "redriven events back in the queue", time.Minute, func() error {
		for _, it := range queue(t, b, p.Group()).List(deadletter.Filter{Key: "acct-1"}) {
			if it.Status != deadletter.StatusPending || it.Entry.Generation != 2 {
				return fmt.Errorf("%s: %s, generation %d", it.Entry.ID, it.Status, it.Entry.Generation)
			}
		}
		return nil
	})
	items = queue(t, b, p.Group()).List(deadletter.Filter{Key: "acct-1"})
	if e := items[0].Entry; e.Attempts != 6 || e.Reason != deadletter.ReasonHandler {
		t.Fatalf("the head after failing again: %d attempts (%s), want 6 (3 + 3)", e.Attempts, e.Reason)
	}
	if _, err := deadletter.Redrive(ctx, []string{b.addr}, p.Group(), deadletter.Selection{IDs: ids(items[:1])}, deadletter.Decision{Who: "test"}); err != nil {
		t.Fatal(err)
	}
	// Fixed: the rest waits for the head; all of them go in order.
	testenv.Eventually(t, "the head failing a third time", time.Minute, func() error {
		if it, _ := queue(t, b, p.Group()).Get(items[0].Entry.ID); it.Entry.Generation != 3 {
			return fmt.Errorf("generation %d", it.Entry.Generation)
		}
		return nil
	})
	// Fixed: redrive the head alone. Once it is handled, the events parked
	// behind it are released by the consumer, in order, and so are those
	// that arrive while it is being redriven.
	frozen.Store(false)
	if _, err := deadletter.Redrive(ctx, []string{b.addr}, p.Group(), deadletter.Selection{IDs: ids(items[:1])}, deadletter.Decision{Who: "test", Why: "fixed"}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		b.produce(b.record(ctx, "acct-1", Deposited{Amount: 1000}))
	}
	catchUp(t, r)
	testenv.Eventually(t, "every acct-1 event redriven", time.Minute, func() error {
		for _, it := range queue(t, b, p.Group()).List(deadletter.Filter{Key: "acct-1"}) {
			if it.Status != deadletter.StatusRedriven {
				return fmt.Errorf("%s: %s", it.Entry.ID, it.Status)
			}
		}
		return nil
	})
	if it, _ := queue(t, b, p.Group()).Get(items[1].Entry.ID); it.Actions[len(it.Actions)-2].Who == "test" ||
		!strings.Contains(it.Actions[len(it.Actions)-2].Why, "released") {
		t.Fatalf("the parked events were not released by the consumer: %+v", it.Actions)
	}
	want := b.fold()
	equal(t, "after the redrive", read(), want)
	if got := read().Order["acct-1"]; !slices.Equal(got, want.Order["acct-1"]) {
		t.Fatalf("acct-1 applied in the order %v, the topic's is %v", got, want.Order["acct-1"])
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("%d redriven events showed the handler the retry topic, not where they were written", n)
	}
	// New events of the account are applied at once.
	b.publish(100, 5)
	catchUp(t, r)
	equal(t, "after more events", read(), b.fold())
	if n := len(queue(t, b, p.Group()).List(deadletter.Filter{Status: deadletter.StatusPending})); n != 0 {
		t.Fatalf("%d pending dead events after the redrive, want none", n)
	}

	// A restart on the memory store rebuilds the ledger from the
	// beginning: the redriven events come back from the retry topic (their
	// originals are dead), and the queue gains nothing.
	stop()
	before := len(queue(t, b, p.Group()).List(deadletter.Filter{}))
	p2, read2 := checkedProjector("parking", 1, nil)
	r2, _ := start(t, b, p2, fastRetries)
	waitHead(t, r2)
	equal(t, "rebuilt after a restart", read2(), b.fold())
	if after := queue(t, b, p.Group()).List(deadletter.Filter{}); len(after) != before {
		t.Fatalf("the rebuild added %d entries to the queue", len(after)-before)
	}
}

// An observer does not park by default: a side effect for one event is
// not held back by a failed one of the same key. Its failing event is dead
// once, and every other event's side effect happens once.
func TestObserverDeadEventsDoNotPark(t *testing.T) {
	b := newBank(t, 2)
	var mu sync.Mutex
	calls := map[string]int{} // account -> side effects
	o := consumers.NewObserver("bank", "notifier", 1, topic)
	var bad atomic.Int64 // the offset of acct-0's first deposit fails for good
	bad.Store(-1)
	consumers.On(o, func(_ context.Context, e Deposited, md consumers.Metadata) error {
		if md.Key() == "acct-0" && (bad.CompareAndSwap(-1, md.Offset) || bad.Load() == md.Offset) {
			return errors.New("mail server refused the address")
		}
		mu.Lock()
		calls[md.Key()]++
		mu.Unlock()
		return nil
	})
	r, _ := start(t, b, o, fastRetries)
	waitHead(t, r)
	b.publish(300, 3)
	catchUp(t, r)
	items := queue(t, b, o.Group()).List(deadletter.Filter{})
	if len(items) != 1 || items[0].Entry.Reason != deadletter.ReasonHandler || string(items[0].Entry.Key) != "acct-0" {
		t.Fatalf("dead events: %+v, want acct-0's first deposit only", items)
	}
	want := map[string]int{}
	for _, rec := range testenv.ReadTopic(t, b.addr, topic) {
		if typ, _ := streams.Header(rec, streams.HeaderType); typ == typeName(t, b.serde, Deposited{}) &&
			deadletter.ID(rec.Topic, rec.Partition, rec.Offset) != items[0].Entry.ID {
			want[string(rec.Key)]++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !maps.Equal(calls, want) {
		t.Fatalf("side effects per account %v, want %v (every deposit but the dead one, once)", calls, want)
	}
}

// A handler with its own policy (consumers.Retry) is tried as it says, the
// others as the runner's policy says: a payment handler that must not give
// up soon, a notification that may.
func TestHandlerRetryPolicyOverridesTheRunners(t *testing.T) {
	b := newBank(t, 1)
	var mu sync.Mutex
	tries := map[string]int{}
	fail := func(kind string) error {
		mu.Lock()
		defer mu.Unlock()
		tries[kind]++
		return errors.New(kind + " refused")
	}
	o := consumers.NewObserver("bank", "policies", 1, topic)
	consumers.On(o, func(context.Context, Deposited, consumers.Metadata) error { return fail("deposit") })
	consumers.On(o, func(context.Context, Withdrawn, consumers.Metadata) error { return fail("withdrawal") },
		consumers.Retry(deadletter.Policy{Attempts: 5, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}))
	r, _ := start(t, b, o, fastRetries) // the runner's: 3 attempts
	waitHead(t, r)
	ctx := context.Background()
	must(t, b.pub.Publish(ctx, b.record(ctx, "acct-1", Deposited{Amount: 1}), b.record(ctx, "acct-1", Withdrawn{Amount: 1})))
	catchUp(t, r)
	if n := len(queue(t, b, o.Group()).List(deadletter.Filter{})); n != 2 {
		t.Fatalf("%d dead events, want both", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if tries["deposit"] != 3 || tries["withdrawal"] != 5 {
		t.Fatalf("attempts %v, want the deposit tried 3 times (the runner's policy) and the withdrawal 5 (its own)", tries)
	}
}
