// Package aggregatestest tests aggregates without a broker: Fixture runs an
// aggregate's real handlers in Axon's given-when-then form.
package aggregatestest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/recq/recq/aggregates"
)

// TestFixture runs an aggregate's real handlers without a broker, in the
// given-when-then form. Every step reports failures through t.
type TestFixture[S any] struct {
	t        testing.TB
	agg      *aggregates.Aggregate[S]
	given    []any
	cmd      any
	expected int64
}

// Fixture starts a given-when-then test of agg.
func Fixture[S any](t testing.TB, agg *aggregates.Aggregate[S]) *TestFixture[S] {
	return &TestFixture[S]{t: t, agg: agg, expected: aggregates.AnyVersion}
}

// Given sets the aggregate's history; no events means it does not exist.
func (f *TestFixture[S]) Given(events ...any) *TestFixture[S] {
	f.given = events
	return f
}

// When sets the command under test.
func (f *TestFixture[S]) When(cmd any) *TestFixture[S] {
	f.cmd = cmd
	return f
}

// ExpectVersion makes the command expect the aggregate at version v.
func (f *TestFixture[S]) ExpectVersion(v int64) *TestFixture[S] {
	f.expected = v
	return f
}

// run rebuilds the state from the given events, decides the command, and
// fails the test if the handler changed the state it was shown.
func (f *TestFixture[S]) run() (*aggregates.Instance[S], []any, error) {
	f.t.Helper()
	in := &aggregates.Instance[S]{}
	if err := f.agg.Apply(in, f.given...); err != nil {
		f.t.Fatalf("given: %v", err)
	}
	before := snapshotJSON(f.t, in.State)
	events, err := f.agg.Decide(context.Background(), in, f.cmd, f.expected)
	if after := snapshotJSON(f.t, in.State); after != before {
		f.t.Fatalf("handler of %T changed the state; command handlers must only return events\n before: %s\n after:  %s", f.cmd, before, after)
	}
	return in, events, err
}

// Then asserts that the command is accepted and yields exactly want, in
// order, and that applying them works. It returns the resulting state for
// further checks.
func (f *TestFixture[S]) Then(want ...any) *S {
	f.t.Helper()
	in, got, err := f.run()
	if err != nil {
		f.t.Fatalf("%T: want events %s, got error: %v", f.cmd, show(want), err)
	}
	if !reflect.DeepEqual(normalize(got), normalize(want)) {
		f.t.Fatalf("%T:\n got events %s\nwant events %s", f.cmd, show(got), show(want))
	}
	if err := f.agg.Apply(in, got...); err != nil {
		f.t.Fatal(err)
	}
	return &in.State
}

// ThenRejected asserts that the command is rejected with an error matching
// want (errors.Is): a sentinel of package aggregates or the handler's own error.
func (f *TestFixture[S]) ThenRejected(want error) {
	f.t.Helper()
	_, got, err := f.run()
	if err == nil {
		f.t.Fatalf("%T: want rejection %v, got events %s", f.cmd, want, show(got))
	}
	if !errors.Is(err, want) {
		f.t.Fatalf("%T: want rejection %v, got %v", f.cmd, want, err)
	}
}

// normalize makes "no events" compare equal whether nil or empty.
func normalize(evts []any) []any {
	if len(evts) == 0 {
		return nil
	}
	return evts
}

func show(evts []any) string {
	if len(evts) == 0 {
		return "[]"
	}
	s := "["
	for i, e := range evts {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%T%+v", e, e)
	}
	return s + "]"
}

func snapshotJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("aggregates fixture: the state must be JSON-encodable to check handlers leave it alone: %v", err)
	}
	return string(b)
}
