package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/recq/recq/consumers"
	"github.com/recq/recq/internal/fixture/todo"
	"github.com/recq/recq/internal/testenv"
)

// A projector building the stats of 100,000 events over 8 partitions is
// killed with SIGKILL five times at random points while the events stream
// in, and restarted each time (with a batch size drawn at random). Lists
// the projector refuses come in too. At the end every list's stats equal
// the fold of the topic without the dead events, and each dead event is
// in the queue once: nothing lost, nothing counted twice.
func TestProjectorKill9ExactlyOnce(t *testing.T) {
	const events, lists, kills = 100_000, 500, 5
	const group = "todo.stats.v1"
	e := newStatsEnv(t, testenv.Redis(t))
	procs := map[string]*testenv.Proc{}
	dumpOnFailure(t, procs)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	published := e.publishing(ctx, events, lists, 5000, 250*time.Millisecond)
	// With work in hand, not between bursts; lists the projector refuses
	// arrive before each kill.
	e.killRounds(procs, group, "crash", kills, events, func(k int) { e.publishNeg(ctx, fmt.Sprintf("neg-%d", k), -k) })
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(group, 3*time.Minute)
	dead := e.deadNeg()
	e.queueOnce(group, dead)
	e.check(group, e.foldWithout(dead))
}

// Two projector processes share the group; once both own partitions, one
// is killed with SIGKILL mid-stream and not restarted. The survivor takes
// its partitions after the session timeout, from the positions stored
// with the read model, and finishes: the read model equals the fold.
func TestProjectorTwoMembersOneKilled(t *testing.T) {
	const group = "todo.stats.v1"
	e := newStatsEnv(t, testenv.Redis(t))
	a, _, httpA, httpB := e.twoMembers("", "500")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const events = 50_000
	published := e.publishing(ctx, events, 300, 1000, 60*time.Millisecond)
	testenv.WaitFor(t, "both members owning partitions and applying", time.Minute, func() bool {
		ownsA, appliedA := owned(t, httpA)
		ownsB, appliedB := owned(t, httpB)
		return ownsA+ownsB == 8 && appliedA > 0 && appliedB > 0
	})
	// Then at a random point while published events wait to be applied.
	e.waitMidStream("a random point mid-stream", group, e.applied(group)+rand.Int64N(10_000), events)
	ownsA, _ := owned(t, httpA)
	a.Kill9()
	killed := time.Now()
	t.Logf("member a (%d partitions) killed: %d events published, %d applied by the group", ownsA, e.published.Load(), e.applied(group))
	testenv.WaitFor(t, "member b owning every partition", time.Minute, func() bool { ownsB, _ := owned(t, httpB); return ownsB == 8 })
	t.Logf("member b took a's partitions %v after the kill", time.Since(killed).Round(time.Millisecond))
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(group, 3*time.Minute)
	e.check(group, e.fold())
}

// Redis (with an append-only file synced on every write) is killed for 10
// seconds while the projector has events to apply, and comes back with its
// data. Meanwhile the projector reports the failure on /health/status and
// retries without moving any position; then it finishes, and the read
// model equals the fold, so no position in Redis ever got ahead of the
// writes it covers.
func TestProjectorRedisOutage(t *testing.T) {
	const group = "todo.stats.v1"
	e := newStatsEnv(t, testenv.RedisPersistent(t))
	httpAddr := testenv.FreeAddr(t)
	proj := e.projector(1, "outage", "-http", httpAddr, "-max-poll", "500")
	dumpOnFailure(t, map[string]*testenv.Proc{"projector": proj})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// 40 batches of 1000, one every ~70 ms: the outage starts within the
	// first 8000 events, so the projector has events to apply during it,
	// in its backlog or still coming.
	published := e.publishing(ctx, 40_000, 200, 1000, 50*time.Millisecond)
	target := int64(2000 + rand.IntN(6000))
	testenv.WaitFor(t, "events applied before the outage", time.Minute, func() bool { return e.applied(group) >= target })
	before, applied := e.positions(group), e.applied(group)
	e.redis.Stop()
	outage := time.Now()
	t.Logf("Redis stopped: %d events published, %d applied", e.published.Load(), applied)

	// During the outage the projector must say it fails, naming Redis, and
	// its positions must stay where they were.
	var failing *consumers.Failure
	var paused map[string]int64
	snapshot := func() map[string]int64 {
		m := map[string]int64{}
		for _, st := range status(t, httpAddr) {
			for _, p := range st.Partitions {
				m[fmt.Sprint(p.Topic, "/", p.Partition)] = p.Next
			}
		}
		return m
	}
	for time.Since(outage) < 10*time.Second {
		for _, st := range status(t, httpAddr) {
			if st.Failing != nil && strings.Contains(st.Failing.Error, e.redis.Addr) && failing == nil {
				failing = st.Failing
				paused = snapshot()
				t.Logf("after %v: failing %+v", time.Since(outage).Round(time.Millisecond), *failing)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if failing == nil {
		t.Fatal("during the outage /health/status never reported a failure naming the Redis address")
	}
	if now := snapshot(); !maps.Equal(now, paused) {
		t.Fatalf("positions moved while Redis was down: %v, then %v", paused, now)
	}
	e.redis.Start()
	t.Logf("Redis back after %v", time.Since(outage).Round(time.Millisecond))
	// Nothing acknowledged before the outage was lost with it.
	for p, o := range e.positions(group) {
		if o < before[p] {
			t.Fatalf("partition %d: position %d after the restart, %d before: Redis lost data", p, o, before[p])
		}
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(group, 3*time.Minute)
	e.check(group, e.fold())
	for _, st := range status(t, httpAddr) {
		if st.Failing != nil {
			t.Fatalf("still failing after Redis came back: %+v", st.Failing)
		}
	}
	if out := proj.Output(); !strings.Contains(out, "failed; retrying") || !strings.Contains(out, "recovered") {
		t.Fatalf("the projector's log shows no retries and recovery:\n%s", out)
	}
}

// Bumping the version starts a new group from the beginning under new
// keys; the old version's read model and positions are left as they were.
func TestProjectorVersionBumpRebuilds(t *testing.T) {
	e := newStatsEnv(t, testenv.Redis(t))
	ctx := context.Background()
	if err := e.publish(ctx, 5000, 50, 1000, 0); err != nil {
		t.Fatal(err)
	}
	v1 := e.projector(1, "v1", "-max-poll", randomMaxPoll())
	e.waitCaughtUp("todo.stats.v1", time.Minute)
	if err := v1.Stop(sigterm, 30*time.Second); err != nil {
		t.Fatalf("v1 did not stop on SIGTERM: %v\n%s", err, v1.Output())
	}
	before, v1Positions := e.fold(), e.positions("todo.stats.v1")
	if err := e.publish(ctx, 2000, 60, 1000, 0); err != nil {
		t.Fatal(err)
	}
	e.projector(2, "v2", "-max-poll", randomMaxPoll())
	e.waitCaughtUp("todo.stats.v2", time.Minute)
	e.check("todo.stats.v2", e.fold())
	e.check("todo.stats.v1", before)
	if now := e.positions("todo.stats.v1"); !maps.Equal(now, v1Positions) {
		t.Fatalf("v1's positions moved while it was stopped: %v, was %v", now, v1Positions)
	}
}

// After Send returns, a consistent query (?consistent=true&key=<list>)
// sees the command's events at once.
func TestProjectionReadsOwnWrites(t *testing.T) {
	dev := testenv.StartDev(t, t.TempDir())
	rs := testenv.Redis(t)
	testenv.Start(t, "todo runner: ready", testenv.Binary(t, "github.com/recq/recq/internal/fixture/todo/runner"),
		"-brokers", dev.Addr, "-registry", dev.Registry, "-partitions", "4")
	httpAddr := testenv.FreeAddr(t)
	testenv.Start(t, "todo projector: at head", testenv.Binary(t, "github.com/recq/recq/internal/fixture/todo/projector"),
		"-brokers", dev.Addr, "-registry", dev.Registry, "-redis", rs.Addr, "-http", httpAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	iv := todoInvoker(ctx, t, dev)
	query := func(list, params string) (int, todo.Stats, string) {
		t.Helper()
		resp, err := http.Post("http://"+httpAddr+"/query/GetStats?"+params, "application/json",
			strings.NewReader(`{"List":"`+list+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var got todo.Stats
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("query %s: %v: %s", list, err, body)
			}
		}
		return resp.StatusCode, got, string(body)
	}
	send := func(list string, cmd any) {
		t.Helper()
		if _, err := iv.Send(ctx, todo.Name, list, cmd); err != nil {
			t.Fatalf("%s: %T: %v", list, cmd, err)
		}
	}
	if code, _, body := query("no-such-list", "consistent=true&key=no-such-list"); code != http.StatusNotFound {
		t.Fatalf("unknown list: %d %s, want 404", code, body)
	}
	stale := 0 // plain reads right after Send that missed it: what consistency is for
	for i := range 10 {
		list := fmt.Sprintf("ryw-%d", i)
		send(list, todo.CreateList{Name: list})
		send(list, todo.AddItem{Title: "a", Minutes: 30 + i})
		if _, got, _ := query(list, ""); got.Added != 1 {
			stale++
		}
		code, got, body := query(list, "consistent=true&key="+list)
		if want := (todo.Stats{List: list, Events: 2, Added: 1, Minutes: int64(30 + i)}); code != http.StatusOK || got != want {
			t.Fatalf("consistent read right after Send: %d %s, want %+v", code, body, want)
		}
		send(list, todo.AddItem{Title: "b", Minutes: 5})
		send(list, todo.CompleteItem{Title: "a"})
		// Without a key, every partition is waited for.
		code, got, body = query(list, "consistent=true")
		if want := (todo.Stats{List: list, Events: 4, Added: 2, Completed: 1, Minutes: int64(35 + i)}); code != http.StatusOK || got != want {
			t.Fatalf("consistent read right after Send: %d %s, want %+v", code, body, want)
		}
	}
	t.Logf("10 consistent reads saw their writes; %d of 10 plain reads right after Send did not", stale)
}
