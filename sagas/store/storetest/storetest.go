// Package storetest is the conformance suite for implementations of
// [store.Store]. Every store runs it from its own tests.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/sagas/store"
)

// Run runs the suite; newStore returns an empty store for one test.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Store)
	}{
		{"SaveAppliesWithTheCommit", testSaveWithCommit},
		{"FencedLeaseAppliesNothing", testFenced},
		{"FailedRecordLeavesNothing", testFailedRecord},
		{"IndexFollowsAssociations", testIndex},
		{"DeadlinesByPartition", testDeadlines},
		{"EndedKeepsWhatItHandled", testEnded},
		{"ListFilters", testList},
		{"GroupsIsolated", testGroups},
		{"ManySavesInOneBatch", testManySaves},
		{"ResolveMany", testResolveMany},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
	}
}

const group = "shop.fulfilment.v1"

var (
	routed = state.Partition{Topic: group + ".routed", Partition: 3}
	t0     = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

// commit saves each change (old, new) in one batch of a fresh lease.
func commit(t *testing.T, s store.Store, g string, changes ...[2]*store.Instance) error {
	t.Helper()
	ctx := context.Background()
	l, err := s.Positions().Claim(ctx, g, routed)
	if err != nil {
		t.Fatal(err)
	}
	return commitUnder(t, s, l, g, changes...)
}

func commitUnder(t *testing.T, s store.Store, l state.Lease, g string, changes ...[2]*store.Instance) error {
	t.Helper()
	ctx := context.Background()
	b := s.Positions().Begin(l)
	for _, c := range changes {
		if err := b.Do(ctx, func(ctx context.Context) error { s.Save(ctx, g, c[0], c[1]); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return b.Commit(ctx, max(l.Next, 0)+int64(len(changes)))
}

func instance(id string, assoc ...string) *store.Instance {
	return &store.Instance{ID: id, Partition: routed.Partition, State: json.RawMessage(`{"amount":30}`),
		Associations: append([]string{id}, assoc...), Seen: map[string]int64{id + "|orders/0": 4},
		History: []store.Handled{{ID: "e1", Type: "shop.OrderPlaced", At: t0, Source: "orders/0@4"}}, Started: t0, Updated: t0}
}

func load(t *testing.T, s store.Store, g, id string) *store.Instance {
	t.Helper()
	in, err := s.Load(context.Background(), g, id)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func resolve(t *testing.T, s store.Store, assoc string) (*store.Instance, string) {
	t.Helper()
	rs, err := s.Resolve(context.Background(), group, assoc)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("Resolve of one association gave %d answers", len(rs))
	}
	return rs[0].Own, rs[0].Indexed
}

func same(t *testing.T, what string, got, want *store.Instance) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func testSaveWithCommit(t *testing.T, s store.Store) {
	ctx := context.Background()
	if in := load(t, s, group, "order=o1"); in != nil {
		t.Fatalf("empty store has %+v", in)
	}
	l, err := s.Positions().Claim(ctx, group, routed)
	if err != nil {
		t.Fatal(err)
	}
	b := s.Positions().Begin(l)
	in := instance("order=o1")
	if err := b.Do(ctx, func(ctx context.Context) error { s.Save(ctx, group, nil, in); return nil }); err != nil {
		t.Fatal(err)
	}
	if got := load(t, s, group, "order=o1"); got != nil {
		t.Fatalf("visible before the commit: %+v", got)
	}
	if err := b.Commit(ctx, 8); err != nil {
		t.Fatal(err)
	}
	same(t, "after the commit", load(t, s, group, "order=o1"), in)
	pos, err := s.Positions().Positions(ctx, group)
	if err != nil || pos[routed] != 8 {
		t.Fatalf("position moved with the instance: %v %v", pos, err)
	}
}

func testFenced(t *testing.T, s store.Store) {
	ctx := context.Background()
	old, err := s.Positions().Claim(ctx, group, routed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Positions().Claim(ctx, group, routed); err != nil {
		t.Fatal(err)
	}
	err = commitUnder(t, s, old, group, [2]*store.Instance{nil, instance("order=o1", "payment=p1")})
	if !errors.Is(err, state.ErrFenced) {
		t.Fatalf("commit under an old lease: %v, want ErrFenced", err)
	}
	if in := load(t, s, group, "order=o1"); in != nil {
		t.Fatalf("a fenced commit applied the instance: %+v", in)
	}
	if own, idx := resolve(t, s, "payment=p1"); own != nil || idx != "" {
		t.Fatalf("a fenced commit applied the index: %v %q", own, idx)
	}
}

func testFailedRecord(t *testing.T, s store.Store) {
	ctx := context.Background()
	l, _ := s.Positions().Claim(ctx, group, routed)
	b := s.Positions().Begin(l)
	boom := errors.New("boom")
	if err := b.Do(ctx, func(ctx context.Context) error { s.Save(ctx, group, nil, instance("order=o1")); return boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if err := b.Do(ctx, func(ctx context.Context) error { s.Save(ctx, group, nil, instance("order=o2")); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if load(t, s, group, "order=o1") != nil || load(t, s, group, "order=o2") == nil {
		t.Fatal("a failed record's save was applied, or a successful one's was not")
	}
}

func testIndex(t *testing.T, s store.Store) {
	a := instance("order=o1")
	if err := commit(t, s, group, [2]*store.Instance{nil, a}); err != nil {
		t.Fatal(err)
	}
	if own, idx := resolve(t, s, "order=o1"); own == nil || own.ID != "order=o1" || idx != "order=o1" {
		t.Fatalf("own association: %+v %q", own, idx)
	}
	b := instance("order=o1", "payment=p1")
	if err := commit(t, s, group, [2]*store.Instance{a, b}); err != nil {
		t.Fatal(err)
	}
	if own, idx := resolve(t, s, "payment=p1"); own != nil || idx != "order=o1" {
		t.Fatalf("added association: %+v %q", own, idx)
	}
	c := instance("order=o1", "payment=p1")
	c.Associations = []string{"payment=p1"} // dissociated from its id
	if err := commit(t, s, group, [2]*store.Instance{b, c}); err != nil {
		t.Fatal(err)
	}
	if own, idx := resolve(t, s, "order=o1"); own == nil || idx != "" {
		t.Fatalf("removed association: own %+v, index %q (want the instance and no index entry)", own, idx)
	}
	if _, idx := resolve(t, s, "payment=p1"); idx != "order=o1" {
		t.Fatalf("kept association: %q", idx)
	}
	if own, idx := resolve(t, s, "order=none"); own != nil || idx != "" {
		t.Fatalf("unknown association: %+v %q", own, idx)
	}
}

func testDeadlines(t *testing.T, s store.Store) {
	ctx := context.Background()
	d1 := store.Deadline{ID: "d1", Name: "payment-due", Due: t0.Add(15 * time.Minute)}
	d2 := store.Deadline{ID: "d2", Name: "reminder", Due: t0.Add(5 * time.Minute)}
	a := instance("order=o1")
	a.Deadlines = []store.Deadline{d1, d2}
	other := instance("order=o2")
	other.Partition = 4
	other.Deadlines = []store.Deadline{{ID: "d9", Name: "payment-due", Due: t0}}
	if err := commit(t, s, group, [2]*store.Instance{nil, a}, [2]*store.Instance{nil, other}); err != nil {
		t.Fatal(err)
	}
	dues := func(p int32) map[string]store.Due {
		t.Helper()
		ds, err := s.Deadlines(ctx, group, p)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]store.Due{}
		for _, d := range ds {
			d.Due = d.Due.UTC()
			m[d.ID] = d
		}
		return m
	}
	want := map[string]store.Due{"d1": {Instance: "order=o1", Deadline: d1}, "d2": {Instance: "order=o1", Deadline: d2}}
	if got := dues(3); !reflect.DeepEqual(got, want) {
		t.Fatalf("deadlines of partition 3:\n got %+v\nwant %+v", got, want)
	}
	if got := dues(4); len(got) != 1 || got["d9"].Instance != "order=o2" {
		t.Fatalf("deadlines of partition 4: %+v", got)
	}
	b := instance("order=o1")
	b.Deadlines = []store.Deadline{d1}
	if err := commit(t, s, group, [2]*store.Instance{a, b}); err != nil {
		t.Fatal(err)
	}
	if got := dues(3); len(got) != 1 || got["d1"].Name != "payment-due" {
		t.Fatalf("after cancelling d2: %+v", got)
	}
}

func testEnded(t *testing.T, s store.Store) {
	a := instance("order=o1", "payment=p1")
	a.Deadlines = []store.Deadline{{ID: "d1", Name: "payment-due", Due: t0}}
	if err := commit(t, s, group, [2]*store.Instance{nil, a}); err != nil {
		t.Fatal(err)
	}
	e := instance("order=o1")
	e.Ended, e.State, e.Associations, e.Deadlines = true, nil, nil, nil
	e.Seen["payment=p1|payments/1"] = 9
	if err := commit(t, s, group, [2]*store.Instance{a, e}); err != nil {
		t.Fatal(err)
	}
	same(t, "ended", load(t, s, group, "order=o1"), e)
	if own, idx := resolve(t, s, "payment=p1"); own != nil || idx != "" {
		t.Fatalf("an ended instance is still indexed: %+v %q", own, idx)
	}
	if own, _ := resolve(t, s, "order=o1"); own == nil || !own.Ended {
		t.Fatalf("an ended instance is not found by its id: %+v", own)
	}
	if ds, _ := s.Deadlines(context.Background(), group, routed.Partition); len(ds) != 0 {
		t.Fatalf("an ended instance's deadlines are pending: %+v", ds)
	}
}

func testList(t *testing.T, s store.Store) {
	ctx := context.Background()
	run := instance("order=o1", "payment=p1")
	run2 := instance("order=o2")
	done := instance("order=o3")
	done.Ended, done.State, done.Associations = true, nil, nil
	if err := commit(t, s, group, [2]*store.Instance{nil, run}, [2]*store.Instance{nil, run2}, [2]*store.Instance{nil, done}); err != nil {
		t.Fatal(err)
	}
	ids := func(f store.Filter) []string {
		t.Helper()
		ins, err := s.List(ctx, group, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, in := range ins {
			out = append(out, in.ID)
		}
		return out
	}
	for _, c := range []struct {
		f    store.Filter
		want []string
	}{
		{store.Filter{}, []string{"order=o1", "order=o2"}},
		{store.Filter{Ended: true}, []string{"order=o3"}},
		{store.Filter{Association: "payment=p1"}, []string{"order=o1"}},
		{store.Filter{Association: "order=o2"}, []string{"order=o2"}},
		{store.Filter{Association: "order=o3"}, nil},
		{store.Filter{Association: "order=o3", Ended: true}, []string{"order=o3"}},
		{store.Filter{Association: "payment=none"}, nil},
	} {
		if got := ids(c.f); !reflect.DeepEqual(got, c.want) {
			t.Errorf("List(%+v) = %v, want %v", c.f, got, c.want)
		}
	}
}

func testGroups(t *testing.T, s store.Store) {
	if err := commit(t, s, group, [2]*store.Instance{nil, instance("order=o1", "payment=p1")}); err != nil {
		t.Fatal(err)
	}
	other := "shop.fulfilment.v2"
	if in := load(t, s, other, "order=o1"); in != nil {
		t.Fatalf("another group sees the instance: %+v", in)
	}
	if rs, err := s.Resolve(context.Background(), other, "payment=p1"); err != nil || len(rs) != 1 || rs[0].Own != nil || rs[0].Indexed != "" {
		t.Fatalf("another group sees the index: %+v %v", rs, err)
	}
}

// testManySaves saves one instance several times in a batch, and moves an
// association from one instance to another: the batch leaves what the
// saves in order would (the Redis store folds them by key).
func testManySaves(t *testing.T, s store.Store) {
	ctx := context.Background()
	d1 := store.Deadline{ID: "d1", Name: "payment-due", Due: t0.Add(time.Minute)}
	a0 := instance("order=o1", "payment=p1")
	b0 := instance("order=o2")
	if err := commit(t, s, group, [2]*store.Instance{nil, a0}, [2]*store.Instance{nil, b0}); err != nil {
		t.Fatal(err)
	}
	a1 := instance("order=o1", "payment=p1", "cart=c1")
	a1.Deadlines = []store.Deadline{d1}
	a2 := instance("order=o1", "cart=c1") // payment=p1 goes to o2
	a2.State = json.RawMessage(`{"amount":31}`)
	b1 := instance("order=o2", "payment=p1")
	a3 := instance("order=o1") // cart=c1 added and gone within the batch
	a3.State = json.RawMessage(`{"amount":32}`)
	if err := commit(t, s, group, [2]*store.Instance{a0, a1}, [2]*store.Instance{a1, a2},
		[2]*store.Instance{b0, b1}, [2]*store.Instance{a2, a3}); err != nil {
		t.Fatal(err)
	}
	same(t, "after four saves", load(t, s, group, "order=o1"), a3)
	if _, idx := resolve(t, s, "payment=p1"); idx != "order=o2" {
		t.Fatalf("payment=p1 leads to %q, want order=o2", idx)
	}
	if _, idx := resolve(t, s, "cart=c1"); idx != "" {
		t.Fatalf("cart=c1, added and removed in one batch, leads to %q", idx)
	}
	if ds, err := s.Deadlines(ctx, group, routed.Partition); err != nil || len(ds) != 0 {
		t.Fatalf("a deadline scheduled and cancelled in one batch is pending: %+v %v", ds, err)
	}
}

// testResolveMany asks for several associations at once: the answers come
// in the order asked, for an instance's own id, an indexed association, an
// unknown one and a repeated one alike; asking for none answers none.
func testResolveMany(t *testing.T, s store.Store) {
	a, b := instance("order=o1", "payment=p1"), instance("order=o2")
	if err := commit(t, s, group, [2]*store.Instance{nil, a}, [2]*store.Instance{nil, b}); err != nil {
		t.Fatal(err)
	}
	asked := []string{"payment=p1", "order=o9", "order=o2", "order=o1", "payment=p1"}
	rs, err := s.Resolve(context.Background(), group, asked...)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(asked) {
		t.Fatalf("%d answers for %d associations", len(rs), len(asked))
	}
	want := []struct {
		own     *store.Instance
		indexed string
	}{{nil, "order=o1"}, {nil, ""}, {b, "order=o2"}, {a, "order=o1"}, {nil, "order=o1"}}
	for i, w := range want {
		same(t, asked[i]+" (own)", rs[i].Own, w.own)
		if rs[i].Indexed != w.indexed {
			t.Fatalf("%s: indexed %q, want %q", asked[i], rs[i].Indexed, w.indexed)
		}
	}
	if rs, err := s.Resolve(context.Background(), group); err != nil || len(rs) != 0 {
		t.Fatalf("Resolve of no association: %+v %v", rs, err)
	}
}
