package snapshot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recq/recq/internal/redisconf"
)

// DefaultKeyPrefix is the Redis key prefix of snapshots unless WithKeyPrefix
// sets another.
const DefaultKeyPrefix = "recq:snapshot:"

// RedisConfig configures a Redis store. The zero value is valid: keys under
// DefaultKeyPrefix that never expire.
type RedisConfig struct {
	// KeyPrefix starts every key; the key of an aggregate's snapshot is
	// <KeyPrefix><aggregate>:<id>. Empty means DefaultKeyPrefix.
	KeyPrefix string
	// TTL, if not zero, expires a snapshot that long after it was last
	// saved, so aggregates nobody touches stop taking memory. Their next load
	// replays their events from the partition's start.
	TTL time.Duration
}

// Validate reports a configuration that cannot work.
func (c RedisConfig) Validate() error {
	if c.TTL < 0 || (c.TTL > 0 && c.TTL < time.Millisecond) {
		return fmt.Errorf("snapshot: TTL %v: want 0 (no expiry) or at least 1ms (Redis expires in whole milliseconds)", c.TTL)
	}
	return nil
}

// RedisOption configures a Redis store.
type RedisOption func(*RedisConfig)

// WithKeyPrefix sets the key prefix (default DefaultKeyPrefix), e.g. to keep
// the snapshots of several environments in one Redis apart.
func WithKeyPrefix(p string) RedisOption { return func(c *RedisConfig) { c.KeyPrefix = p } }

// WithTTL expires snapshots d after their last save (default: never).
func WithTTL(d time.Duration) RedisOption { return func(c *RedisConfig) { c.TTL = d } }

// saveScript is Save's compare-and-write, atomic because Redis runs a script
// alone. KEYS[1] is the snapshot's key; ARGV holds version, state,
// partition, offset, taken_at and the TTL in milliseconds (0: none).
var saveScript = redis.NewScript(`
local stored = redis.call('HGET', KEYS[1], 'version')
local v = ARGV[1]
-- Versions are decimals without leading zeros, so comparing lengths, then
-- text, compares them exactly (Lua numbers are exact only up to 2^53).
if stored and (#stored > #v or (#stored == #v and stored > v)) then
	return 0
end
-- Replace the whole hash: no field or expiry of the older snapshot survives.
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', v, 'state', ARGV[2], 'partition', ARGV[3], 'offset', ARGV[4], 'taken_at', ARGV[5])
if ARGV[6] ~= '0' then
	redis.call('PEXPIRE', KEYS[1], ARGV[6])
end
return 1
`)

// loadFields are the hash fields Load reads, in the order it parses them.
var loadFields = []string{"version", "state", "partition", "offset", "taken_at"}

type redisStore struct {
	c    redis.UniversalClient
	cfg  RedisConfig
	addr string // for error messages
}

// NewRedis returns a Store that keeps each snapshot in one Redis hash,
// shared by every process using the same Redis and key prefix. The caller
// owns client (and closes it). Every operation is a single command or
// script on a single key, so the store works with Redis Cluster too.
//
// NewRedis reports a nil client or options that do not pass
// RedisConfig.Validate, like the consumer-state stores.
func NewRedis(client redis.UniversalClient, opts ...RedisOption) (Store, error) {
	cfg, err := redisconf.Build("snapshot", client, opts, RedisConfig.Validate)
	if err != nil {
		return nil, err
	}
	cfg.KeyPrefix = cmp.Or(cfg.KeyPrefix, DefaultKeyPrefix)
	return &redisStore{c: client, cfg: cfg, addr: redisconf.Addr(client)}, nil
}

func (s *redisStore) key(aggregate, id string) string {
	return s.cfg.KeyPrefix + aggregate + ":" + id
}

func (s *redisStore) Load(ctx context.Context, aggregate, id string) (Snapshot, error) {
	if err := checkKey(aggregate, id); err != nil {
		return Snapshot{}, err
	}
	key := s.key(aggregate, id)
	vals, err := s.c.HMGet(ctx, key, loadFields...).Result()
	if err != nil {
		return Snapshot{}, s.fail("load", aggregate, id, err)
	}
	if vals[0] == nil {
		return Snapshot{}, fmt.Errorf("snapshot: %s %s: %w", aggregate, id, ErrNotFound)
	}
	snap, err := parseHash(vals)
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot: Redis at %s: key %s does not hold a snapshot (%w); delete it to rebuild from the events", s.addr, key, err)
	}
	snap.Aggregate, snap.ID = aggregate, id
	return snap, nil
}

// parseHash reads the values of loadFields.
func parseHash(vals []any) (Snapshot, error) {
	var str [5]string
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			return Snapshot{}, fmt.Errorf("field %s missing", loadFields[i])
		}
		str[i] = s
	}
	version, err1 := strconv.ParseInt(str[0], 10, 64)
	partition, err2 := strconv.ParseInt(str[2], 10, 32)
	offset, err3 := strconv.ParseInt(str[3], 10, 64)
	takenAt, err4 := time.Parse(time.RFC3339Nano, str[4])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return Snapshot{}, err
	}
	return Snapshot{Version: version, State: []byte(str[1]), Partition: int32(partition), Offset: offset, TakenAt: takenAt}, nil
}

func (s *redisStore) Save(ctx context.Context, snap Snapshot) error {
	if err := snap.check(); err != nil {
		return err
	}
	err := saveScript.Run(ctx, s.c, []string{s.key(snap.Aggregate, snap.ID)},
		snap.Version, snap.State, snap.Partition, snap.Offset,
		snap.TakenAt.Format(time.RFC3339Nano), s.cfg.TTL.Milliseconds()).Err()
	if err != nil {
		return s.fail("save", snap.Aggregate, snap.ID, err)
	}
	return nil
}

func (s *redisStore) Delete(ctx context.Context, aggregate, id string) error {
	if err := checkKey(aggregate, id); err != nil {
		return err
	}
	if err := s.c.Del(ctx, s.key(aggregate, id)).Err(); err != nil {
		return s.fail("delete", aggregate, id, err)
	}
	return nil
}

// fail wraps a go-redis error with what the caller needs to act on it.
func (s *redisStore) fail(op, aggregate, id string, err error) error {
	var reply redis.Error
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("snapshot: %s %s %s: %w", op, aggregate, id, err)
	case errors.As(err, &reply):
		return fmt.Errorf("snapshot: %s %s %s: Redis at %s refused: %w", op, aggregate, id, s.addr, err)
	default:
		return fmt.Errorf("snapshot: %s %s %s: Redis at %s is unreachable (the caller retries; check that Redis runs and the address is right): %w", op, aggregate, id, s.addr, err)
	}
}
