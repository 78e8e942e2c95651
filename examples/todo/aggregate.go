package todo

import (
	"context"
	"strings"

	"github.com/recq/recq/aggregates"
)

// List is a TodoList's state, rebuilt from its events.
type List struct {
	Title   string
	Owner   string
	Items   map[string]bool // item id -> done
	Deleted bool
}

// IsDeleted: a deleted list refuses every command (aggregates.ErrDeleted).
func (l *List) IsDeleted() bool { return l.Deleted }

// Aggregate defines the TodoList: a list needs a title; items have unique
// ids and a text, at most MaxItems of them; a deleted list takes nothing.
func Aggregate() *aggregates.Aggregate[List] {
	a := aggregates.New[List](Name)
	aggregates.Create(a, func(_ context.Context, c CreateList, s *List) ([]any, error) {
		switch {
		case s.Items != nil:
			return nil, ErrAlreadyExists
		case strings.TrimSpace(c.Title) == "":
			return nil, ErrNoTitle
		}
		return []any{ListCreated(c)}, nil
	})
	aggregates.Handle(a, func(_ context.Context, c RenameList, s *List) ([]any, error) {
		switch {
		case strings.TrimSpace(c.Title) == "":
			return nil, ErrNoTitle
		case c.Title == s.Title:
			return nil, nil
		}
		return []any{ListRenamed(c)}, nil
	})
	aggregates.Handle(a, func(_ context.Context, c AddItem, s *List) ([]any, error) {
		switch _, dup := s.Items[c.ItemID]; {
		case strings.TrimSpace(c.Text) == "":
			return nil, ErrNoText
		case c.ItemID == "":
			return nil, ErrNoItemID
		case dup:
			return nil, ErrDuplicateItem
		case len(s.Items) >= MaxItems:
			return nil, ErrFull
		}
		return []any{ItemAdded(c)}, nil
	})
	aggregates.Handle(a, func(_ context.Context, c CheckItem, s *List) ([]any, error) {
		done, ok := s.Items[c.ItemID]
		switch {
		case !ok:
			return nil, ErrNoSuchItem
		case done:
			return nil, nil // checked already: nothing changes
		}
		remaining := 0
		for _, d := range s.Items {
			if !d {
				remaining++
			}
		}
		return []any{ItemChecked{ItemID: c.ItemID, Remaining: remaining - 1}}, nil
	})
	aggregates.Handle(a, func(_ context.Context, c UncheckItem, s *List) ([]any, error) {
		done, ok := s.Items[c.ItemID]
		switch {
		case !ok:
			return nil, ErrNoSuchItem
		case !done:
			return nil, nil
		}
		return []any{ItemUnchecked(c)}, nil
	})
	aggregates.Handle(a, func(_ context.Context, c RemoveItem, s *List) ([]any, error) {
		if _, ok := s.Items[c.ItemID]; !ok {
			return nil, ErrNoSuchItem
		}
		return []any{ItemRemoved(c)}, nil
	})
	aggregates.Handle(a, func(context.Context, DeleteList, *List) ([]any, error) { return []any{ListDeleted{}}, nil })

	aggregates.Apply(a, func(s *List, e ListCreated) { s.Title, s.Owner, s.Items = e.Title, e.Owner, map[string]bool{} })
	aggregates.Apply(a, func(s *List, e ListRenamed) { s.Title = e.Title })
	aggregates.Apply(a, func(s *List, e ItemAdded) { s.Items[e.ItemID] = false })
	aggregates.Apply(a, func(s *List, e ItemChecked) { s.Items[e.ItemID] = true })
	aggregates.Apply(a, func(s *List, e ItemUnchecked) { s.Items[e.ItemID] = false })
	aggregates.Apply(a, func(s *List, e ItemRemoved) { delete(s.Items, e.ItemID) })
	aggregates.Apply(a, func(s *List, _ ListDeleted) { s.Deleted = true })
	return a
}
