package todo

import (
	"context"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/consumers"
	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/streams"
)

// App names the system's consumer groups: todolist.lists.v1,
// todolist.completion.v1.
const App = "todolist"

// ListsProjector keeps the read model of lists and items in model, and
// tells hub about every change once its batch has committed (the
// save-notify pattern: a change is announced only once it is saved).
func ListsProjector(version int, model readModel, hub *hub) *consumers.Consumer {
	p := consumers.NewProjector(App, "lists", version, aggregates.EventsTopic(Name))
	on := func(ctx context.Context, e any, md consumers.Metadata) error {
		ch := change{list: md.AggregateID(), version: md.AggregateVersion(), event: e}
		model.queue(ctx, ch)
		state.OnCommit(ctx, func() { hub.publish(ch) })
		return nil
	}
	consumers.On(p, func(ctx context.Context, e ListCreated, md consumers.Metadata) error { return on(ctx, e, md) })
	consumers.On(p, func(ctx context.Context, e ListRenamed, md consumers.Metadata) error { return on(ctx, e, md) })
	consumers.On(p, func(ctx context.Context, e ItemAdded, md consumers.Metadata) error { return on(ctx, e, md) })
	consumers.On(p, func(ctx context.Context, e ItemChecked, md consumers.Metadata) error { return on(ctx, e, md) })
	consumers.On(p, func(ctx context.Context, e ItemUnchecked, md consumers.Metadata) error { return on(ctx, e, md) })
	consumers.On(p, func(ctx context.Context, e ItemRemoved, md consumers.Metadata) error { return on(ctx, e, md) })
	consumers.On(p, func(ctx context.Context, e ListDeleted, md consumers.Metadata) error { return on(ctx, e, md) })
	return p
}

// Projection answers the queries over model; runner is the lists
// projector's, which consistent asks wait for.
func Projection(model readModel, runner *consumers.Runner) *consumers.Projection {
	p := consumers.NewProjection("lists", runner)
	consumers.Query(p, func(ctx context.Context, q ListByID) (ListView, error) {
		v, ok, err := model.list(ctx, q.ID)
		if err == nil && !ok {
			err = consumers.ErrNotFound
		}
		return v, err
	})
	consumers.Query(p, func(ctx context.Context, q ListsByOwner) ([]ListView, error) { return model.byOwner(ctx, q.Owner) })
	consumers.Query(p, func(ctx context.Context, q SearchLists) ([]ListView, error) {
		all, err := model.all(ctx)
		if err != nil || q.Text == "" {
			return all, err
		}
		out := all[:0]
		for _, v := range all {
			if matches(v, q.Text) {
				out = append(out, v)
			}
		}
		return out, nil
	})
	return p
}

// CompletionObserver publishes ListCompleted to NotificationsTopic when
// the last unchecked item of a list is checked. An observer is
// at-least-once made effectively once by its dedupe store, and what it
// publishes continues the event's flow (same correlation id).
func CompletionObserver(pub *streams.Publisher) *consumers.Consumer {
	o := consumers.NewObserver(App, "completion", 1, aggregates.EventsTopic(Name))
	consumers.On(o, func(ctx context.Context, e ItemChecked, md consumers.Metadata) error {
		if e.Remaining > 0 {
			return nil
		}
		return pub.PublishValue(ctx, NotificationsTopic, md.AggregateID(), ListCompleted{ListID: md.AggregateID()})
	})
	return o
}
