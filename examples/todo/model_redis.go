package todo

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/recq/recq/consumers/state"
)

// redisModel keeps the views in Redis, written in the projector's batch
// (state.Redis: with the positions, in one atomic step), under the
// projector group's prefix, so a new version rebuilds beside the old:
//
//	<group>:list:<id>               hash: title, owner, archived, version
//	<group>:list:<id>:items         sorted set of item ids, in the order added
//	<group>:list:<id>:item:<item>   hash: text, done
//	<group>:owner:<owner>           set of list ids
//	<group>:lists                   set of every list id
//
// Each change is a few writes that need no read first, so two events of
// one list in one batch compose. Search reads every list: fine for an
// example, a search index for more.
type redisModel struct {
	rdb    redis.UniversalClient
	prefix string
}

func (m *redisModel) key(parts ...string) string {
	k := m.prefix
	for _, p := range parts {
		k += ":" + p
	}
	return k
}

func (m *redisModel) queue(ctx context.Context, ch change) {
	tx := state.Redis(ctx)
	list := m.key("list", ch.list)
	item := func(id string) string { return m.key("list", ch.list, "item", id) }
	tx.HSet(ctx, list, "version", ch.version)
	switch e := ch.event.(type) {
	case ListCreated:
		tx.HSet(ctx, list, "title", e.Title, "owner", e.Owner, "archived", 0)
		tx.SAdd(ctx, m.key("owner", e.Owner), ch.list)
		tx.SAdd(ctx, m.key("lists"), ch.list)
	case ListRenamed:
		tx.HSet(ctx, list, "title", e.Title)
	case ItemAdded:
		tx.ZAdd(ctx, m.key("list", ch.list, "items"), redis.Z{Score: float64(ch.version), Member: e.ItemID})
		tx.HSet(ctx, item(e.ItemID), "text", e.Text, "done", 0)
	case ItemChecked:
		tx.HSet(ctx, item(e.ItemID), "done", 1)
	case ItemUnchecked:
		tx.HSet(ctx, item(e.ItemID), "done", 0)
	case ItemRemoved:
		tx.ZRem(ctx, m.key("list", ch.list, "items"), e.ItemID)
		tx.Del(ctx, item(e.ItemID))
	case ListDeleted:
		tx.HSet(ctx, list, "archived", 1)
	}
}

func (m *redisModel) list(ctx context.Context, id string) (ListView, bool, error) {
	h, err := m.rdb.HGetAll(ctx, m.key("list", id)).Result()
	if err != nil || len(h) == 0 {
		return ListView{}, false, m.wrap(err)
	}
	v := ListView{ID: id, Title: h["title"], Owner: h["owner"], Archived: h["archived"] == "1", Items: []ItemView{}}
	v.Version, _ = strconv.ParseInt(h["version"], 10, 64)
	ids, err := m.rdb.ZRange(ctx, m.key("list", id, "items"), 0, -1).Result()
	if err != nil {
		return ListView{}, false, m.wrap(err)
	}
	pipe := m.rdb.Pipeline()
	items := make([]*redis.MapStringStringCmd, len(ids))
	for i, it := range ids {
		items[i] = pipe.HGetAll(ctx, m.key("list", id, "item", it))
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return ListView{}, false, m.wrap(err)
		}
	}
	for i, it := range ids {
		f := items[i].Val()
		v.Items = append(v.Items, ItemView{ID: it, Text: f["text"], Done: f["done"] == "1"})
	}
	return v, true, nil
}

func (m *redisModel) byOwner(ctx context.Context, owner string) ([]ListView, error) {
	return m.lists(ctx, m.key("owner", owner))
}

func (m *redisModel) all(ctx context.Context) ([]ListView, error) {
	return m.lists(ctx, m.key("lists"))
}

// lists reads the views of the ids in set.
func (m *redisModel) lists(ctx context.Context, set string) ([]ListView, error) {
	ids, err := m.rdb.SMembers(ctx, set).Result()
	if err != nil {
		return nil, m.wrap(err)
	}
	out := make([]ListView, 0, len(ids))
	for _, id := range ids {
		v, ok, err := m.list(ctx, id)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, v)
		}
	}
	sortViews(out)
	return out, nil
}

func (m *redisModel) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("todo: read model in Redis: %w", err)
}
