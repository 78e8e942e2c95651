package todo

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/consumers"
	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/deadletter"
)

// StatsApp and StatsName name the stats projector: group todo.stats.v<N>.
const (
	StatsApp  = "todo"
	StatsName = "stats"
)

// StatsKey is the Redis hash holding a list's stats for a projector group:
// fields events, added, completed, minutes, deleted.
func StatsKey(group, list string) string { return group + ":list:" + list }

// StatsProjector counts, per list, its events, items added and completed,
// the minutes estimated, and whether it was deleted, in Redis through the
// batch's queue (state.Redis), so counts land with the positions: exactly
// once. Bumping version rebuilds the stats under new keys. An item with a
// negative estimate is refused for good: that event is dead, and the
// list's later events are parked behind it until it is redriven or
// discarded.
func StatsProjector(version int) *consumers.Consumer {
	p := consumers.NewProjector(StatsApp, StatsName, version, aggregates.EventsTopic(Name))
	count := func(ctx context.Context, md consumers.Metadata, field string, n int64) {
		tx := state.Redis(ctx)
		k := StatsKey(md.Group, md.AggregateID())
		tx.HIncrBy(ctx, k, "events", 1)
		if field != "" {
			tx.HIncrBy(ctx, k, field, n)
		}
	}
	consumers.On(p, func(ctx context.Context, _ ListCreated, md consumers.Metadata) error {
		count(ctx, md, "", 0)
		return nil
	})
	consumers.On(p, func(ctx context.Context, e ItemAdded, md consumers.Metadata) error {
		if e.Minutes < 0 {
			// The event is wrong, not the projector: no retry will help.
			// It goes to the dead event queue (recq dlq list todo.stats.v1),
			// and the list's later events wait behind it.
			return deadletter.Permanent(fmt.Errorf("item %q of list %s: estimate of %d minutes; want 0 or more", e.Title, md.AggregateID(), e.Minutes))
		}
		count(ctx, md, "added", 1)
		state.Redis(ctx).HIncrBy(ctx, StatsKey(md.Group, md.AggregateID()), "minutes", int64(e.Minutes))
		return nil
	})
	consumers.On(p, func(ctx context.Context, _ ItemCompleted, md consumers.Metadata) error {
		count(ctx, md, "completed", 1)
		return nil
	})
	consumers.On(p, func(ctx context.Context, _ ListDeleted, md consumers.Metadata) error {
		count(ctx, md, "", 0)
		state.Redis(ctx).HSet(ctx, StatsKey(md.Group, md.AggregateID()), "deleted", 1)
		return nil
	})
	return p
}

// GetStats asks for one list's stats.
type GetStats struct{ List string }

// Stats is one list's read model.
type Stats struct {
	List      string
	Events    int64
	Added     int64
	Completed int64
	Minutes   int64
	Deleted   bool
}

// StatsProjection answers GetStats from the hashes the stats projector of
// group (todo.stats.v<N>) writes in rdb. r is that projector's runner,
// which consistent queries wait for; nil serves only plain reads (e.g. a
// query service running no projector).
func StatsProjection(rdb redis.UniversalClient, r *consumers.Runner, group string) *consumers.Projection {
	p := consumers.NewProjection("todo-stats", r)
	consumers.Query(p, func(ctx context.Context, q GetStats) (Stats, error) {
		var h struct {
			Events    int64 `redis:"events"`
			Added     int64 `redis:"added"`
			Completed int64 `redis:"completed"`
			Minutes   int64 `redis:"minutes"`
			Deleted   int64 `redis:"deleted"`
		}
		res := rdb.HGetAll(ctx, StatsKey(group, q.List))
		if err := res.Err(); err != nil {
			return Stats{}, fmt.Errorf("stats of %s: %w", q.List, err)
		}
		if len(res.Val()) == 0 {
			return Stats{}, fmt.Errorf("list %q: %w", q.List, consumers.ErrNotFound)
		}
		if err := res.Scan(&h); err != nil {
			return Stats{}, errors.Join(fmt.Errorf("stats of %s", q.List), err)
		}
		return Stats{List: q.List, Events: h.Events, Added: h.Added, Completed: h.Completed, Minutes: h.Minutes, Deleted: h.Deleted == 1}, nil
	})
	return p
}
