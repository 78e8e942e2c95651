// Package snapshottest is the conformance suite for implementations of
// [snapshot.Store]. Every Store runs it from its own tests:
//
//	func TestRedis(t *testing.T) {
//		srv := testenv.Redis(t)
//		snapshottest.Run(t, func(t *testing.T) snapshot.Store {
//			s, _ := snapshot.NewRedis(client(t, srv.Addr), snapshot.WithKeyPrefix(t.Name()+":"))
//			return s
//		})
//	}
//
// The suite checks the contract documented in package snapshot.
package snapshottest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/recq/recq/aggregates/snapshot"
)

// NewStore returns an empty store for one test. Cleaning up is the
// factory's job, through t.Cleanup.
type NewStore func(t *testing.T) snapshot.Store

// Run runs the conformance suite.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s snapshot.Store)
	}{
		{"LoadMissing", testLoadMissing},
		{"RoundTrip", testRoundTrip},
		{"NewerOverwritesOlder", testNewerOverwrites},
		{"OlderNeverOverwritesNewer", testOlderIgnored},
		{"EqualVersionOverwrites", testEqualVersion},
		{"ConcurrentSavesKeepMaxVersion", testConcurrentSaves},
		{"Delete", testDelete},
		{"Isolation", testIsolation},
		{"InvalidRejected", testInvalid},
		{"CancelledContext", testCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, newStore(t))
		})
	}
}

// snap is a valid snapshot whose fields all derive from version, so a load
// shows which save it came from and that no fields of two saves mixed.
func snap(aggregate, id string, version int64) snapshot.Snapshot {
	return snapshot.Snapshot{
		Aggregate: aggregate,
		ID:        id,
		Version:   version,
		State:     fmt.Appendf(nil, `{"version":%d}`, version),
		Partition: int32(version % 7),
		Offset:    version - 1,
		TakenAt:   time.Date(2026, 1, 2, 3, 4, 5, int(version), time.UTC),
	}
}

func save(t *testing.T, s snapshot.Store, snaps ...snapshot.Snapshot) {
	t.Helper()
	for _, sn := range snaps {
		if err := s.Save(t.Context(), sn); err != nil {
			t.Fatalf("Save(%s %s v%d): %v", sn.Aggregate, sn.ID, sn.Version, err)
		}
	}
}

// expect fails the test unless the store holds want for want's aggregate.
func expect(t *testing.T, s snapshot.Store, want snapshot.Snapshot) {
	t.Helper()
	got, err := s.Load(t.Context(), want.Aggregate, want.ID)
	if err != nil {
		t.Fatalf("Load(%q, %q): %v", want.Aggregate, want.ID, err)
	}
	if got.Aggregate != want.Aggregate || got.ID != want.ID || got.Version != want.Version ||
		!bytes.Equal(got.State, want.State) || got.Partition != want.Partition ||
		got.Offset != want.Offset || !got.TakenAt.Equal(want.TakenAt) {
		t.Fatalf("Load(%q, %q) = %s, want %s", want.Aggregate, want.ID, describe(got), describe(want))
	}
}

// describe prints a snapshot without a possibly huge state.
func describe(s snapshot.Snapshot) string {
	return fmt.Sprintf("{%q %q v%d state=%d bytes %.40q p%d @%d %v}",
		s.Aggregate, s.ID, s.Version, len(s.State), s.State, s.Partition, s.Offset, s.TakenAt)
}

func expectNotFound(t *testing.T, s snapshot.Store, aggregate, id string) {
	t.Helper()
	got, err := s.Load(t.Context(), aggregate, id)
	if !errors.Is(err, snapshot.ErrNotFound) {
		t.Fatalf("Load(%q, %q) = %s, %v; want ErrNotFound", aggregate, id, describe(got), err)
	}
}

func testLoadMissing(t *testing.T, s snapshot.Store) {
	expectNotFound(t, s, "todo", "1")
}

func testRoundTrip(t *testing.T, s snapshot.Store) {
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7) // every byte value, including 0 and invalid UTF-8
	}
	local := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.FixedZone("X", 3600))
	for _, sn := range []snapshot.Snapshot{
		{Aggregate: "todo", ID: "all-fields", Version: 1<<62 + 1, State: []byte("state"), Partition: 1<<31 - 1, Offset: 1<<63 - 1, TakenAt: local},
		{Aggregate: "todo", ID: "big", Version: 3, State: big, Partition: 2, Offset: 40},
		{Aggregate: "todo", ID: "empty", Version: 1, State: []byte{}},
		{Aggregate: "todo", ID: "nil", Version: 1},
	} {
		save(t, s, sn)
		expect(t, s, sn)
	}

	// The store keeps its own copy: changing the saved or the loaded slice
	// must not change what the next load returns.
	sn := snap("todo", "copy", 1)
	save(t, s, sn)
	want := sn
	want.State = bytes.Clone(sn.State)
	sn.State[0] = 'X'
	got, err := s.Load(t.Context(), "todo", "copy")
	if err != nil {
		t.Fatal(err)
	}
	got.State[1] = 'Y'
	expect(t, s, want)
}

func testNewerOverwrites(t *testing.T, s snapshot.Store) {
	save(t, s, snap("todo", "1", 1), snap("todo", "1", 2), snap("todo", "1", 10))
	expect(t, s, snap("todo", "1", 10))
}

func testOlderIgnored(t *testing.T, s snapshot.Store) {
	// 9 and 10 differ in length as decimals, 19 and 100 too: a store comparing
	// versions as text would keep the wrong one.
	save(t, s, snap("todo", "1", 10), snap("todo", "1", 9), snap("todo", "1", 2))
	expect(t, s, snap("todo", "1", 10))
	save(t, s, snap("todo", "1", 100), snap("todo", "1", 19))
	expect(t, s, snap("todo", "1", 100))
	// Beyond 2^53 a float64 comparison sees these two as equal.
	save(t, s, snap("todo", "2", 1<<62+1), snap("todo", "2", 1<<62))
	expect(t, s, snap("todo", "2", 1<<62+1))
}

func testEqualVersion(t *testing.T, s snapshot.Store) {
	first := snap("todo", "1", 5)
	save(t, s, first)
	second := first
	second.State = []byte("rewritten")
	second.TakenAt = first.TakenAt.Add(time.Second)
	save(t, s, second)
	expect(t, s, second)
}

func testConcurrentSaves(t *testing.T, s snapshot.Store) {
	const writers = 50
	versions := make([]int64, writers)
	var highest int64
	for i := range versions {
		versions[i] = rand.Int64N(1000) + 1
		highest = max(highest, versions[i])
	}
	start := make(chan struct{})
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for _, v := range versions {
		wg.Go(func() {
			<-start
			errs <- s.Save(t.Context(), snap("todo", "race", v))
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Save: %v", err)
		}
	}
	expect(t, s, snap("todo", "race", highest))
}

func testDelete(t *testing.T, s snapshot.Store) {
	save(t, s, snap("todo", "1", 3), snap("todo", "2", 3))
	for range 2 { // the second time it is missing, which is not an error
		if err := s.Delete(t.Context(), "todo", "1"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	expectNotFound(t, s, "todo", "1")
	expect(t, s, snap("todo", "2", 3))

	// After a delete any version may be saved again, also a lower one (the
	// aggregate's events were replayed into a new state).
	save(t, s, snap("todo", "1", 1))
	expect(t, s, snap("todo", "1", 1))
}

func testIsolation(t *testing.T, s snapshot.Store) {
	// Keys that a store joining aggregate and id carelessly would mix up.
	keys := [][2]string{
		{"todo", "1"}, {"todo", "11"}, {"todo", "1:1"}, {"todo", ":"}, {"todo", "a:b:c"},
		{"list", "1"}, {"todo.v2", "1"}, {"todo", "ключ-🔑"}, {"todo", " 1"}, {"todo", "1\n"},
	}
	for i, k := range keys {
		save(t, s, snap(k[0], k[1], int64(i+1)))
	}
	for i, k := range keys {
		expect(t, s, snap(k[0], k[1], int64(i+1)))
	}
	expectNotFound(t, s, "todos", "1")
	expectNotFound(t, s, "todo", "a")
}

func testInvalid(t *testing.T, s snapshot.Store) {
	ctx := t.Context()
	for _, sn := range []snapshot.Snapshot{
		{Aggregate: "", ID: "1", Version: 1},
		{Aggregate: "to:do", ID: "1", Version: 1},
		{Aggregate: "todo", ID: "", Version: 1},
		{Aggregate: "todo", ID: "1", Version: 0},
		{Aggregate: "todo", ID: "1", Version: -1},
		{Aggregate: "todo", ID: "1", Version: 1, Partition: -1},
		{Aggregate: "todo", ID: "1", Version: 1, Offset: -1},
	} {
		if err := s.Save(ctx, sn); err == nil {
			t.Errorf("Save(%s) = nil, want an error", describe(sn))
		}
	}
	expectNotFound(t, s, "todo", "1")
	for _, k := range [][2]string{{"", "1"}, {"to:do", "1"}, {"todo", ""}} {
		if _, err := s.Load(ctx, k[0], k[1]); err == nil || errors.Is(err, snapshot.ErrNotFound) {
			t.Errorf("Load(%q, %q) = %v, want an invalid key error", k[0], k[1], err)
		}
		if err := s.Delete(ctx, k[0], k[1]); err == nil {
			t.Errorf("Delete(%q, %q) = nil, want an error", k[0], k[1])
		}
	}
}

func testCancelled(t *testing.T, s snapshot.Store) {
	save(t, s, snap("todo", "1", 1))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Save(ctx, snap("todo", "1", 2)); !errors.Is(err, context.Canceled) {
		t.Errorf("Save with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := s.Load(ctx, "todo", "1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Load with a cancelled context = %v, want context.Canceled", err)
	}
	if err := s.Delete(ctx, "todo", "1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete with a cancelled context = %v, want context.Canceled", err)
	}
	// Nothing happened.
	expect(t, s, snap("todo", "1", 1))
}
