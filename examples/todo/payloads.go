// Package todo is the TodoList system a newcomer runs first (`make run`),
// built from every recq component, as Evento's tutorial builds it:
//
//   - the TodoList aggregate decides the commands (Aggregate);
//   - the lists projector keeps the read model of lists and items, in
//     memory or in Redis (ListsProjector);
//   - the lists projection answers "list by id", "lists by owner" and
//     "search by text" (Projection);
//   - the completion observer emits ListCompleted when every item of a
//     list is checked (CompletionObserver);
//   - the ids sequence, an aggregate, numbers new lists (IDs);
//   - an HTTP API and a small live page (Handler).
//
// System wires them together; ./service is the binary.
package todo

import "errors"

// Name is the aggregate's name: topics todolist.commands and
// todolist.events.
const Name = "todolist"

// NotificationsTopic is where the completion observer writes ListCompleted.
const NotificationsTopic = "todolist.notifications"

// MaxItems is how many items a list holds at most.
const MaxItems = 100

// Domain commands: the TodoList aggregate's.
type (
	CreateList struct {
		Title string
		Owner string
	}
	RenameList struct{ Title string }
	AddItem    struct {
		ItemID string
		Text   string
	}
	CheckItem   struct{ ItemID string }
	UncheckItem struct{ ItemID string }
	RemoveItem  struct{ ItemID string }
	DeleteList  struct{}
)

// Domain events. Their JSON names are what the events stream
// (GET /lists/{id}/events) shows.
type (
	ListCreated struct {
		Title string `json:"title"`
		Owner string `json:"owner"`
	}
	ListRenamed struct {
		Title string `json:"title"`
	}
	ItemAdded struct {
		ItemID string `json:"item_id"`
		Text   string `json:"text"`
	}
	// ItemChecked says how many items are left unchecked, so the observer
	// knows a list is complete without a read model of its own.
	ItemChecked struct {
		ItemID    string `json:"item_id"`
		Remaining int    `json:"remaining"`
	}
	ItemUnchecked struct {
		ItemID string `json:"item_id"`
	}
	ItemRemoved struct {
		ItemID string `json:"item_id"`
	}
	ListDeleted struct{}
)

// ListCompleted is the observer's notification: every item of the list
// is checked.
type ListCompleted struct{ ListID string }

// Views: what the projection answers, as the HTTP API returns them.
type (
	ListView struct {
		ID       string     `json:"id"`
		Title    string     `json:"title"`
		Owner    string     `json:"owner"`
		Archived bool       `json:"archived"`
		Items    []ItemView `json:"items"`
		Version  int64      `json:"version"`
	}
	ItemView struct {
		ID   string `json:"id"`
		Text string `json:"text"`
		Done bool   `json:"done"`
	}
)

// Queries the projection answers.
type (
	ListByID     struct{ ID string }
	ListsByOwner struct{ Owner string }
	SearchLists  struct{ Text string }
)

// Rejections: the aggregate's answers to commands it refuses.
var (
	ErrNoTitle       = errors.New("a list needs a title")
	ErrNoText        = errors.New("an item needs a text")
	ErrNoItemID      = errors.New("an item needs an id")
	ErrAlreadyExists = errors.New("the list already exists")
	ErrDuplicateItem = errors.New("an item with this id is already on the list")
	ErrNoSuchItem    = errors.New("no such item on the list")
	ErrFull          = errors.New("the list is full: 100 items at most")
)
