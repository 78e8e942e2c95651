package state_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/internal/testenv"
)

// op is one queued write, run against keys under prefix: through a batch
// (prefix "b:") or one by one (prefix "seq:"), to compare the two.
type op func(ctx context.Context, prefix string, c redis.Cmdable)

func incrBy(k string, n int64) op {
	return func(ctx context.Context, p string, c redis.Cmdable) { c.IncrBy(ctx, p+k, n) }
}

func hIncrBy(k, f string, n int64) op {
	return func(ctx context.Context, p string, c redis.Cmdable) { c.HIncrBy(ctx, p+k, f, n) }
}

func set(k, v string) op {
	return func(ctx context.Context, p string, c redis.Cmdable) { c.Set(ctx, p+k, v, 0) }
}

// heldKeys are the keys the records below write.
var heldKeys = []string{"a", "h", "s", "after", "bad", "bad2", "later"}

// firstBatch's third record writes a hash field of bad, which the tests
// make a string: WRONGTYPE. Its increments of a and h.f fold into the
// first record's, so they land before the failing command, and so does
// the increment of h.f in the last record.
var firstBatch = [][]op{
	{incrBy("a", 1), hIncrBy("h", "f", 2)},
	{hIncrBy("h", "f", 3), hIncrBy("h", "g", 1)},
	{hIncrBy("bad", "f", 1), incrBy("a", 4)},
	{set("s", "\x00\xffbinary\r\n"), incrBy("after", 7), hIncrBy("h", "f", 10), hIncrBy("bad2", "f", 1)},
}

// secondBatch is the next batch of the partition.
var secondBatch = [][]op{
	{incrBy("a", 100), hIncrBy("h", "f", 1)},
	{incrBy("later", 1)},
}

// queue runs records through a new batch under l; each record's OnCommit
// adds one to *ran.
func queue(t *testing.T, s state.Store, l state.Lease, records [][]op, ran *int) state.Batch {
	t.Helper()
	b := s.Begin(l)
	for _, rec := range records {
		err := b.Do(context.Background(), func(ctx context.Context) error {
			for _, o := range rec {
				o(ctx, "b:", state.Redis(ctx))
			}
			state.OnCommit(ctx, func() { *ran++ })
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// model reads every key under prefix as text: its type and value.
func model(t *testing.T, rdb *redis.Client, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, k := range heldKeys {
		typ, err := rdb.Type(ctx, prefix+k).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch typ {
		case "none":
			continue
		case "hash":
			h, err := rdb.HGetAll(ctx, prefix+k).Result()
			if err != nil {
				t.Fatal(err)
			}
			fields := slices.Sorted(maps.Keys(h))
			var b strings.Builder
			for _, f := range fields {
				fmt.Fprintf(&b, "%s=%s ", f, h[f])
			}
			out[k] = "hash " + b.String()
		default:
			v, err := rdb.Get(ctx, prefix+k).Result()
			if err != nil {
				t.Fatal(err)
			}
			out[k] = fmt.Sprintf("%s %q", typ, v)
		}
	}
	return out
}

// sequential runs the batches' writes one by one under seq:, the way they
// should end up.
func sequential(rdb *redis.Client, batches ...[][]op) {
	for _, records := range batches {
		for _, rec := range records {
			for _, o := range rec {
				o(context.Background(), "seq:", rdb)
			}
		}
	}
}

// argsHook records the arguments of every EVALSHA.
type argsHook struct {
	mu   *sync.Mutex
	args *[][]any
}

func (argsHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h argsHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "evalsha" {
			h.mu.Lock()
			*h.args = append(*h.args, cmd.Args())
			h.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}
func (argsHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func pending(t *testing.T, err error, what string, want ...string) {
	t.Helper()
	if !errors.Is(err, state.ErrPartiallyApplied) {
		t.Fatalf("%s: want ErrPartiallyApplied, got %v", what, err)
	}
	for _, w := range want {
		if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(w)) {
			t.Fatalf("%s: the error does not say %q: %v", what, w, err)
		}
	}
}

func same(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Fatalf("%s:\n got  %v\n want %v", what, got, want)
	}
}

// A batch whose third record's write hits WRONGTYPE: the writes before it
// are applied once, and the rest are held. Retries of the batch, a new
// claim (a restart) and the next batch apply nothing while the key is
// wrong; an old lease cannot apply the held writes even after the fix; the
// first commit after the fix applies the rest and the next batch, so every
// key ends as the writes run one by one would leave it.
func TestRedisHeldWritesApplyOnce(t *testing.T) {
	rdb := testenv.RedisClient(t, testenv.Redis(t).Addr)
	var mu sync.Mutex
	var sent [][]any
	rdb.AddHook(argsHook{&mu, &sent})
	s, _ := state.NewRedis(rdb)
	ctx := context.Background()
	p := state.Partition{Topic: "t", Partition: 0}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rdb.Set(ctx, "b:bad", "a string", 0).Err())

	l1, err := s.Claim(ctx, "g", p)
	must(err)
	var ran1, ran2 int
	b1 := queue(t, s, l1, firstBatch, &ran1)
	pending(t, b1.Commit(ctx, 10), "first commit", "hincrby", "on key b:bad", "WRONGTYPE", "fix or delete it", "kept and applied, once")
	prefix := map[string]string{"a": `string "5"`, "h": "hash f=15 g=1 ", "bad": `string "a string"`}
	same(t, "after the failed commit: the writes before the failing one, once", model(t, rdb, "b:"), prefix)
	if ps, _ := s.Positions(ctx, "g"); len(ps) != 0 {
		t.Fatalf("position moved: %v", ps)
	}

	mu.Lock()
	sent = nil
	mu.Unlock()
	pending(t, b1.Commit(ctx, 10), "the same batch again", "on key b:bad", "WRONGTYPE")
	same(t, "after a retry while the key is wrong", model(t, rdb, "b:"), prefix)
	mu.Lock()
	if len(sent) != 1 || len(sent[0]) != 7 { // evalsha sha 1 key partition epoch next
		t.Fatalf("the retry sent %v: want one EVALSHA with the position only, the commands are held by Redis", sent)
	}
	mu.Unlock()
	// A resend of the whole batch (as after a lost reply) runs none of it.
	pending(t, queue(t, s, l1, firstBatch, &ran1).Commit(ctx, 10), "the batch resent", "on key b:bad")
	same(t, "after the batch was resent", model(t, rdb, "b:"), prefix)

	// A restart: the new owner resumes after the batch, whose writes are
	// applied or held; the stored position is still before it.
	l2, err := s.Claim(ctx, "g", p)
	must(err)
	if l2.Next != 10 || !l2.Pending || l2.Epoch <= l1.Epoch {
		t.Fatalf("claim after the failed commit: %+v; want Next 10, Pending, a higher epoch", l2)
	}
	if ps, _ := s.Positions(ctx, "g"); len(ps) != 0 {
		t.Fatalf("positions report %v while writes are held", ps)
	}
	b2 := queue(t, s, l2, secondBatch, &ran2)
	pending(t, b2.Commit(ctx, 20), "the next batch", "below offset 10", "on key b:bad", "WRONGTYPE", "nothing was applied")
	same(t, "after the next batch's commit while the key is wrong", model(t, rdb, "b:"), prefix)

	must(rdb.Del(ctx, "b:bad").Err()) // the operator fixes the key
	if err := b1.Commit(ctx, 10); !errors.Is(err, state.ErrFenced) {
		t.Fatalf("old lease after the fix: want ErrFenced, got %v", err)
	}
	delete(prefix, "bad")
	same(t, "after the old lease's commit", model(t, rdb, "b:"), prefix)

	must(b2.Commit(ctx, 20))
	sequential(rdb, firstBatch, secondBatch)
	same(t, "after the fix: every key as the writes one by one leave it", model(t, rdb, "b:"), model(t, rdb, "seq:"))
	if ps, _ := s.Positions(ctx, "g"); ps[p] != 20 {
		t.Fatalf("positions %v, want %s at 20", ps, p)
	}
	if ran1 != 0 || ran2 != len(secondBatch) {
		t.Fatalf("OnCommit ran %d times for the first batch's process (fenced: want 0) and %d for the second (want %d)", ran1, ran2, len(secondBatch))
	}
	must(b2.Commit(ctx, 20))
	same(t, "after committing the batch again", model(t, rdb, "b:"), model(t, rdb, "seq:"))
	l3, err := s.Claim(ctx, "g", p)
	must(err)
	if l3.Next != 20 || l3.Pending {
		t.Fatalf("claim at the end: %+v, want Next 20 and nothing pending", l3)
	}
	if n, _ := rdb.HLen(ctx, state.DefaultKeyPrefix+"g").Result(); n != 2 {
		t.Fatalf("the group's hash has %d fields, want epoch and next only", n)
	}
}

// The batch whose commit failed is retried in process, as the consumer
// does: while the key stays wrong nothing more applies; once it is fixed
// the retry completes the batch and its OnCommit functions run, once. Held
// writes that fail again at a later command (a second bad key) keep only
// the commands from there.
func TestRedisHeldWritesRetrySameBatch(t *testing.T) {
	rdb := testenv.RedisClient(t, testenv.Redis(t).Addr)
	s, _ := state.NewRedis(rdb)
	ctx := context.Background()
	p := state.Partition{Topic: "t", Partition: 3}
	for _, k := range []string{"b:bad", "b:bad2"} {
		if err := rdb.Set(ctx, k, "a string", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	l, _ := s.Claim(ctx, "g", p)
	var ran int
	b := queue(t, s, l, firstBatch, &ran)
	pending(t, b.Commit(ctx, 10), "first commit", "on key b:bad")
	if err := rdb.Del(ctx, "b:bad").Err(); err != nil {
		t.Fatal(err)
	}
	pending(t, b.Commit(ctx, 10), "retry with the second key still wrong", "on key b:bad2", "WRONGTYPE")
	got := model(t, rdb, "b:")
	if got["bad"] != "hash f=1 " || got["after"] != `string "7"` || got["s"] != fmt.Sprintf("string %q", "\x00\xffbinary\r\n") || got["a"] != `string "5"` {
		t.Fatalf("after the first key's fix, the held writes up to the second bad key must apply once (binary values intact): %v", got)
	}
	if ran != 0 {
		t.Fatalf("OnCommit ran %d times before the batch committed", ran)
	}
	if err := rdb.Del(ctx, "b:bad2").Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx, 10); err != nil {
		t.Fatal(err)
	}
	sequential(rdb, firstBatch)
	same(t, "after both fixes", model(t, rdb, "b:"), model(t, rdb, "seq:"))
	if ps, _ := s.Positions(ctx, "g"); ps[p] != 10 {
		t.Fatalf("positions %v, want %s at 10", ps, p)
	}
	if ran != len(firstBatch) {
		t.Fatalf("OnCommit ran %d times, want once per record (%d)", ran, len(firstBatch))
	}
}
