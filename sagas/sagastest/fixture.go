// Package sagastest tests sagas without a broker: Fixture runs a saga's
// real handlers in Axon's given-when-then form, with a fake clock (nothing
// sleeps) and a recorder in place of the invoker.
package sagastest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/sagas"
	"github.com/recq/recq/sagas/store"
)

// Sent is a command a handler sent.
type Sent struct {
	Aggregate string
	ID        string
	Command   any
}

func (s Sent) String() string {
	return fmt.Sprintf("%T%+v to %s %s", s.Command, s.Command, s.Aggregate, s.ID)
}

// TestFixture runs one saga's handlers. Every step reports failures
// through t.
type TestFixture[S any] struct {
	t      testing.TB
	local  *sagas.Local[S]
	now    time.Time
	answer func(Sent) (aggregates.Result, error)
	sent   []Sent // by the last When
	err    error  // of the last When
	skip   string // why the last When's event was skipped
}

// Start is the fixture clock's first reading.
var Start = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

// Fixture starts a given-when-then test of s. Commands are accepted
// unless Answer says otherwise.
func Fixture[S any](t testing.TB, s *sagas.Saga[S]) *TestFixture[S] {
	t.Helper()
	f := &TestFixture[S]{t: t, now: Start}
	f.answer = func(Sent) (aggregates.Result, error) { return aggregates.Result{Version: 1, Events: 1}, nil }
	l, err := sagas.NewLocal(s, sender[S]{f})
	if err != nil {
		t.Fatal(err)
	}
	f.local = l
	return f
}

// sender records commands and answers them.
type sender[S any] struct{ f *TestFixture[S] }

func (s sender[S]) Send(_ context.Context, aggregate, id string, cmd any, opts ...aggregates.SendOption) (aggregates.Result, error) {
	c := Sent{Aggregate: aggregate, ID: id, Command: cmd}
	s.f.sent = append(s.f.sent, c)
	res, err := s.f.answer(c)
	return res, err
}

// Answer sets how commands are answered: return a rejection (an
// aggregates sentinel, or &aggregates.RejectedError{...}) to test
// compensation.
func (f *TestFixture[S]) Answer(fn func(Sent) (aggregates.Result, error)) *TestFixture[S] {
	f.answer = fn
	return f
}

// Given handles events in order, at the fixture's clock; what they send
// is not checked. A failing event fails the test.
func (f *TestFixture[S]) Given(events ...any) *TestFixture[S] {
	f.t.Helper()
	for _, e := range events {
		if _, err := f.local.Handle(context.Background(), e, f.now); err != nil {
			f.t.Fatalf("given %T: %v", e, err)
		}
	}
	f.sent = nil
	return f
}

// When handles evt at the fixture's clock; the Expect methods check what
// it did.
func (f *TestFixture[S]) When(evt any) *TestFixture[S] {
	f.sent = nil
	f.skip, f.err = f.local.Handle(context.Background(), evt, f.now)
	return f
}

// WhenTimePasses moves the clock by d, firing the deadlines due by then.
func (f *TestFixture[S]) WhenTimePasses(d time.Duration) *TestFixture[S] {
	f.sent, f.skip = nil, ""
	f.now = f.now.Add(d)
	f.err = f.local.Advance(context.Background(), f.now)
	return f
}

// At sets the clock to t without firing deadlines: the next event is
// written at t (late, if deadlines were due before it).
func (f *TestFixture[S]) At(t time.Time) *TestFixture[S] {
	f.now = t
	return f
}

// Now is the fixture's clock.
func (f *TestFixture[S]) Now() time.Time { return f.now }

// ExpectSent checks that the last When sent exactly want, in order.
func (f *TestFixture[S]) ExpectSent(want ...Sent) *TestFixture[S] {
	f.t.Helper()
	f.noError()
	if !reflect.DeepEqual(normalize(f.sent), normalize(want)) {
		f.t.Fatalf("sent:\n got %s\nwant %s", show(f.sent), show(want))
	}
	return f
}

// ExpectNothingSent checks that the last When sent no command.
func (f *TestFixture[S]) ExpectNothingSent() *TestFixture[S] {
	f.t.Helper()
	return f.ExpectSent()
}

// ExpectSkipped checks that the last When's event was not handled (no
// instance has its association, or its instance ended).
func (f *TestFixture[S]) ExpectSkipped() *TestFixture[S] {
	f.t.Helper()
	f.noError()
	if f.skip == "" {
		f.t.Fatal("the event was handled; want it skipped")
	}
	return f
}

// ExpectError checks that the last When failed with an error containing
// substr (the runner retries it, then dead-letters it).
func (f *TestFixture[S]) ExpectError(substr string) *TestFixture[S] {
	f.t.Helper()
	if f.err == nil || !strings.Contains(f.err.Error(), substr) {
		f.t.Fatalf("error: got %v, want one containing %q", f.err, substr)
	}
	return f
}

// ExpectDeadline checks that instance id has the deadline name pending,
// due after d from the clock.
func (f *TestFixture[S]) ExpectDeadline(id, name string, d time.Duration) *TestFixture[S] {
	f.t.Helper()
	in := f.instance(id)
	for _, x := range in.Deadlines {
		if x.Name == name {
			if want := f.now.Add(d); !x.Due.Equal(want) {
				f.t.Fatalf("%s: deadline %s due %v, want %v", id, name, x.Due, want)
			}
			return f
		}
	}
	f.t.Fatalf("%s: no deadline %s pending (pending: %+v)", id, name, in.Deadlines)
	return f
}

// ExpectNoDeadline checks that instance id has no deadline name pending.
func (f *TestFixture[S]) ExpectNoDeadline(id, name string) *TestFixture[S] {
	f.t.Helper()
	for _, x := range f.instance(id).Deadlines {
		if x.Name == name {
			f.t.Fatalf("%s: deadline %s is pending, due %v", id, name, x.Due)
		}
	}
	return f
}

// ExpectEnded checks that instance id has ended.
func (f *TestFixture[S]) ExpectEnded(id string) *TestFixture[S] {
	f.t.Helper()
	if !f.instance(id).Ended {
		f.t.Fatalf("%s has not ended", id)
	}
	return f
}

// ExpectRunning checks that instance id exists and has not ended.
func (f *TestFixture[S]) ExpectRunning(id string) *TestFixture[S] {
	f.t.Helper()
	if f.instance(id).Ended {
		f.t.Fatalf("%s has ended", id)
	}
	return f
}

// ExpectNoInstance checks that no instance id exists.
func (f *TestFixture[S]) ExpectNoInstance(id string) *TestFixture[S] {
	f.t.Helper()
	if f.local.Instance(id) != nil {
		f.t.Fatalf("instance %s exists; want none (instances: %v)", id, f.local.Instances())
	}
	return f
}

// ExpectAssociations checks instance id's associations ("key=value"), in
// any order.
func (f *TestFixture[S]) ExpectAssociations(id string, want ...string) *TestFixture[S] {
	f.t.Helper()
	got := slices.Sorted(slices.Values(f.instance(id).Associations))
	if w := slices.Sorted(slices.Values(want)); !slices.Equal(got, w) {
		f.t.Fatalf("%s: associations %v, want %v", id, got, w)
	}
	return f
}

// State returns instance id's state for further checks.
func (f *TestFixture[S]) State(id string) S {
	f.t.Helper()
	var s S
	if b := f.instance(id).State; len(b) > 0 {
		if err := json.Unmarshal(b, &s); err != nil {
			f.t.Fatal(err)
		}
	}
	return s
}

func (f *TestFixture[S]) instance(id string) *store.Instance {
	f.t.Helper()
	f.noError()
	in := f.local.Instance(id)
	if in == nil {
		f.t.Fatalf("no instance %s (instances: %v)", id, f.local.Instances())
	}
	return in
}

func (f *TestFixture[S]) noError() {
	f.t.Helper()
	if f.err != nil {
		f.t.Fatalf("the handler failed: %v", f.err)
	}
}

// normalize compares commands by type and JSON, so nil and empty slices
// and unexported details do not matter.
func normalize(cs []Sent) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		b, _ := json.Marshal(c.Command)
		out[i] = fmt.Sprintf("%s %s %T %s", c.Aggregate, c.ID, c.Command, b)
	}
	return out
}

func show(cs []Sent) string {
	if len(cs) == 0 {
		return "(nothing)"
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, ", ")
}
