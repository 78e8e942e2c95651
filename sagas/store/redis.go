package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/internal/redisconf"
)

// DefaultKeyPrefix starts every key of the Redis store unless
// WithKeyPrefix sets another.
const DefaultKeyPrefix = "recq:saga:"

// DefaultEndedRetention is how long the Redis store keeps an ended
// instance unless WithEndedRetention says otherwise.
const DefaultEndedRetention = 7 * 24 * time.Hour

// RedisConfig configures a Redis store. The zero value is valid.
type RedisConfig struct {
	// KeyPrefix starts the saga keys (DefaultKeyPrefix when empty); the
	// positions keep the consumers/state store's own prefix.
	KeyPrefix string
	// EndedRetention is how long an ended instance is kept
	// (DefaultEndedRetention when zero): a copy of one of its events that
	// comes later than that is not known as handled.
	EndedRetention time.Duration
}

// Validate reports a configuration that cannot work.
func (c RedisConfig) Validate() error {
	var errs []error
	if strings.ContainsAny(c.KeyPrefix, " \n") {
		errs = append(errs, fmt.Errorf("store: key prefix %q contains whitespace", c.KeyPrefix))
	}
	if c.EndedRetention < 0 {
		errs = append(errs, fmt.Errorf("store: ended retention %v: want 0 (default) or more", c.EndedRetention))
	}
	return errors.Join(errs...)
}

// RedisOption configures a Redis store.
type RedisOption func(*RedisConfig)

// WithKeyPrefix sets the key prefix (default DefaultKeyPrefix).
func WithKeyPrefix(p string) RedisOption { return func(c *RedisConfig) { c.KeyPrefix = p } }

// WithEndedRetention sets how long ended instances are kept.
func WithEndedRetention(d time.Duration) RedisOption {
	return func(c *RedisConfig) { c.EndedRetention = d }
}

type redisStore struct {
	c      redis.UniversalClient
	pos    state.Store
	prefix string
	ended  time.Duration
	addr   string
}

// NewRedis returns a Store on Redis; the caller owns c. Positions are a
// state.NewRedis store on the same client, so instances, index, deadlines
// and positions move in one script; its batches fold the saves of their
// records (fold.go), so Save works only in their handlers' contexts.
func NewRedis(c redis.UniversalClient, opts ...RedisOption) (Store, error) {
	cfg, err := redisconf.Build("store", c, opts, RedisConfig.Validate)
	if err != nil {
		return nil, err
	}
	pos, err := state.NewRedis(c)
	if err != nil {
		return nil, err
	}
	s := &redisStore{c: c, prefix: cmp.Or(cfg.KeyPrefix, DefaultKeyPrefix),
		ended: cmp.Or(cfg.EndedRetention, DefaultEndedRetention), addr: redisconf.Addr(c)}
	s.pos = foldPositions{Store: pos, s: s}
	return s, nil
}

func (s *redisStore) Positions() state.Store { return s.pos }

func (s *redisStore) key(group, what string) string { return s.prefix + group + ":" + what }

func (s *redisStore) instKey(group, id string) string { return s.key(group, "i:"+id) }

func (s *redisStore) dueKey(group string, p int32) string {
	return s.key(group, "due:"+strconv.Itoa(int(p)))
}

func (s *redisStore) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("store: %s on Redis at %s: %w", what, s.addr, err)
}

func decode(b string) (*Instance, error) {
	var in Instance
	if err := json.Unmarshal([]byte(b), &in); err != nil {
		return nil, fmt.Errorf("store: unreadable saga instance: %w", err)
	}
	return &in, nil
}

func (s *redisStore) Load(ctx context.Context, group, id string) (*Instance, error) {
	b, err := s.c.Get(ctx, s.instKey(group, id)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, s.wrap("load instance "+id, err)
	}
	return decode(b)
}

func (s *redisStore) Resolve(ctx context.Context, group string, assocs ...string) ([]Resolved, error) {
	if len(assocs) == 0 {
		return nil, nil
	}
	gets := make([]*redis.StringCmd, len(assocs))
	var idx *redis.SliceCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, a := range assocs {
			gets[i] = p.Get(ctx, s.instKey(group, a))
		}
		idx = p.HMGet(ctx, s.key(group, "assoc"), assocs...)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.wrap(fmt.Sprintf("resolve %d associations (%s first)", len(assocs), assocs[0]), err)
	}
	out := make([]Resolved, len(assocs))
	for i, v := range idx.Val() {
		out[i].Indexed, _ = v.(string)
		if b, err := gets[i].Result(); err == nil {
			if out[i].Own, err = decode(b); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// A deadline's member in its partition's sorted set: instance, id and
// name, separated by newlines (which the sagas package refuses in them).
func dueMember(id string, d Deadline) string { return id + "\n" + d.ID + "\n" + d.Name }

func (s *redisStore) Deadlines(ctx context.Context, group string, partition int32) ([]Due, error) {
	zs, err := s.c.ZRangeWithScores(ctx, s.dueKey(group, partition), 0, -1).Result()
	if err != nil {
		return nil, s.wrap("read deadlines", err)
	}
	out := make([]Due, 0, len(zs))
	for _, z := range zs {
		parts := strings.SplitN(z.Member.(string), "\n", 3)
		if len(parts) != 3 {
			continue // not ours
		}
		out = append(out, Due{Instance: parts[0], Deadline: Deadline{ID: parts[1], Name: parts[2], Due: time.UnixMilli(int64(z.Score)).UTC()}})
	}
	return out, nil
}

func (s *redisStore) List(ctx context.Context, group string, f Filter) ([]*Instance, error) {
	if f.Association != "" {
		rs, err := s.Resolve(ctx, group, f.Association)
		if err != nil {
			return nil, err
		}
		own, indexed := rs[0].Own, rs[0].Indexed
		if own == nil && indexed != "" {
			if own, err = s.Load(ctx, group, indexed); err != nil {
				return nil, err
			}
		}
		if own == nil || !matches(own, f) {
			return nil, nil
		}
		return []*Instance{own}, nil
	}
	var out []*Instance
	iter := s.c.Scan(ctx, 0, s.instKey(group, "*"), 1000).Iterator()
	var keys []string
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		vals, err := s.c.MGet(ctx, keys...).Result()
		if err != nil {
			return s.wrap("list instances", err)
		}
		for _, v := range vals {
			b, ok := v.(string)
			if !ok {
				continue // expired since the scan
			}
			in, err := decode(b)
			if err != nil {
				return err
			}
			if matches(in, f) {
				out = append(out, in)
			}
		}
		keys = keys[:0]
		return nil
	}
	for iter.Next(ctx) {
		if keys = append(keys, iter.Val()); len(keys) == 500 {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return nil, s.wrap("list instances", err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *Instance) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Save stages the change in the batch of ctx, which folds it with the
// batch's other saves of the instance and queues it at Commit (fold.go).
func (s *redisStore) Save(ctx context.Context, group string, old, in *Instance) {
	if old != nil && old.Partition != in.Partition {
		panic("store: an instance never changes partition")
	}
	b := batchOf(ctx)
	b.staged = append(b.staged, save{group: group, old: old, in: in})
}
