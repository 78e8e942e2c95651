package state

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/recq/recq/internal/redisconf"
)

// DefaultKeyPrefix starts the key of every group's positions unless
// WithKeyPrefix sets another.
const DefaultKeyPrefix = "recq:consumer:"

// RedisConfig configures a Redis store. The zero value is valid.
type RedisConfig struct {
	// KeyPrefix starts the key of each group's hash: <KeyPrefix><group>.
	// Empty means DefaultKeyPrefix.
	KeyPrefix string
}

// Validate reports a configuration that cannot work.
func (c RedisConfig) Validate() error {
	if strings.ContainsAny(c.KeyPrefix, " \n") {
		return fmt.Errorf("state: key prefix %q contains whitespace", c.KeyPrefix)
	}
	return nil
}

// RedisOption configures a Redis store.
type RedisOption func(*RedisConfig)

// WithKeyPrefix sets the key prefix (default DefaultKeyPrefix).
func WithKeyPrefix(p string) RedisOption { return func(c *RedisConfig) { c.KeyPrefix = p } }

// claimScript raises the partition's epoch and returns it with the
// position (-1: none) and 1 if writes are held (then the position is the
// held batch's). KEYS[1] is the group's hash, ARGV[1] the partition.
var claimScript = redis.NewScript(`
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch:' .. ARGV[1], 1)
local st = redis.call('HMGET', KEYS[1], 'next:' .. ARGV[1], 'pending:' .. ARGV[1])
if st[2] then
	return {epoch, cmsgpack.unpack(st[2])[1], 1}
end
return {epoch, st[1] or '-1', 0}
`)

// commitScript is a batch's atomic step (Redis runs a script alone).
// KEYS[1] is the group's hash; ARGV holds the partition, the lease's epoch,
// the new position, then each queued command as its argument count followed
// by its arguments. Returns 0 when fenced, 2 when the position already
// covers this batch (a retried commit whose first reply was lost), 1 when
// applied.
//
// A command that fails (pcall catches it; the script goes on) cannot be
// undone, so the script holds it and the commands after it in the field
// pending:<partition>, packed with cmsgpack (binary-safe) with the position
// they lead to, and returns RECQPARTIAL. Every later commit applies the
// held commands first (RECQPENDING <position> while they still fail, with
// nothing of its own run). Holding cannot be refused for lack of memory:
// Redis checks maxmemory only before a script's first write, and a failure
// before any write leaves nothing to hold.
var commitScript = redis.NewScript(`
local h, part, pos = KEYS[1], ARGV[1], tonumber(ARGV[3])
local st = redis.call('HMGET', h, 'epoch:' .. part, 'next:' .. part, 'pending:' .. part)
if st[1] ~= ARGV[2] then
	return 0
end
local function run(cmds, i, to)
	while i <= #cmds do
		local n = tonumber(cmds[i])
		local ok, err = pcall(redis.call, unpack(cmds, i + 1, i + n))
		if not ok then
			local rest = {}
			for j = i, #cmds do
				rest[#rest + 1] = cmds[j]
			end
			redis.call('HSET', h, 'pending:' .. part, cmsgpack.pack({to, rest}))
			return 'command ' .. cmds[i + 1] .. ' on key ' .. tostring(cmds[i + 2]) .. ': ' .. tostring(err.err or err)
		end
		i = i + n + 1
	end
end
local cur = st[2]
if st[3] then
	local held = cmsgpack.unpack(st[3])
	local err = run(held[2], 1, held[1])
	if err and tonumber(held[1]) >= pos then
		return redis.error_reply('RECQPARTIAL ' .. err)
	elseif err then
		return redis.error_reply('RECQPENDING ' .. held[1] .. ' ' .. err)
	end
	redis.call('HDEL', h, 'pending:' .. part)
	redis.call('HSET', h, 'next:' .. part, held[1])
	cur = held[1]
end
if cur and tonumber(cur) >= pos then
	return 2
end
local err = run(ARGV, 4, ARGV[3])
if err then
	return redis.error_reply('RECQPARTIAL ' .. err)
end
redis.call('HSET', h, 'next:' .. part, ARGV[3])
return 1
`)

type redisStore struct {
	c        redis.UniversalClient
	prefix   string
	recorder *redis.Client
	addr     string // for error messages
}

// NewRedis returns a Store that keeps each group's positions and epochs in
// one Redis hash and applies a batch as one Lua script: the epoch check,
// every queued command and the new position, in one round trip. The caller
// owns c. Handlers queue writes on Redis(ctx). Read model keys are the
// handlers' own; since a script may touch them all, the store needs a
// single Redis (or one master), not Redis Cluster.
func NewRedis(c redis.UniversalClient, opts ...RedisOption) (Store, error) {
	cfg, err := redisconf.Build("state", c, opts, RedisConfig.Validate)
	if err != nil {
		return nil, err
	}
	cfg.KeyPrefix = cmp.Or(cfg.KeyPrefix, DefaultKeyPrefix)
	// The recorder is a client that never connects: its pipelines give
	// handlers go-redis's whole typed API, and Exec hands back the queued
	// commands instead of sending them.
	rec := redis.NewClient(&redis.Options{Addr: "recorder.invalid:0"})
	rec.AddHook(recorderHook{})
	return &redisStore{c: c, prefix: cfg.KeyPrefix, recorder: rec, addr: redisconf.Addr(c)}, nil
}

// Redis returns the batch's command queue for the current record: queue
// writes on it (HIncrBy, HSet, Set, Del, ZAdd, Expire, ...) with the same
// ctx. The commands run when the batch commits, atomically with the
// position; their results are never filled in, so read through your own
// client, outside handlers. It panics when ctx is not a handler's context
// of a consumer on a Redis store.
func Redis(ctx context.Context) redis.Pipeliner {
	tx := fromContext(ctx, "Redis")
	if tx.pipe == nil {
		panic("state: Redis(ctx) called in a consumer whose store is not state.NewRedis; run it WithStore(state.NewRedis(...)) or write with state.OnCommit")
	}
	return tx.pipe
}

// recorderHook keeps the recorder's commands from leaving the process.
type recorderHook struct{}

func (recorderHook) DialHook(redis.DialHook) redis.DialHook {
	return func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("state: the recorder never dials")
	}
}

func (recorderHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (recorderHook) ProcessPipelineHook(redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(context.Context, []redis.Cmder) error { return nil }
}

// refused are commands that cannot run inside a script or would break the
// batch's atomic step.
var refused = map[string]bool{
	"multi": true, "exec": true, "discard": true, "watch": true, "unwatch": true,
	"eval": true, "evalsha": true, "eval_ro": true, "evalsha_ro": true, "fcall": true, "fcall_ro": true,
	"script": true, "function": true, "select": true, "swapdb": true, "flushall": true, "flushdb": true,
	"subscribe": true, "psubscribe": true, "ssubscribe": true, "unsubscribe": true,
	"blpop": true, "brpop": true, "brpoplpush": true, "blmove": true, "blmpop": true,
	"bzpopmin": true, "bzpopmax": true, "bzmpop": true, "wait": true, "waitaof": true,
	"client": true, "monitor": true, "shutdown": true, "debug": true,
}

// maxArgs bounds a queued command's arguments: the script passes them to
// redis.call through Lua's unpack, which fails past about 8,000 values, and
// that failure, outside pcall, would end the script half-way with nothing
// held.
const maxArgs = 7000

// recorded drains the commands a handler queued.
func recorded(ctx context.Context, pipe redis.Pipeliner) ([][]any, error) {
	cmds, _ := pipe.Exec(ctx)
	out := make([][]any, len(cmds))
	for i, c := range cmds {
		if refused[strings.ToLower(c.Name())] {
			return nil, fmt.Errorf("state: %s cannot run in a batch's atomic step (a Lua script); queue only writes", c.Name())
		}
		if n := len(c.Args()); n > maxArgs {
			return nil, fmt.Errorf("state: %s with %d arguments: a batch's command takes at most %d; split it into several", c.Name(), n, maxArgs)
		}
		out[i] = c.Args()
	}
	return out, nil
}

func (s *redisStore) key(group string) string { return s.prefix + group }

func field(p Partition) string { return p.Topic + ":" + strconv.Itoa(int(p.Partition)) }

func (s *redisStore) wrap(op string, err error) error {
	return fmt.Errorf("state: redis at %s: %s: %w (is redis-server running and reachable? recq retries)", s.addr, op, err)
}

func (s *redisStore) Claim(ctx context.Context, group string, p Partition) (Lease, error) {
	res, err := claimScript.Run(ctx, s.c, []string{s.key(group)}, field(p)).Slice()
	if err != nil {
		return Lease{}, s.wrap("claim "+p.String()+" for "+group, err)
	}
	var epoch, next, held int64
	ok := len(res) == 3
	if ok {
		epoch, _ = res[0].(int64)
		held, _ = res[2].(int64)
		next, err = strconv.ParseInt(fmt.Sprint(res[1]), 10, 64)
	}
	if !ok || err != nil {
		return Lease{}, fmt.Errorf("state: redis at %s: claim %s for %s: malformed position %v in %s", s.addr, p, group, res, s.key(group))
	}
	return Lease{Group: group, Partition: p, Epoch: epoch, Next: next, Pending: held == 1}, nil
}

func (s *redisStore) Positions(ctx context.Context, group string) (map[Partition]int64, error) {
	all, err := s.c.HGetAll(ctx, s.key(group)).Result()
	if err != nil {
		return nil, s.wrap("positions of "+group, err)
	}
	out := map[Partition]int64{}
	for f, v := range all {
		rest, ok := strings.CutPrefix(f, "next:")
		if !ok {
			continue
		}
		i := strings.LastIndexByte(rest, ':')
		n, err1 := strconv.ParseInt(rest[i+1:], 10, 32)
		next, err2 := strconv.ParseInt(v, 10, 64)
		if i < 0 || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("state: redis at %s: positions of %s: malformed field %q=%q in %s", s.addr, group, f, v, s.key(group))
		}
		out[Partition{Topic: rest[:i], Partition: int32(n)}] = next
	}
	return out, nil
}

func (s *redisStore) Begin(l Lease) Batch {
	return &batch{lease: l, pipe: s.recorder.Pipeline(), apply: func(ctx context.Context, next int64, cmds [][]any, fns []func()) (bool, error) {
		args := []any{field(l.Partition), l.Epoch, next}
		for _, c := range cmds {
			args = append(append(args, len(c)), c...)
		}
		res, err := commitScript.Run(ctx, s.c, []string{s.key(l.Group)}, args...).Int()
		if err != nil {
			return held(err, s.wrap("commit", err))
		}
		if res == 0 {
			return false, ErrFenced
		}
		for _, fn := range fns {
			fn()
		}
		return true, nil
	}}
}

// held reads the commit script's RECQPARTIAL and RECQPENDING replies:
// whether the batch's commands are in the store (applied or held), and what
// the operator is to do. Any other error is other.
func held(err, other error) (taken bool, _ error) {
	const fix = "the key has the wrong type (or value) for this handler's write: fix or delete it"
	if _, failed, ok := strings.Cut(err.Error(), "RECQPARTIAL "); ok {
		return true, fmt.Errorf("%w: %s; %s; the batch's remaining writes are kept and applied, once, as soon as they succeed (recq retries the commit)", ErrPartiallyApplied, failed, fix)
	}
	if _, rest, ok := strings.Cut(err.Error(), "RECQPENDING "); ok {
		at, failed, _ := strings.Cut(rest, " ")
		return false, fmt.Errorf("%w: the writes an earlier commit left held (records below offset %s) still fail: %s; %s; they are applied, once, as soon as they succeed, then this batch, of which nothing was applied (recq retries the commit)", ErrPartiallyApplied, at, failed, fix)
	}
	return false, other
}

// Ping reports whether Redis answers; the consumers runner asks it for its
// readiness.
func (s *redisStore) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return s.wrap("ping", err)
	}
	return nil
}
