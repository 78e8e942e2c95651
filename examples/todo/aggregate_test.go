package todo_test

import (
	"fmt"
	"testing"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/aggregates/aggregatestest"
	"github.com/recq/recq/examples/todo"
)

func TestTodoListRules(t *testing.T) {
	agg := todo.Aggregate()
	created := todo.ListCreated{Title: "groceries", Owner: "ann"}
	milk := todo.ItemAdded{ItemID: "i1", Text: "milk"}
	fx := func() *aggregatestest.TestFixture[todo.List] { return aggregatestest.Fixture(t, agg) }

	fx().When(todo.CreateList{Title: "groceries", Owner: "ann"}).Then(created)
	fx().When(todo.CreateList{Title: " "}).ThenRejected(todo.ErrNoTitle)
	fx().Given(created).When(todo.CreateList{Title: "again"}).ThenRejected(todo.ErrAlreadyExists)
	fx().Given(created).When(todo.RenameList{Title: "food"}).Then(todo.ListRenamed{Title: "food"})
	fx().Given(created).When(todo.RenameList{Title: "groceries"}).Then()
	fx().When(todo.AddItem{ItemID: "i1", Text: "milk"}).ThenRejected(aggregates.ErrNotFound)
	fx().Given(created).When(todo.AddItem{ItemID: "i1", Text: "milk"}).Then(milk)
	fx().Given(created).When(todo.AddItem{ItemID: "i1", Text: ""}).ThenRejected(todo.ErrNoText)
	fx().Given(created).When(todo.AddItem{Text: "milk"}).ThenRejected(todo.ErrNoItemID)
	fx().Given(created, milk).When(todo.AddItem{ItemID: "i1", Text: "more milk"}).ThenRejected(todo.ErrDuplicateItem)

	// No items on a deleted list.
	fx().Given(created, todo.ListDeleted{}).When(todo.AddItem{ItemID: "i2", Text: "x"}).ThenRejected(aggregates.ErrDeleted)

	// At most MaxItems.
	full := []any{created}
	for i := range todo.MaxItems {
		full = append(full, todo.ItemAdded{ItemID: fmt.Sprint("i", i), Text: "x"})
	}
	fx().Given(full...).When(todo.AddItem{ItemID: "one-more", Text: "x"}).ThenRejected(todo.ErrFull)
	fx().Given(append(full, todo.ItemRemoved{ItemID: "i0"})...).When(todo.AddItem{ItemID: "one-more", Text: "x"}).
		Then(todo.ItemAdded{ItemID: "one-more", Text: "x"})

	// Checking says how many are left; checking twice changes nothing.
	eggs := todo.ItemAdded{ItemID: "i2", Text: "eggs"}
	fx().Given(created, milk, eggs).When(todo.CheckItem{ItemID: "i1"}).Then(todo.ItemChecked{ItemID: "i1", Remaining: 1})
	fx().Given(created, milk, eggs, todo.ItemChecked{ItemID: "i1", Remaining: 1}).When(todo.CheckItem{ItemID: "i2"}).
		Then(todo.ItemChecked{ItemID: "i2", Remaining: 0})
	fx().Given(created, milk, todo.ItemChecked{ItemID: "i1"}).When(todo.CheckItem{ItemID: "i1"}).Then()
	fx().Given(created).When(todo.CheckItem{ItemID: "nope"}).ThenRejected(todo.ErrNoSuchItem)
	fx().Given(created, milk, todo.ItemChecked{ItemID: "i1"}).When(todo.UncheckItem{ItemID: "i1"}).Then(todo.ItemUnchecked{ItemID: "i1"})
	fx().Given(created, milk).When(todo.UncheckItem{ItemID: "i1"}).Then()
	fx().Given(created, milk).When(todo.RemoveItem{ItemID: "i1"}).Then(todo.ItemRemoved{ItemID: "i1"})
	fx().Given(created, milk, todo.ItemRemoved{ItemID: "i1"}).When(todo.RemoveItem{ItemID: "i1"}).ThenRejected(todo.ErrNoSuchItem)
	fx().Given(created).When(todo.DeleteList{}).Then(todo.ListDeleted{})
}
