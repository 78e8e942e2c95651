package todo

import (
	"context"
	"strconv"

	"github.com/recq/recq/aggregates"
)

// IDsName is the id sequence's aggregate (topics todolist.ids.commands and
// todolist.ids.events); new lists take their ids from its key "lists".
const IDsName = "todolist.ids"

// Evento's extended tutorial hands out ids from a component of their own.
// Here it is an aggregate, not a stateless service: a unique number needs
// state (the last one issued) and a single writer, which an aggregate has.
// The reply's version is the number; a command sent again with its id is
// answered with the number it got the first time (Result.Version of a
// duplicate), so a client retrying its request gets the same list, never
// a second one.
type (
	// IssueID asks for the next number of a sequence.
	IssueID struct{}
	// IDIssued: the sequence moved on by one.
	IDIssued struct{}
	// Sequence is a sequence's state: the last number issued.
	Sequence struct{ Last int64 }
)

// IDs defines the sequence aggregate.
func IDs() *aggregates.Aggregate[Sequence] {
	a := aggregates.New[Sequence](IDsName)
	aggregates.Create(a, func(context.Context, IssueID, *Sequence) ([]any, error) { return []any{IDIssued{}}, nil })
	aggregates.Apply(a, func(s *Sequence, _ IDIssued) { s.Last++ })
	return a
}

// listID names the list the n-th number of the "lists" sequence makes.
func listID(n int64) string { return "L" + strconv.FormatInt(n, 10) }
