// Package storetest is the conformance suite for implementations of
// [registry.Store]. Every Store runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) func() registry.Store {
//			topic := createTopic(t)
//			return func() registry.Store { return kafkastore.New(t, topic) }
//		})
//	}
//
// The suite checks the contract documented on [registry.Store] at two
// levels: the store's own operations, and registry servers on several
// handles of one log (concurrent registrations, reads after writes through
// another instance, restarts).
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/recq/recq/schema/registry"
)

// NewLog creates a fresh, empty log for one test and returns a function
// that opens a handle on it. Handles opened on one log must share it as
// separate registry instances would (for Kafka: separate clients on one
// topic); an in-memory store may return the same value every time.
// Cleaning up (closing handles, deleting the log) is the factory's job,
// through t.Cleanup.
type NewLog func(t *testing.T) (open func() registry.Store)

// Run runs the conformance suite.
func Run(t *testing.T, newLog NewLog) {
	tests := []struct {
		name string
		run  func(t *testing.T, open func() registry.Store)
	}{
		{"EmptyLog", testEmptyLog},
		{"ReadSeesWritesOfOtherHandles", testReadAfterWrite},
		{"StaleWriteConflicts", testStaleWriteConflicts},
		{"ConcurrentWritersOneWinsEachPosition", testConcurrentWriters},
		{"TwoServersConcurrentRegistrations", testConcurrentRegistrations},
		{"TwoServersReadAfterWrite", testServersReadAfterWrite},
		{"RestartKeepsDataAndIDs", testRestart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, newLog(t))
		})
	}
}

// readAll reads the whole log through s.
func readAll(t *testing.T, s registry.Store) ([]registry.Record, int64) {
	t.Helper()
	records, end, err := s.Read(t.Context(), 0)
	if err != nil {
		t.Fatalf("Read(0): %v", err)
	}
	return records, end
}

func rec(key, value string) registry.Record {
	r := registry.Record{Key: []byte(key)}
	if value != "" {
		r.Value = []byte(value)
	}
	return r
}

func testEmptyLog(t *testing.T, open func() registry.Store) {
	s := open()
	records, end := readAll(t, s)
	if len(records) != 0 {
		t.Fatalf("new log has %d records, want 0", len(records))
	}
	if err := s.Write(t.Context(), end, []registry.Record{rec(`{"k":1}`, `{"v":1}`)}); err != nil {
		t.Fatalf("Write at the end of an empty log: %v", err)
	}
	again, _, err := s.Read(t.Context(), end)
	if err != nil || len(again) != 1 {
		t.Fatalf("Read(end of empty log) after one write = %d records, %v; want 1, nil", len(again), err)
	}
}

func testReadAfterWrite(t *testing.T, open func() registry.Store) {
	a, b := open(), open()
	_, start := readAll(t, a)
	first := []registry.Record{rec(`{"k":1}`, `{"v":1}`), rec(`{"k":2}`, `{"v":2}`)}
	if err := a.Write(t.Context(), start, first); err != nil {
		t.Fatalf("Write: %v", err)
	}
	got, mid := readAll(t, b)
	assertRecords(t, "log after the first write, read through another handle", got, first)

	second := []registry.Record{rec(`{"k":1}`, "")} // a tombstone
	if err := b.Write(t.Context(), mid, second); err != nil {
		t.Fatalf("Write at the end read through the same handle: %v", err)
	}
	got, end, err := a.Read(t.Context(), mid)
	if err != nil {
		t.Fatalf("Read(%d): %v", mid, err)
	}
	assertRecords(t, "records after the first write", got, second)
	if got[0].Value != nil {
		t.Errorf("tombstone read back with value %q, want nil", got[0].Value)
	}
	if end <= mid {
		t.Errorf("end after a second write = %d, want > %d", end, mid)
	}
	if rest, again, err := a.Read(t.Context(), end); err != nil || len(rest) != 0 || again != end {
		t.Errorf("Read(end) = %d records, end %d, %v; want 0, %d, nil", len(rest), again, err, end)
	}
}

func testStaleWriteConflicts(t *testing.T, open func() registry.Store) {
	a, b := open(), open()
	_, start := readAll(t, a)
	if err := a.Write(t.Context(), start, []registry.Record{rec(`{"k":"a"}`, `{"v":"a"}`)}); err != nil {
		t.Fatalf("first Write: %v", err)
	}
	err := b.Write(t.Context(), start, []registry.Record{rec(`{"k":"b"}`, `{"v":"b"}`), rec(`{"k":"c"}`, `{"v":"c"}`)})
	if !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("Write at a stale position = %v, want an error wrapping ErrConflict", err)
	}
	got, _ := readAll(t, b)
	assertRecords(t, "log after a conflicting write", got, []registry.Record{rec(`{"k":"a"}`, `{"v":"a"}`)})
}

// testConcurrentWriters appends one record from each of many goroutines on
// two handles, each retrying on conflict. Each record carries how many
// records its writer had read, so two writers winning one position would
// write the same number: the numbers must be exactly 0, 1, 2, ... once each.
func testConcurrentWriters(t *testing.T, open func() registry.Store) {
	handles := []registry.Store{open(), open()}
	const writers = 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			s := handles[i%len(handles)]
			for {
				seen, end, err := s.Read(t.Context(), 0)
				if err != nil {
					errs <- err
					return
				}
				r := []registry.Record{rec(fmt.Sprintf(`{"writer":%d}`, i), fmt.Sprintf(`{"seq":%d}`, len(seen)))}
				err = s.Write(t.Context(), end, r)
				if errors.Is(err, registry.ErrConflict) {
					continue
				}
				if err != nil {
					errs <- err
				}
				return
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	got, _ := readAll(t, handles[0])
	if len(got) != writers {
		t.Fatalf("log has %d records, want %d", len(got), writers)
	}
	for i, r := range got {
		var v struct{ Seq int }
		if err := json.Unmarshal(r.Value, &v); err != nil || v.Seq != i {
			t.Fatalf("record %d was written by a writer that had read %d records (%s): two writers won one position", i, v.Seq, r.Value)
		}
	}
}

func assertRecords(t *testing.T, what string, got, want []registry.Record) {
	t.Helper()
	eq := slices.EqualFunc(got, want, func(a, b registry.Record) bool {
		return string(a.Key) == string(b.Key) && string(a.Value) == string(b.Value) && (a.Value == nil) == (b.Value == nil)
	})
	if !eq {
		t.Fatalf("%s:\n got %s\nwant %s", what, show(got), show(want))
	}
}

func show(rs []registry.Record) string {
	s := "["
	for _, r := range rs {
		v := "<tombstone>"
		if r.Value != nil {
			v = string(r.Value)
		}
		s += fmt.Sprintf(" %s=%s", r.Key, v)
	}
	return s + " ]"
}

// server starts a registry on a handle and returns a client for it.
func server(t *testing.T, s registry.Store) *sr.Client {
	t.Helper()
	srv, err := registry.New(s)
	if err != nil {
		t.Fatalf("registry.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		_ = srv.Close()
	})
	// Correctness under contention is the point, not latency: with -race
	// and a real broker, 200 registrations queued behind one server's mutex
	// can take longer than the client's 5 s default.
	cl, err := sr.NewClient(sr.URLs(hs.URL), sr.HTTPClient(&http.Client{Timeout: 2 * time.Minute}))
	if err != nil {
		t.Fatalf("sr.NewClient: %v", err)
	}
	return cl
}

func recordSchema(name string) sr.Schema {
	return sr.Schema{Schema: fmt.Sprintf(`{"type":"record","name":%q,"fields":[{"name":"f","type":"string"}]}`, name)}
}

func setCompatibility(t *testing.T, cl *sr.Client, level sr.CompatibilityLevel) {
	t.Helper()
	for _, r := range cl.SetCompatibility(t.Context(), sr.SetCompatibility{Level: level}) {
		if r.Err != nil {
			t.Fatalf("SetCompatibility(%v): %v", level, r.Err)
		}
	}
}

// testConcurrentRegistrations registers 200 times, concurrently, through
// two servers: 50 schemas over 10 subjects, each schema in several
// subjects. Each schema must get one id everywhere, different schemas
// different ids, and no subject may hold a schema twice.
func testConcurrentRegistrations(t *testing.T, open func() registry.Store) {
	clients := []*sr.Client{server(t, open()), server(t, open())}
	setCompatibility(t, clients[0], sr.CompatNone) // any schema may follow any other

	const registrations, schemas, subjects = 200, 50, 10
	type result struct {
		schema, id int
		err        error
	}
	results := make([]result, registrations)
	var wg sync.WaitGroup
	for i := range registrations {
		wg.Go(func() {
			n := (i * 7) % schemas
			subject := "subject-" + strconv.Itoa(i%subjects)
			id, err := clients[i%2].RegisterSchema(t.Context(), subject, recordSchema("r"+strconv.Itoa(n)), -1, -1)
			results[i] = result{schema: n, id: id, err: err}
		})
	}
	wg.Wait()

	idOf := map[int]int{}     // schema -> id
	schemaOf := map[int]int{} // id -> schema
	for _, r := range results {
		if r.err != nil {
			t.Fatalf("register schema %d: %v", r.schema, r.err)
		}
		if id, ok := idOf[r.schema]; ok && id != r.id {
			t.Errorf("schema %d got ids %d and %d", r.schema, id, r.id)
		}
		if s, ok := schemaOf[r.id]; ok && s != r.schema {
			t.Errorf("id %d given to schemas %d and %d", r.id, s, r.schema)
		}
		idOf[r.schema], schemaOf[r.id] = r.id, r.schema
	}

	for i := range subjects {
		subject := "subject-" + strconv.Itoa(i)
		for _, cl := range clients {
			all, err := cl.Schemas(t.Context(), subject)
			if err != nil {
				t.Fatalf("Schemas(%s): %v", subject, err)
			}
			ids := map[int]bool{}
			for j, s := range all {
				if s.Version != j+1 || ids[s.ID] {
					t.Fatalf("%s: version %d (position %d) has id %d, seen before: %v", subject, s.Version, j, s.ID, ids[s.ID])
				}
				ids[s.ID] = true
			}
		}
	}
	for id, n := range schemaOf {
		got, err := clients[1].SchemaByID(t.Context(), id)
		if err != nil || !sameJSON(got.Schema, recordSchema("r"+strconv.Itoa(n)).Schema) {
			t.Errorf("SchemaByID(%d) = %q, %v; want schema r%d", id, got.Schema, err, n)
		}
	}
}

// testServersReadAfterWrite writes through one server and reads through
// the other at once: the reader must see the write.
func testServersReadAfterWrite(t *testing.T, open func() registry.Store) {
	a, b := server(t, open()), server(t, open())
	ctx := t.Context()
	for i := range 5 {
		id, err := a.RegisterSchema(ctx, "s", recordSchema("r"), -1, -1)
		if err != nil {
			t.Fatalf("register: %v", err)
		}
		got, err := b.SchemaByVersion(ctx, "s", -1)
		if err != nil || got.ID != id {
			t.Fatalf("round %d: latest version through the other server = %+v, %v; want id %d", i, got, err, id)
		}
		if _, err := b.DeleteSubject(ctx, "s", sr.SoftDelete); err != nil {
			t.Fatalf("round %d: soft delete through the other server: %v", i, err)
		}
		if _, err := a.DeleteSubject(ctx, "s", sr.HardDelete); err != nil {
			t.Fatalf("round %d: hard delete after the other server's soft delete: %v", i, err)
		}
	}
	for _, level := range []sr.CompatibilityLevel{sr.CompatFull, sr.CompatForwardTransitive} {
		setCompatibility(t, b, level)
		if got := a.Compatibility(ctx)[0]; got.Err != nil || got.Level != level {
			t.Fatalf("global level through the other server = %v, %v; want %v", got.Level, got.Err, level)
		}
	}
}

// testRestart checks that a server on a new handle (a restarted instance)
// serves the data of the old one, and never reuses an id, even one whose
// schema was permanently deleted.
func testRestart(t *testing.T, open func() registry.Store) {
	ctx := t.Context()
	before := server(t, open())
	kept, err := before.RegisterSchema(ctx, "kept", recordSchema("k"), -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	gone, err := before.RegisterSchema(ctx, "gone", recordSchema("g"), -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	mustDelete(ctx, t, before, "gone")

	after := server(t, open())
	got, err := after.SchemaByVersion(ctx, "kept", 1)
	if err != nil || got.ID != kept {
		t.Fatalf("after restart, kept/1 = %+v, %v; want id %d", got, err, kept)
	}
	again, err := after.RegisterSchema(ctx, "gone", recordSchema("g"), -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if again <= gone {
		t.Fatalf("re-registering a permanently deleted schema got id %d, want a new id above %d", again, gone)
	}
}

// sameJSON reports whether two JSON texts hold the same value: the registry
// returns schemas in its canonical form, not as registered.
func sameJSON(a, b string) bool {
	var va, vb any
	return json.Unmarshal([]byte(a), &va) == nil && json.Unmarshal([]byte(b), &vb) == nil && reflect.DeepEqual(va, vb)
}

func mustDelete(ctx context.Context, t *testing.T, cl *sr.Client, subject string) {
	t.Helper()
	for _, how := range []sr.DeleteHow{sr.SoftDelete, sr.HardDelete} {
		if _, err := cl.DeleteSubject(ctx, subject, how); err != nil {
			t.Fatalf("DeleteSubject(%s, %v): %v", subject, how, err)
		}
	}
}
