package consumers_test

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/consumers"
	"github.com/recq/recq/consumers/dedupe"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

// copyOf is a deposit with the event id id on partition p, as a
// re-published event (streams.Stamp keeps the id already on a record).
func (b *bank) copyOf(id string, p int32, amount int64) *kgo.Record {
	b.t.Helper()
	r := b.record(context.Background(), "acct-copies", Deposited{Amount: amount})
	r.Partition = p
	streams.Envelope{ID: id}.Write(r)
	return r
}

// Copies of one event id: two in one partition's batch, one in each
// partition of one poll, and one more in a later batch; and two copies of
// an event the handler refuses. Each id's side effect happens once, and the
// refused event is dead once.
func TestObserverHandlesEachEventIDOnce(t *testing.T) {
	b := newBank(t, 2)
	var mu sync.Mutex
	calls := map[string]int{}    // event id -> side effects
	attempts := map[string]int{} // event id -> handler calls
	o := consumers.NewObserver("bank", "once", 1, topic)
	consumers.On(o, func(_ context.Context, e Deposited, md consumers.Metadata) error {
		if md.ID() == "two-partitions" {
			// Long enough for the other partition's batch of the poll to
			// have asked the dedupe store before this copy is marked.
			time.Sleep(100 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		attempts[md.ID()]++
		if e.Amount == 13 {
			return deadletter.Permanent(errors.New("refused"))
		}
		calls[md.ID()]++
		return nil
	})
	dd, err := dedupe.NewMemory()
	must(t, err)
	opts := []consumers.RunnerOption{consumers.WithDedupe(dd), fastRetries}
	manual := testenv.Client(t, b.addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce := func(recs ...*kgo.Record) {
		t.Helper()
		must(t, manual.ProduceSync(context.Background(), recs...).FirstErr())
	}

	// A first run handles an event in each partition, so the group has
	// offsets to resume from.
	r1, stop1 := start(t, b, o, opts...)
	waitHead(t, r1)
	produce(b.copyOf("first-0", 0, 1), b.copyOf("first-1", 1, 1))
	catchUp(t, r1)
	stop1()

	// While no member runs, so the next run's first poll holds them all.
	produce(b.copyOf("same-batch", 0, 1), b.copyOf("other", 0, 2), b.copyOf("same-batch", 0, 1),
		b.copyOf("poison", 0, 13), b.copyOf("poison", 0, 13), b.copyOf("two-partitions", 1, 3))
	produce(b.copyOf("two-partitions", 0, 3))
	r2, _ := start(t, b, o, opts...)
	catchUp(t, r2)
	produce(b.copyOf("same-batch", 1, 1), b.copyOf("later", 1, 4))
	catchUp(t, r2)
	produce(b.copyOf("later", 1, 4))
	catchUp(t, r2)

	mu.Lock()
	defer mu.Unlock()
	want := map[string]int{"first-0": 1, "first-1": 1, "same-batch": 1, "other": 1, "two-partitions": 1, "later": 1}
	if !maps.Equal(calls, want) {
		t.Fatalf("side effects per event id %v, want %v", calls, want)
	}
	if attempts["poison"] != 3 {
		t.Fatalf("the refused event was tried %d times, want 3 (the policy's attempts, for one copy)", attempts["poison"])
	}
	if dead := queue(t, b, o.Group()).List(deadletter.Filter{}); len(dead) != 1 {
		t.Fatalf("dead events %v, want the first copy of the refused one only", ids(dead))
	}
}
