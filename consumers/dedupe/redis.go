package dedupe

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recq/recq/internal/redisconf"
)

// DefaultKeyPrefix starts every id's key unless WithKeyPrefix sets another.
const DefaultKeyPrefix = "recq:dedupe:"

// RedisConfig configures a Redis store. The zero value is valid.
type RedisConfig struct {
	KeyPrefix string        // keys are <KeyPrefix><scope>:<id>; empty: DefaultKeyPrefix
	TTL       time.Duration // 0: DefaultTTL
}

// Validate reports a configuration that cannot work.
func (c RedisConfig) Validate() error {
	if c.TTL < 0 || (c.TTL > 0 && c.TTL < time.Millisecond) {
		return fmt.Errorf("dedupe: TTL %v: want 0 (default, %v) or at least 1ms (Redis expires in whole milliseconds)", c.TTL, DefaultTTL)
	}
	return nil
}

// RedisOption configures a Redis store.
type RedisOption func(*RedisConfig)

// WithKeyPrefix sets the key prefix.
func WithKeyPrefix(p string) RedisOption { return func(c *RedisConfig) { c.KeyPrefix = p } }

// WithTTL sets how long ids are remembered.
func WithTTL(d time.Duration) RedisOption { return func(c *RedisConfig) { c.TTL = d } }

type redisStore struct {
	c    redis.UniversalClient
	cfg  RedisConfig
	addr string
}

// NewRedis returns a Store keeping one key per id, expiring after the TTL,
// shared by every process using the same Redis and prefix. The caller owns
// c. Each call is one pipelined round trip, and every key stands alone, so
// Redis Cluster works too.
func NewRedis(c redis.UniversalClient, opts ...RedisOption) (Store, error) {
	cfg, err := redisconf.Build("dedupe", c, opts, RedisConfig.Validate)
	if err != nil {
		return nil, err
	}
	cfg.KeyPrefix = cmp.Or(cfg.KeyPrefix, DefaultKeyPrefix)
	cfg.TTL = cmp.Or(cfg.TTL, DefaultTTL)
	return &redisStore{c: c, cfg: cfg, addr: redisconf.Addr(c)}, nil
}

func (s *redisStore) key(scope, id string) string { return s.cfg.KeyPrefix + scope + ":" + id }

func (s *redisStore) Seen(ctx context.Context, scope string, ids ...string) ([]bool, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.c.Pipeline()
	cmds := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.Exists(ctx, s.key(scope, id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.wrap("seen", err)
	}
	out := make([]bool, len(ids))
	for i, c := range cmds {
		out[i] = c.Val() == 1
	}
	return out, nil
}

func (s *redisStore) Mark(ctx context.Context, scope string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	pipe := s.c.Pipeline()
	for _, id := range ids {
		pipe.Set(ctx, s.key(scope, id), 1, s.cfg.TTL)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return s.wrap("mark", err)
	}
	return nil
}

func (s *redisStore) wrap(op string, err error) error {
	return fmt.Errorf("dedupe: redis at %s: %s: %w (is redis-server running and reachable? recq retries)", s.addr, op, err)
}

// Ping reports whether Redis answers; the consumers runner asks it for its
// readiness.
func (s *redisStore) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return s.wrap("ping", err)
	}
	return nil
}
