// Package statetest is the conformance suite for implementations of
// [state.Store]. Every store runs it from its own tests with a Harness that
// says how a handler writes a counter of the read model and how the test
// reads it back.
package statetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/recq/recq/consumers/state"
)

// Harness adapts one store to the suite.
type Harness struct {
	// New returns an empty store for one test; cleaning up is its job.
	New func(t *testing.T) state.Store
	// Add adds delta to the counter key of the read model, from inside
	// Batch.Do (ctx is the handler's), the way a handler of this store
	// writes.
	Add func(ctx context.Context, s state.Store, key string, delta int64)
	// Read returns the counter's committed value (0 if never written).
	Read func(t *testing.T, s state.Store, key string) int64
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		run  func(t *testing.T, h Harness, s state.Store)
	}{
		{"FreshClaim", testFreshClaim},
		{"CommitAppliesWritesAndPosition", testCommit},
		{"NewClaimFencesOldLease", testFencing},
		{"FailedRecordLeavesNothing", testFailedRecord},
		{"OnCommitOrderAndOnlyOnSuccess", testOnCommit},
		{"GroupsAndPartitionsIsolated", testIsolation},
		{"RecommitIsIdempotent", testRecommit},
		{"ConcurrentPartitions", testConcurrent},
		{"LargeBatch", testLargeBatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, h, h.New(t)) })
	}
}

var p0 = state.Partition{Topic: "t.events", Partition: 0}

func claim(t *testing.T, s state.Store, group string, p state.Partition) state.Lease {
	t.Helper()
	l, err := s.Claim(context.Background(), group, p)
	if err != nil {
		t.Fatalf("claim %s %s: %v", group, p, err)
	}
	return l
}

// commit runs one batch adding deltas (one record each) to key.
func commit(t *testing.T, h Harness, s state.Store, l state.Lease, key string, next int64, deltas ...int64) error {
	t.Helper()
	b := s.Begin(l)
	for _, d := range deltas {
		if err := b.Do(context.Background(), func(ctx context.Context) error { h.Add(ctx, s, key, d); return nil }); err != nil {
			t.Fatalf("do: %v", err)
		}
	}
	return b.Commit(context.Background(), next)
}

func position(t *testing.T, s state.Store, group string, p state.Partition) (int64, bool) {
	t.Helper()
	ps, err := s.Positions(context.Background(), group)
	if err != nil {
		t.Fatalf("positions: %v", err)
	}
	n, ok := ps[p]
	return n, ok
}

func testFreshClaim(t *testing.T, _ Harness, s state.Store) {
	l := claim(t, s, "g", p0)
	if l.Next != state.NoPosition || l.Epoch < 1 || l.Group != "g" || l.Partition != p0 || l.Pending {
		t.Fatalf("fresh claim: %+v; want NoPosition, an epoch of 1 or more, group and partition, nothing pending", l)
	}
	if _, ok := position(t, s, "g", p0); ok {
		t.Fatal("a claim alone set a position")
	}
	if l2 := claim(t, s, "g", p0); l2.Epoch <= l.Epoch {
		t.Fatalf("second claim epoch %d, first %d: want higher", l2.Epoch, l.Epoch)
	}
}

func testCommit(t *testing.T, h Harness, s state.Store) {
	l := claim(t, s, "g", p0)
	if err := commit(t, h, s, l, "k", 10, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if got := h.Read(t, s, "k"); got != 6 {
		t.Fatalf("read model %d, want 6", got)
	}
	if n, _ := position(t, s, "g", p0); n != 10 {
		t.Fatalf("position %d, want 10", n)
	}
	if l2 := claim(t, s, "g", p0); l2.Next != 10 || l2.Pending {
		t.Fatalf("claim after commit: %+v, want next 10 and nothing pending", l2)
	}
}

func testFencing(t *testing.T, h Harness, s state.Store) {
	old := claim(t, s, "g", p0)
	must(t, commit(t, h, s, old, "k", 5, 1))
	cur := claim(t, s, "g", p0)
	err := commit(t, h, s, old, "k", 9, 100)
	if !errors.Is(err, state.ErrFenced) {
		t.Fatalf("commit under a superseded lease: want ErrFenced, got %v", err)
	}
	if got := h.Read(t, s, "k"); got != 1 {
		t.Fatalf("fenced commit changed the read model: %d, want 1", got)
	}
	if n, _ := position(t, s, "g", p0); n != 5 {
		t.Fatalf("fenced commit moved the position to %d", n)
	}
	must(t, commit(t, h, s, cur, "k", 9, 2))
	if got := h.Read(t, s, "k"); got != 3 {
		t.Fatalf("current lease's commit: read model %d, want 3", got)
	}
}

func testFailedRecord(t *testing.T, h Harness, s state.Store) {
	l := claim(t, s, "g", p0)
	b := s.Begin(l)
	ctx := context.Background()
	must(t, b.Do(ctx, func(ctx context.Context) error { h.Add(ctx, s, "k", 1); return nil }))
	boom := errors.New("boom")
	if err := b.Do(ctx, func(ctx context.Context) error { h.Add(ctx, s, "k", 100); return boom }); !errors.Is(err, boom) {
		t.Fatalf("Do returned %v, want the handler's error", err)
	}
	must(t, b.Do(ctx, func(ctx context.Context) error { h.Add(ctx, s, "k", 10); return nil }))
	if b.Len() != 2 {
		t.Fatalf("Len %d, want 2 (the failed record does not count)", b.Len())
	}
	must(t, b.Commit(ctx, 3))
	if got := h.Read(t, s, "k"); got != 11 {
		t.Fatalf("read model %d, want 11: the failed record's write must be dropped", got)
	}
}

func testOnCommit(t *testing.T, h Harness, s state.Store) {
	var ran []int
	l := claim(t, s, "g", p0)
	b := s.Begin(l)
	ctx := context.Background()
	for i := range 3 {
		must(t, b.Do(ctx, func(ctx context.Context) error {
			state.OnCommit(ctx, func() { ran = append(ran, i) })
			h.Add(ctx, s, "k", 1)
			return nil
		}))
	}
	_ = b.Do(ctx, func(ctx context.Context) error {
		state.OnCommit(ctx, func() { ran = append(ran, 99) })
		return errors.New("failed record")
	})
	if len(ran) != 0 {
		t.Fatalf("OnCommit ran before Commit: %v", ran)
	}
	must(t, b.Commit(ctx, 4))
	if fmt.Sprint(ran) != "[0 1 2]" {
		t.Fatalf("OnCommit ran %v, want [0 1 2]", ran)
	}
	// A fenced batch runs none.
	ran = nil
	stale := s.Begin(l)
	must(t, stale.Do(ctx, func(ctx context.Context) error { state.OnCommit(ctx, func() { ran = append(ran, 7) }); return nil }))
	claim(t, s, "g", p0)
	if err := stale.Commit(ctx, 8); !errors.Is(err, state.ErrFenced) || len(ran) != 0 {
		t.Fatalf("fenced commit: err %v, ran %v; want ErrFenced and nothing run", err, ran)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("OnCommit outside a handler did not panic")
		}
	}()
	state.OnCommit(ctx, func() {})
}

func testIsolation(t *testing.T, h Harness, s state.Store) {
	p1 := state.Partition{Topic: "t.events", Partition: 1}
	other := state.Partition{Topic: "u.events", Partition: 0}
	must(t, commit(t, h, s, claim(t, s, "g", p0), "a", 10, 1))
	must(t, commit(t, h, s, claim(t, s, "g", p1), "b", 20, 1))
	must(t, commit(t, h, s, claim(t, s, "g", other), "c", 30, 1))
	must(t, commit(t, h, s, claim(t, s, "h", p0), "d", 40, 1))
	ps, err := s.Positions(context.Background(), "g")
	must(t, err)
	want := map[state.Partition]int64{p0: 10, p1: 20, other: 30}
	if fmt.Sprint(ps) != fmt.Sprint(want) {
		t.Fatalf("positions of g: %v, want %v", ps, want)
	}
	if l := claim(t, s, "h", p1); l.Next != state.NoPosition {
		t.Fatalf("group h partition 1 has position %d from group g", l.Next)
	}
}

func testRecommit(t *testing.T, h Harness, s state.Store) {
	l := claim(t, s, "g", p0)
	b := s.Begin(l)
	ctx := context.Background()
	must(t, b.Do(ctx, func(ctx context.Context) error { h.Add(ctx, s, "k", 5); return nil }))
	must(t, b.Commit(ctx, 7))
	// Committing the same batch again, as a retry after a lost reply
	// would, must not apply it twice.
	must(t, b.Commit(ctx, 7))
	if got := h.Read(t, s, "k"); got != 5 {
		t.Fatalf("recommit applied twice: %d, want 5", got)
	}
}

func testConcurrent(t *testing.T, h Harness, s state.Store) {
	var wg sync.WaitGroup
	const parts, batches = 8, 20
	for p := range parts {
		wg.Go(func() {
			part := state.Partition{Topic: "t.events", Partition: int32(p)}
			l, err := s.Claim(context.Background(), "g", part)
			if err != nil {
				t.Error(err)
				return
			}
			for i := range batches {
				b := s.Begin(l)
				for range 5 {
					if err := b.Do(context.Background(), func(ctx context.Context) error { h.Add(ctx, s, "shared", 1); return nil }); err != nil {
						t.Error(err)
					}
				}
				if err := b.Commit(context.Background(), int64(i+1)*5); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if got := h.Read(t, s, "shared"); got != parts*batches*5 {
		t.Fatalf("counter %d, want %d", got, parts*batches*5)
	}
}

func testLargeBatch(t *testing.T, h Harness, s state.Store) {
	const n = 5000
	l := claim(t, s, "g", p0)
	b := s.Begin(l)
	for i := range n {
		must(t, b.Do(context.Background(), func(ctx context.Context) error {
			h.Add(ctx, s, "big", 1)
			h.Add(ctx, s, fmt.Sprintf("k%d", i%10), 2)
			h.Add(ctx, s, "big2", 3)
			return nil
		}))
	}
	must(t, b.Commit(context.Background(), n))
	if got := h.Read(t, s, "big"); got != n {
		t.Fatalf("big %d, want %d", got, n)
	}
	if got := h.Read(t, s, "k3"); got != 2*n/10 {
		t.Fatalf("k3 %d, want %d", got, 2*n/10)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
