package consumers_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/consumers"
	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

// kinds is the read model of kindsProjector: per account, its balance, its
// events, and its deposits and withdrawals.
type kinds map[string][4]int64

// kindsProjector writes, per event, the account's hash <group>:acct:<acct>
// (balance, count) and then its hash <group>:kinds:<acct> (deposit or
// withdrawal): when the second key has the wrong type, the event's first
// write is applied before the failing one, so a failed commit always
// leaves something applied past the stored position.
func kindsProjector() *consumers.Consumer {
	p := consumers.NewProjector("bank", "kinds", 1, topic)
	apply := func(ctx context.Context, md consumers.Metadata, delta int64, kind string) error {
		tx, acct := state.Redis(ctx), md.Key()
		tx.HIncrBy(ctx, md.Group+":acct:"+acct, "balance", delta)
		tx.HIncrBy(ctx, md.Group+":acct:"+acct, "count", 1)
		tx.HIncrBy(ctx, md.Group+":kinds:"+acct, kind, 1)
		return nil
	}
	consumers.On(p, func(ctx context.Context, e Deposited, md consumers.Metadata) error {
		return apply(ctx, md, e.Amount, "deposit")
	})
	consumers.On(p, func(ctx context.Context, e Withdrawn, md consumers.Metadata) error {
		return apply(ctx, md, -e.Amount, "withdrawal")
	})
	return p
}

// foldKinds is kindsProjector's model from the topic's records below
// upTo (every record when nil).
func foldKinds(t *testing.T, b *bank, upTo map[state.Partition]int64) kinds {
	t.Helper()
	out := kinds{}
	ctx := context.Background()
	for _, r := range testenv.ReadTopic(t, b.addr, topic) {
		if upTo != nil && r.Offset >= upTo[state.Partition{Topic: r.Topic, Partition: r.Partition}] {
			continue
		}
		k := out[string(r.Key)]
		switch typ, _ := streams.Header(r, streams.HeaderType); typ {
		case typeName(t, b.serde, Deposited{}):
			var e Deposited
			must(t, b.serde.Decode(ctx, topic, r.Value, &e))
			k[0] += e.Amount
			k[2]++
		case typeName(t, b.serde, Withdrawn{}):
			var e Withdrawn
			must(t, b.serde.Decode(ctx, topic, r.Value, &e))
			k[0] -= e.Amount
			k[3]++
		default:
			continue
		}
		k[1]++
		out[string(r.Key)] = k
	}
	return out
}

// readKinds reads kindsProjector's model from Redis.
func readKinds(t *testing.T, rdb *redis.Client, group string) kinds {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, group+":acct:*").Result()
	must(t, err)
	out := kinds{}
	num := func(h map[string]string, f string) int64 { n, _ := strconv.ParseInt(h[f], 10, 64); return n }
	for _, key := range keys {
		acct := strings.TrimPrefix(key, group+":acct:")
		a, err := rdb.HGetAll(ctx, key).Result()
		must(t, err)
		k, err := rdb.HGetAll(ctx, group+":kinds:"+acct).Result()
		if err != nil && !strings.Contains(err.Error(), "WRONGTYPE") {
			t.Fatal(err)
		}
		out[acct] = [4]int64{num(a, "balance"), num(a, "count"), num(k, "deposit"), num(k, "withdrawal")}
	}
	return out
}

// publishLate publishes n events over the usual accounts with a deposit of
// acct-late after every tenth, in one call.
func publishLate(t *testing.T, b *bank, n int) {
	t.Helper()
	ctx := context.Background()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, b.record(ctx, fmt.Sprintf("acct-%d", i%20), Deposited{Amount: int64(i%7 + 1)}))
		if i%10 == 9 {
			recs = append(recs, b.record(ctx, "acct-late", Deposited{Amount: 1000}))
		}
	}
	must(t, b.pub.Publish(ctx, recs...))
}

// failingOn waits until r reports a failing commit naming the key, after
// a few attempts, and checks that it runs and shows a partition's writes
// held.
func failingOn(t *testing.T, r *consumers.Runner, key string) {
	t.Helper()
	testenv.Eventually(t, "the runner reporting the failing write", time.Minute, func() error {
		f := r.Status().Failing
		if f == nil || f.Attempts < 3 {
			return fmt.Errorf("failing: %+v", f)
		}
		for _, w := range []string{"WRONGTYPE", "on key " + key, "fix or delete it", "applied, once"} {
			if !strings.Contains(f.Error, w) {
				return fmt.Errorf("failure %q does not say %q", f.Error, w)
			}
		}
		return nil
	})
	st := r.Status()
	if !st.Running || r.Alive() != nil {
		t.Fatalf("the runner stopped on the failing write: %+v", st)
	}
	for _, p := range st.Partitions {
		if p.Pending {
			return
		}
	}
	t.Fatalf("no partition shows held writes: %+v", st.Partitions)
}

// notCaughtUp checks that the runner does not claim writes applied that are
// held: CatchUp waits, the runner is not at the head.
func notCaughtUp(t *testing.T, r *consumers.Runner) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := r.CatchUp(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CatchUp while writes are held: want a timeout, got %v", err)
	}
	if r.Ready() {
		t.Fatal("ready while writes are held")
	}
}

// An outside client makes a key a handler writes a string, mid-stream: the
// commit fails half-way. The runner keeps running and retrying, Status and
// the log say what to fix; a new runner on the same store (a restart)
// while the key is still wrong resumes after the failed batch, applies
// nothing twice and waits; once the key is fixed the read model equals the
// fold of the topic. Then the same with the failing event last in its
// partition, so that the restarted runner has no record to commit with
// and applies the held writes by itself.
func TestProjectorHeldWritesApplyOnceAfterTheKeyIsFixed(t *testing.T) {
	b := newBank(t, 2)
	rdb := testenv.RedisClient(t, testenv.Redis(t).Addr)
	store := redisStore(t, rdb)
	p := kindsProjector()
	late := p.Group() + ":kinds:acct-late"
	var logs testenv.LogBuffer
	opts := []consumers.RunnerOption{consumers.WithStore(store), consumers.WithRetryBackoff(10*time.Millisecond, 200*time.Millisecond),
		consumers.WithLogger(logs.Logger())}
	ctx := context.Background()

	b.publish(1000, 20)
	r1, stop1 := start(t, b, p, opts...)
	catchUp(t, r1)
	if got, want := readKinds(t, rdb, p.Group()), foldKinds(t, b, nil); !maps.Equal(got, want) {
		t.Fatalf("before the failure: read model %v, fold %v", got, want)
	}

	must(t, rdb.Set(ctx, late, "not a hash", 0).Err())
	publishLate(t, b, 300)
	failingOn(t, r1, late)
	positions, err := store.Positions(ctx, p.Group())
	must(t, err)
	if got := readKinds(t, rdb, p.Group()); maps.Equal(got, foldKinds(t, b, positions)) {
		t.Fatal("the failed commit applied nothing past the stored positions; the test wants writes applied before the failing one")
	}
	publishLate(t, b, 300) // handled while the commit is retried
	stop1()
	if out := logs.String(); !strings.Contains(out, "failed; retrying") || !strings.Contains(out, "fix or delete it") {
		t.Fatalf("the log does not say what to fix:\n%s", out)
	}

	r2, stop2 := start(t, b, p, opts...)
	failingOn(t, r2, late)
	notCaughtUp(t, r2)
	publishLate(t, b, 100)
	must(t, rdb.Del(ctx, late).Err())
	catchUp(t, r2)
	if got, want := readKinds(t, rdb, p.Group()), foldKinds(t, b, nil); !maps.Equal(got, want) {
		t.Fatalf("after the fix: read model %v, fold %v", got, want)
	}
	if st := r2.Status(); st.Failing != nil {
		t.Fatalf("still failing after the fix: %+v", st.Failing)
	}

	// The failing event, of a new account, is the last record of its
	// partition.
	last := p.Group() + ":kinds:acct-last"
	must(t, rdb.Set(ctx, last, "not a hash", 0).Err())
	b.publish(200, 20)
	must(t, b.pub.Publish(ctx, b.record(ctx, "acct-last", Deposited{Amount: 1000})))
	failingOn(t, r2, last)
	stop2()
	r3, _ := start(t, b, p, opts...)
	failingOn(t, r3, last)
	notCaughtUp(t, r3)
	must(t, rdb.Del(ctx, last).Err())
	catchUp(t, r3)
	if got, want := readKinds(t, rdb, p.Group()), foldKinds(t, b, nil); !maps.Equal(got, want) {
		t.Fatalf("after the second fix: read model %v, fold %v", got, want)
	}
	st := r3.Status()
	for _, ps := range st.Partitions {
		if ps.Pending {
			t.Fatalf("%s/%d still shows held writes after they applied", ps.Topic, ps.Partition)
		}
	}
	if st.Failing != nil || !st.Ready {
		t.Fatalf("after the second fix: %+v", st)
	}
}
