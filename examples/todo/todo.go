// Package todo is recq's example system: a TodoList aggregate. The runner
// command in ./runner serves it; integration tests drive it through an
// Invoker and kill it with SIGKILL.
package todo

import (
	"context"
	"errors"
	"strings"

	"github.com/recq/recq/aggregates"
)

// Name is the aggregate's name: topics todo.commands and todo.events.
const Name = "todo"

// List is a TodoList's state.
type List struct {
	Name    string          `json:"name"`
	Items   map[string]bool `json:"items"` // title -> done
	Removed bool            `json:"removed"`
}

// IsDeleted marks a removed list, which rejects every command.
func (l *List) IsDeleted() bool { return l.Removed }

// Commands.
type (
	CreateList struct{ Name string }
	AddItem    struct {
		Title   string
		Minutes int // the estimate, summed by the stats projector
	}
	CompleteItem struct{ Title string }
	DeleteList   struct{}
)

// Events.
type (
	ListCreated struct{ Name string }
	ItemAdded   struct {
		Title   string
		Minutes int
	}
	ItemCompleted struct{ Title string }
	ListDeleted   struct{}
)

// Rejections.
var (
	ErrNoName        = errors.New("a list needs a name")
	ErrAlreadyExists = errors.New("the list already exists")
	ErrDuplicateItem = errors.New("the item is already on the list")
	ErrNoSuchItem    = errors.New("no such item")
)

// Aggregate defines the TodoList.
func Aggregate() *aggregates.Aggregate[List] {
	a := aggregates.New[List](Name)
	aggregates.Create(a, func(_ context.Context, c CreateList, s *List) ([]any, error) {
		switch {
		case s.Name != "":
			return nil, ErrAlreadyExists
		case strings.TrimSpace(c.Name) == "":
			return nil, ErrNoName
		}
		return []any{ListCreated(c)}, nil
	})
	aggregates.Handle(a, func(_ context.Context, c AddItem, s *List) ([]any, error) {
		if _, ok := s.Items[c.Title]; ok {
			return nil, ErrDuplicateItem
		}
		return []any{ItemAdded(c)}, nil
	})
	aggregates.Handle(a, func(_ context.Context, c CompleteItem, s *List) ([]any, error) {
		done, ok := s.Items[c.Title]
		switch {
		case !ok:
			return nil, ErrNoSuchItem
		case done:
			return nil, nil
		}
		return []any{ItemCompleted(c)}, nil
	})
	aggregates.Handle(a, func(context.Context, DeleteList, *List) ([]any, error) { return []any{ListDeleted{}}, nil })
	aggregates.Apply(a, func(s *List, e ListCreated) { s.Name, s.Items = e.Name, map[string]bool{} })
	aggregates.Apply(a, func(s *List, e ItemAdded) { s.Items[e.Title] = false })
	aggregates.Apply(a, func(s *List, e ItemCompleted) { s.Items[e.Title] = true })
	aggregates.Apply(a, func(s *List, _ ListDeleted) { s.Removed = true })
	return a
}
