package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/consumers"
	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/examples/todo"
	"github.com/recq/recq/internal/clock"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

// statsEnv is the platform for the stats projector: recq dev, Redis, the
// todo.events topic with 8 partitions, a serde and a publisher of events.
type statsEnv struct {
	t         *testing.T
	dev       *testenv.Dev
	redis     *testenv.RedisServer
	rdb       *redis.Client
	serde     *schema.Serde
	pub       *streams.Publisher
	bin       string
	published atomic.Int64 // events acknowledged by the broker so far
}

var eventsTopic = aggregates.EventsTopic(todo.Name)

func newStatsEnv(t *testing.T, rs *testenv.RedisServer) *statsEnv {
	t.Helper()
	e := &statsEnv{t: t, dev: testenv.StartDev(t, t.TempDir()), redis: rs}
	testenv.Topic(t, e.dev.Addr, eventsTopic, 8)
	e.rdb = redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { _ = e.rdb.Close() })
	src, err := sr.NewClient(sr.URLs(e.dev.Registry))
	if err != nil {
		t.Fatal(err)
	}
	if e.serde, err = schema.NewSerde(src, schema.WithAutoRegister(true)); err != nil {
		t.Fatal(err)
	}
	if e.pub, err = streams.NewPublisher(streams.WithBrokers(e.dev.Addr)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.pub.Close(context.Background()) })
	e.bin = testenv.Binary(t, "github.com/recq/recq/examples/todo/projector")
	return e
}

// projector starts the stats projector binary and returns once it runs
// (not yet in the group).
func (e *statsEnv) projector(version int, instance string, extra ...string) *testenv.Proc {
	e.t.Helper()
	args := append([]string{"-brokers", e.dev.Addr, "-registry", e.dev.Registry, "-redis", e.redis.Addr,
		"-version", strconv.Itoa(version), "-instance", instance}, extra...)
	return testenv.Start(e.t, "todo projector: running", e.bin, args...)
}

// randomMaxPoll varies the batch size between starts: the default (a whole
// fetch per poll, thousands of records per partition batch), 500, and 50.
func randomMaxPoll() string { return []string{"0", "500", "50"}[rand.IntN(3)] }

// publish writes n events over lists lists, the way the aggregate runner
// writes them (schema-encoded, keyed by the list id, with the recq-type and
// recq-aggregate-id headers), in bursts of burst events with a pause
// between them, so that a projector meets them as a stream, not only as a
// backlog.
func (e *statsEnv) publish(ctx context.Context, n, lists, burst int, pause time.Duration) error {
	for sent := 0; sent < n; {
		batch := make([]*kgo.Record, 0, burst)
		for ; len(batch) < burst && sent < n; sent++ {
			list := fmt.Sprintf("list-%d", rand.IntN(lists))
			var v any
			switch r := rand.IntN(100); {
			case r < 60:
				v = todo.ItemAdded{Title: "t" + strconv.Itoa(sent), Minutes: 1 + rand.IntN(60)}
			case r < 90:
				v = todo.ItemCompleted{Title: "t"}
			case r < 97:
				v = todo.ListCreated{Name: list}
			default:
				v = todo.ListDeleted{}
			}
			val, typ, err := e.serde.Encode(ctx, eventsTopic, v)
			if err != nil {
				return err
			}
			rec := &kgo.Record{Topic: eventsTopic, Key: []byte(list), Value: val}
			streams.Envelope{Type: typ, AggregateID: list}.Write(rec)
			batch = append(batch, rec)
		}
		if err := e.pub.Publish(ctx, batch...); err != nil {
			return err
		}
		e.published.Add(int64(len(batch)))
		if !clock.Sleep(ctx, pause) {
			return ctx.Err()
		}
	}
	return nil
}

// publishing runs publish in the background; wait for its result with
// <-ch.
func (e *statsEnv) publishing(ctx context.Context, n, lists, burst int, pause time.Duration) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- e.publish(ctx, n, lists, burst, pause) }()
	return ch
}

// fold computes every list's stats from the topic, the source of truth,
// the way the projector should: per recq-aggregate-id, every event counted
// once.
func (e *statsEnv) fold() map[string]todo.Stats { return e.foldWithout(nil) }

// foldWithout is the fold without the events skip names (by
// deadletter.ID): the dead ones.
func (e *statsEnv) foldWithout(skip map[string]bool) map[string]todo.Stats {
	e.t.Helper()
	ctx := context.Background()
	name := func(v any) string {
		n, err := e.serde.TypeName(v)
		if err != nil {
			e.t.Fatal(err)
		}
		return n
	}
	added, completed, deleted := name(todo.ItemAdded{}), name(todo.ItemCompleted{}), name(todo.ListDeleted{})
	out := map[string]todo.Stats{}
	for _, r := range testenv.ReadTopic(e.t, e.dev.Addr, eventsTopic) {
		if skip[deadletter.ID(r.Topic, r.Partition, r.Offset)] {
			continue
		}
		list, _ := streams.Header(r, streams.HeaderAggregateID)
		s := out[list]
		s.List = list
		s.Events++
		switch typ, _ := streams.Header(r, streams.HeaderType); typ {
		case added:
			var ev todo.ItemAdded
			if err := e.serde.Decode(ctx, eventsTopic, r.Value, &ev); err != nil {
				e.t.Fatal(err)
			}
			s.Added++
			s.Minutes += int64(ev.Minutes)
		case completed:
			s.Completed++
		case deleted:
			s.Deleted = true
		}
		out[list] = s
	}
	return out
}

// positions are the group's next offsets in Redis, by partition.
func (e *statsEnv) positions(group string) map[int32]int64 {
	e.t.Helper()
	all, err := e.rdb.HGetAll(context.Background(), state.DefaultKeyPrefix+group).Result()
	if err != nil {
		e.t.Fatalf("positions of %s: %v", group, err)
	}
	out := map[int32]int64{}
	for f, v := range all {
		if p, ok := strings.CutPrefix(f, "next:"+eventsTopic+":"); ok {
			n, _ := strconv.Atoi(p)
			out[int32(n)], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return out
}

// applied is the number of records below the group's positions in Redis
// (the topic has no control records: its producer is not transactional).
func (e *statsEnv) applied(group string) int64 {
	var n int64
	for _, o := range e.positions(group) {
		n += o
	}
	return n
}

// waitCaughtUp waits until the group's positions in Redis reach the
// topic's last stable offsets, i.e. every event has been applied.
func (e *statsEnv) waitCaughtUp(group string, timeout time.Duration) {
	e.t.Helper()
	adm := kadm.NewClient(testenv.Client(e.t, e.dev.Addr))
	ends, err := adm.ListCommittedOffsets(context.Background(), eventsTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		pos := e.positions(group)
		behind := 0
		ends.Each(func(o kadm.ListedOffset) {
			if pos[o.Partition] < o.Offset {
				behind++
			}
		})
		if behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("group %s: %d partitions still behind after %v; positions %v", group, behind, timeout, pos)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// check compares the read model of group with the fold, list by list and
// field by field, and checks there are no other lists. It reports every
// list that differs, and how many events are missing or counted twice.
func (e *statsEnv) check(group string, want map[string]todo.Stats) {
	e.t.Helper()
	ctx := context.Background()
	keys, err := e.rdb.Keys(ctx, group+":list:*").Result()
	if err != nil {
		e.t.Fatal(err)
	}
	var events, diff, wrong int64
	for list, w := range want {
		h, err := e.rdb.HGetAll(ctx, todo.StatsKey(group, list)).Result()
		if err != nil {
			e.t.Fatal(err)
		}
		num := func(f string) int64 { n, _ := strconv.ParseInt(h[f], 10, 64); return n }
		got := todo.Stats{List: list, Events: num("events"), Added: num("added"), Completed: num("completed"), Minutes: num("minutes"), Deleted: h["deleted"] == "1"}
		if got != w {
			if wrong++; wrong <= 10 {
				e.t.Errorf("%s: list %s: read model %+v, fold of the topic %+v", group, list, got, w)
			}
			diff += got.Events - w.Events
		}
		events += w.Events
	}
	if wrong > 0 {
		e.t.Fatalf("%s: %d of %d lists differ from the fold; %+d events in the read model (negative: lost, positive: applied twice)", group, wrong, len(want), diff)
	}
	if len(keys) != len(want) {
		e.t.Fatalf("%s: %d lists in Redis, %d in the topic", group, len(keys), len(want))
	}
	e.t.Logf("%s: %d lists, %d events: read model equals the fold", group, len(want), events)
}

// status reads a projector's /health/status; nil while it does not answer.
func status(t *testing.T, addr string) []consumers.Status {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/health/status")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var st []consumers.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// owned reads a projector's /health/status: the partitions of the events
// topic it owns and how many of them it has applied records of.
func owned(t *testing.T, addr string) (owns, applied int) {
	t.Helper()
	for _, st := range status(t, addr) {
		for _, p := range st.Partitions {
			if p.Topic != eventsTopic {
				continue // the group's retry topic
			}
			owns++
			if p.Next > 0 {
				applied++
			}
		}
	}
	return owns, applied
}

// waitMidStream waits until at least target events of group are applied
// while published ones wait to be applied (or all n of the stream are in):
// a point with work in hand, not between bursts.
func (e *statsEnv) waitMidStream(what, group string, target int64, n int) {
	e.t.Helper()
	waitFor(e.t, what, 2*time.Minute, func() bool {
		applied, pub := e.applied(group), e.published.Load()
		return applied >= target && (pub > applied || pub >= int64(n))
	})
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// twoMembers starts members a and b (instances <prefix>a, <prefix>b) with
// a 6 s session and max-poll, serving their status on the returned
// addresses; their output is logged if the test fails.
func (e *statsEnv) twoMembers(prefix, maxPoll string) (a, b *testenv.Proc, httpA, httpB string) {
	httpA, httpB = testenv.FreeAddr(e.t), testenv.FreeAddr(e.t)
	a = e.projector(1, prefix+"a", "-session-timeout", "6s", "-http", httpA, "-max-poll", maxPoll)
	b = e.projector(1, prefix+"b", "-session-timeout", "6s", "-http", httpB, "-max-poll", maxPoll)
	dumpOnFailure(e.t, map[string]*testenv.Proc{"member a": a, "member b": b})
	return a, b, httpA, httpB
}

// dumpOnFailure logs the processes' output if the test fails.
func dumpOnFailure(t *testing.T, procs map[string]*testenv.Proc) {
	t.Cleanup(func() {
		if t.Failed() {
			for name, p := range procs {
				t.Logf("%s:\n%s", name, p.Output())
			}
		}
	})
}

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
	proj := e.projector(1, "crash", "-max-poll", randomMaxPoll())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	published := e.publishing(ctx, events, lists, 5000, 250*time.Millisecond)
	for k := 1; k <= kills; k++ {
		// Kill k lands at a random point past k/6 of the events, while
		// published events wait to be applied (mid-burst): with work in
		// hand, not between bursts.
		target := int64(k*events/(kills+1) + rand.IntN(events/(2*(kills+1))))
		e.waitMidStream(fmt.Sprintf("kill %d: %d events applied, more to apply", k, target), group, target, events)
		e.publishNeg(ctx, fmt.Sprintf("neg-%d", k), -k)
		proj.Kill9()
		pub, applied := e.published.Load(), e.applied(group)
		t.Logf("kill %d: %d of %d events published, %d applied (%d behind)", k, pub, events, applied, pub-applied)
		procs[fmt.Sprintf("projector before kill %d", k)] = proj
		proj = e.projector(1, "crash", "-max-poll", randomMaxPoll())
	}
	procs["last projector"] = proj
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
	waitFor(t, "both members owning partitions and applying", time.Minute, func() bool {
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
	waitFor(t, "member b owning every partition", time.Minute, func() bool { ownsB, _ := owned(t, httpB); return ownsB == 8 })
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
	waitFor(t, "events applied before the outage", time.Minute, func() bool { return e.applied(group) >= target })
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
	testenv.Start(t, "todo runner: ready", testenv.Binary(t, "github.com/recq/recq/examples/todo/runner"),
		"-brokers", dev.Addr, "-registry", dev.Registry, "-partitions", "4")
	httpAddr := testenv.FreeAddr(t)
	testenv.Start(t, "todo projector: at head", testenv.Binary(t, "github.com/recq/recq/examples/todo/projector"),
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
