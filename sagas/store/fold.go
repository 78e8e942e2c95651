package store

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recq/recq/consumers/state"
)

// The Redis store's writes are folded per batch: a routed partition's
// batch holds many events of each of its instances, and queueing every
// event's SET of the whole instance (a few KB of JSON, with its history)
// made marshalling and Redis's copying most of a saga's cost. Each save
// instead records, in the batch, the instance's latest form and the index
// and deadline entries it changes; Commit queues, once, one SET per
// instance and one command per index or deadline key, marshalled then.
// Every key ends as the events' writes in order would leave it: a SET and
// a field or member of a hash or sorted set are each the last write's.

// foldPositions is the Redis store's state.Store: the consumers/state
// Redis store, with batches that fold the saga store's saves.
type foldPositions struct {
	state.Store
	s *redisStore
}

// Ping is the inner store's, for the consumer's readiness probe.
func (p foldPositions) Ping(ctx context.Context) error {
	return p.Store.(interface{ Ping(context.Context) error }).Ping(ctx)
}

func (p foldPositions) Begin(l state.Lease) state.Batch {
	return &foldBatch{inner: p.Store.Begin(l), s: p.s}
}

// foldBatch is a batch of the consumers/state Redis store with the saga
// saves of its records folded in f.
type foldBatch struct {
	inner state.Batch
	s     *redisStore
	f     fold
	n     int
	// staged are the saves of the record in hand: they join f only if its
	// handler succeeds.
	staged []save
	// The handlers' context, made once per inner context (the inner batch
	// also makes its own once per parent): Do is on every event's path,
	// and so is call, made once, which runs fn, the record's handler.
	innerCtx, ctx context.Context
	call, fn      func(context.Context) error
}

type save struct {
	group   string
	old, in *Instance
}

type foldKey struct{}

func (b *foldBatch) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	b.staged = b.staged[:0]
	if b.call == nil {
		b.call = func(ictx context.Context) error {
			if ictx != b.innerCtx {
				b.innerCtx, b.ctx = ictx, context.WithValue(ictx, foldKey{}, b)
			}
			return b.fn(b.ctx)
		}
	}
	b.fn = fn
	err := b.inner.Do(ctx, b.call)
	b.fn = nil
	if err != nil {
		return err
	}
	for _, sv := range b.staged {
		b.s.fold(&b.f, sv.group, sv.old, sv.in)
	}
	b.staged = b.staged[:0]
	b.n++
	return nil
}

// Commit first queues the folded writes in the inner batch, as a record of
// its own, then commits it. A commit that is retried finds them queued
// there (or taken by the store) and f empty.
func (b *foldBatch) Commit(ctx context.Context, next int64) error {
	if !b.f.empty() {
		if err := b.inner.Do(ctx, func(ictx context.Context) error { b.f.queue(ictx, b.s); return nil }); err != nil {
			return err
		}
		b.f = fold{}
	}
	return b.inner.Commit(ctx, next)
}

// Len counts the records, not the commit's own Do.
func (b *foldBatch) Len() int { return b.n }

// batchOf is the folding batch of a handler's context.
func batchOf(ctx context.Context) *foldBatch {
	b, ok := ctx.Value(foldKey{}).(*foldBatch)
	if !ok {
		panic("store: Save called with a context that is not a handler's of a consumer on this store's Positions()")
	}
	return b
}

// fold is a batch's saga writes, by key.
type fold struct {
	// inst is keyed by group and id, its Redis key made only at queue: a
	// batch saves its instances many times.
	inst map[instRef]instWrite
	// hashes and zsets map a key to its fields or members and their last
	// write: a value (a score) to set, nil to delete.
	hashes map[string]map[string]*string
	zsets  map[string]map[string]*float64
}

type instRef struct{ group, id string }

type instWrite struct {
	in  *Instance
	ttl time.Duration
}

func (f *fold) empty() bool { return len(f.inst)+len(f.hashes)+len(f.zsets) == 0 }

func (f *fold) set(ref instRef, in *Instance, ttl time.Duration) {
	if f.inst == nil {
		f.inst = map[instRef]instWrite{}
	}
	f.inst[ref] = instWrite{in: in, ttl: ttl}
}

func (f *fold) hash(key, field string, v *string) {
	if f.hashes == nil {
		f.hashes = map[string]map[string]*string{}
	}
	if f.hashes[key] == nil {
		f.hashes[key] = map[string]*string{}
	}
	f.hashes[key][field] = v
}

func (f *fold) zset(key, member string, score *float64) {
	if f.zsets == nil {
		f.zsets = map[string]map[string]*float64{}
	}
	if f.zsets[key] == nil {
		f.zsets[key] = map[string]*float64{}
	}
	f.zsets[key][member] = score
}

// chunk bounds the fields or members of one queued command: a batch's
// command takes at most a few thousand arguments (consumers/state).
const chunk = 1000

// queue queues f's writes on the batch's Redis queue, keys in order so a
// batch's commands do not depend on map order.
func (f *fold) queue(ctx context.Context, s *redisStore) {
	q := state.Redis(ctx)
	keys := make(map[string]instWrite, len(f.inst))
	for ref, w := range f.inst {
		keys[s.instKey(ref.group, ref.id)] = w
	}
	for _, key := range slices.Sorted(maps.Keys(keys)) {
		w := keys[key]
		b, err := json.Marshal(w.in)
		if err != nil {
			panic("store: an Instance always marshals: " + err.Error())
		}
		q.Set(ctx, key, b, w.ttl)
	}
	for _, key := range slices.Sorted(maps.Keys(f.hashes)) {
		var del []string
		var set []any
		for _, field := range slices.Sorted(maps.Keys(f.hashes[key])) {
			if v := f.hashes[key][field]; v == nil {
				del = append(del, field)
			} else {
				set = append(set, field, *v)
			}
		}
		for c := range slices.Chunk(del, chunk) {
			q.HDel(ctx, key, c...)
		}
		for c := range slices.Chunk(set, 2*chunk) {
			q.HSet(ctx, key, c...)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(f.zsets)) {
		var del []any
		var add []redis.Z
		for _, m := range slices.Sorted(maps.Keys(f.zsets[key])) {
			if s := f.zsets[key][m]; s == nil {
				del = append(del, m)
			} else {
				add = append(add, redis.Z{Score: *s, Member: m})
			}
		}
		for c := range slices.Chunk(del, chunk) {
			q.ZRem(ctx, key, c...)
		}
		for c := range slices.Chunk(add, chunk) {
			q.ZAdd(ctx, key, c...)
		}
	}
}

// fold records the change of an instance from old to in: its key's last
// form, and each index entry and deadline member it adds or removes.
func (s *redisStore) fold(f *fold, group string, old, in *Instance) {
	var ttl time.Duration
	if in.Ended {
		ttl = s.ended
	}
	f.set(instRef{group, in.ID}, in, ttl)
	removed, added := diff(associations(old), associations(in)), diff(associations(in), associations(old))
	if len(removed)+len(added) > 0 {
		idx := s.key(group, "assoc")
		for _, a := range removed {
			f.hash(idx, a, nil)
		}
		for _, a := range added {
			f.hash(idx, a, &in.ID)
		}
	}
	before, after := deadlines(old), deadlines(in)
	if len(before)+len(after) == 0 {
		return
	}
	due := s.dueKey(group, in.Partition)
	for _, d := range before {
		if !slices.Contains(after, d) {
			f.zset(due, dueMember(in.ID, d), nil)
		}
	}
	for _, d := range after {
		if !slices.Contains(before, d) {
			score := float64(d.Due.UnixMilli())
			f.zset(due, dueMember(in.ID, d), &score)
		}
	}
}
