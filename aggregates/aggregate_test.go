package aggregates_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/aggregates/aggregatestest"
)

// The TodoList of the README: create, add, complete, delete.
type TodoList struct {
	Name    string
	Items   map[string]bool // title -> done
	Removed bool
}

func (s *TodoList) IsDeleted() bool { return s.Removed }

type (
	CreateList   struct{ Name string }
	AddItem      struct{ Title string }
	CompleteItem struct{ Title string }
	DeleteList   struct{}
	Unregistered struct{}

	ListCreated   struct{ Name string }
	ItemAdded     struct{ Title string }
	ItemCompleted struct{ Title string }
	ListDeleted   struct{}
	NeverApplied  struct{}
)

var (
	errDuplicate  = errors.New("item already on the list")
	errListExists = errors.New("list already created")
)

func todo() *aggregates.Aggregate[TodoList] {
	a := aggregates.New[TodoList]("todo")
	aggregates.Create(a, func(_ context.Context, c CreateList, s *TodoList) ([]any, error) {
		if s.Name != "" {
			return nil, errListExists
		}
		if strings.TrimSpace(c.Name) == "" {
			return nil, errors.New("a list needs a name")
		}
		return []any{ListCreated(c)}, nil
	})
	aggregates.Handle(a, func(_ context.Context, c AddItem, s *TodoList) ([]any, error) {
		if _, ok := s.Items[c.Title]; ok {
			return nil, errDuplicate
		}
		return []any{ItemAdded(c)}, nil
	})
	aggregates.Handle(a, func(_ context.Context, c CompleteItem, s *TodoList) ([]any, error) {
		if done, ok := s.Items[c.Title]; !ok || done {
			return nil, nil // idempotent: nothing to do
		}
		return []any{ItemCompleted(c)}, nil
	})
	aggregates.Handle(a, func(context.Context, DeleteList, *TodoList) ([]any, error) {
		return []any{ListDeleted{}}, nil
	})
	aggregates.Apply(a, func(s *TodoList, e ListCreated) { s.Name, s.Items = e.Name, map[string]bool{} })
	aggregates.Apply(a, func(s *TodoList, e ItemAdded) { s.Items[e.Title] = false })
	aggregates.Apply(a, func(s *TodoList, e ItemCompleted) { s.Items[e.Title] = true })
	aggregates.Apply(a, func(s *TodoList, _ ListDeleted) { s.Removed = true })
	return a
}

func TestCreationCommandOnNewAggregate(t *testing.T) {
	s := aggregatestest.Fixture(t, todo()).When(CreateList{Name: "groceries"}).Then(ListCreated{Name: "groceries"})
	if s.Name != "groceries" || s.Items == nil {
		t.Fatalf("state after creation: %+v", s)
	}
}

func TestOtherCommandsNeedAnExistingAggregate(t *testing.T) {
	aggregatestest.Fixture(t, todo()).When(AddItem{Title: "milk"}).ThenRejected(aggregates.ErrNotFound)
}

func TestHandlerDecidesFromState(t *testing.T) {
	f := aggregatestest.Fixture(t, todo()).Given(ListCreated{Name: "g"}, ItemAdded{Title: "milk"})
	f.When(AddItem{Title: "eggs"}).Then(ItemAdded{Title: "eggs"})
	f.When(AddItem{Title: "milk"}).ThenRejected(errDuplicate)
	f.When(CompleteItem{Title: "milk"}).Then(ItemCompleted{Title: "milk"})
	f.When(CompleteItem{Title: "bread"}).Then() // nothing to do: no events, no error
}

func TestCreationCommandOnExistingAggregateIsUpToTheHandler(t *testing.T) {
	aggregatestest.Fixture(t, todo()).Given(ListCreated{Name: "g"}).When(CreateList{Name: "again"}).ThenRejected(errListExists)
}

// recorder is a testing.TB that records a fatal failure instead of failing
// the real test, to test the fixture's own checks.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

func fixtureFailure(step func(tb testing.TB)) string {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		step(r)
	}()
	<-done
	return r.failed
}

func TestFixtureCatchesHandlersThatChangeState(t *testing.T) {
	a := aggregates.New[TodoList]("sloppy")
	aggregates.Create(a, func(_ context.Context, c CreateList, s *TodoList) ([]any, error) { return []any{ListCreated(c)}, nil })
	aggregates.Apply(a, func(s *TodoList, e ListCreated) { s.Name, s.Items = e.Name, map[string]bool{} })
	aggregates.Apply(a, func(s *TodoList, e ItemAdded) { s.Items[e.Title] = false })
	aggregates.Handle(a, func(_ context.Context, c AddItem, s *TodoList) ([]any, error) {
		s.Items[c.Title] = false // wrong: decides and mutates
		return []any{ItemAdded(c)}, nil
	})
	msg := fixtureFailure(func(tb testing.TB) {
		aggregatestest.Fixture(tb, a).Given(ListCreated{Name: "g"}).When(AddItem{Title: "x"}).Then(ItemAdded{Title: "x"})
	})
	if !strings.Contains(msg, "changed the state") {
		t.Fatalf("fixture let a mutating handler pass: %q", msg)
	}
}

func TestFixtureReportsWrongEventsAndWrongRejections(t *testing.T) {
	f := func(tb testing.TB) *aggregatestest.TestFixture[TodoList] {
		return aggregatestest.Fixture(tb, todo()).Given(ListCreated{Name: "g"})
	}
	for name, step := range map[string]func(tb testing.TB){
		"other events":    func(tb testing.TB) { f(tb).When(AddItem{Title: "a"}).Then(ItemAdded{Title: "b"}) },
		"missing events":  func(tb testing.TB) { f(tb).When(AddItem{Title: "a"}).Then() },
		"rejected":        func(tb testing.TB) { f(tb).When(CreateList{Name: "x"}).Then(ListCreated{Name: "x"}) },
		"not rejected":    func(tb testing.TB) { f(tb).When(AddItem{Title: "a"}).ThenRejected(errDuplicate) },
		"other rejection": func(tb testing.TB) { f(tb).When(CreateList{Name: "x"}).ThenRejected(errDuplicate) },
	} {
		if fixtureFailure(step) == "" {
			t.Errorf("%s: the fixture did not fail", name)
		}
	}
}

func TestDeletedAggregateRejectsEverything(t *testing.T) {
	f := aggregatestest.Fixture(t, todo()).Given(ListCreated{Name: "g"}, ListDeleted{})
	for _, cmd := range []any{AddItem{Title: "x"}, CompleteItem{Title: "x"}, DeleteList{}, CreateList{Name: "new"}} {
		f.When(cmd).ThenRejected(aggregates.ErrDeleted)
	}
}

func TestExpectedVersion(t *testing.T) {
	f := aggregatestest.Fixture(t, todo()).Given(ListCreated{Name: "g"}, ItemAdded{Title: "a"})
	f.ExpectVersion(2).When(AddItem{Title: "b"}).Then(ItemAdded{Title: "b"})
	f.ExpectVersion(1).When(AddItem{Title: "c"}).ThenRejected(aggregates.ErrConflict)
}

func TestUnknownCommandAndEvent(t *testing.T) {
	aggregatestest.Fixture(t, todo()).Given(ListCreated{Name: "g"}).When(Unregistered{}).ThenRejected(aggregates.ErrUnknownCommand)

	a := todo()
	aggregates.Handle(a, func(context.Context, Unregistered, *TodoList) ([]any, error) { return []any{NeverApplied{}}, nil })
	aggregatestest.Fixture(t, a).Given(ListCreated{Name: "g"}).When(Unregistered{}).ThenRejected(aggregates.ErrUnknownEvent)

	in := &aggregates.Instance[TodoList]{}
	if err := todo().Apply(in, NeverApplied{}); !errors.Is(err, aggregates.ErrUnknownEvent) {
		t.Fatalf("applying an unregistered event: %v", err)
	}
}

func TestRejectionCarriesTheHandlersError(t *testing.T) {
	in := &aggregates.Instance[TodoList]{}
	_, err := todo().Decide(context.Background(), in, CreateList{Name: " "}, aggregates.AnyVersion)
	var rej *aggregates.RejectedError
	if !errors.As(err, &rej) || !strings.Contains(err.Error(), "a list needs a name") || rej.Command != "aggregates_test.CreateList" {
		t.Fatalf("got %v", err)
	}
}

func TestDecideDoesNotApply(t *testing.T) {
	a := todo()
	in := &aggregates.Instance[TodoList]{}
	evts, err := a.Decide(context.Background(), in, CreateList{Name: "g"}, aggregates.AnyVersion)
	if err != nil || len(evts) != 1 || in.Exists() || in.State.Name != "" {
		t.Fatalf("decide changed the instance or failed: %+v %v %v", in, evts, err)
	}
	if err := a.Apply(in, evts...); err != nil || in.Version != 1 || in.State.Name != "g" {
		t.Fatalf("apply: %+v %v", in, err)
	}
}

func TestDuplicateRegistrationPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("registering a command twice must panic at definition time")
		}
	}()
	a := todo()
	aggregates.Handle(a, func(context.Context, AddItem, *TodoList) ([]any, error) { return nil, nil })
}
