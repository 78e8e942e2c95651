package integration

import (
	"context"
	"encoding/json"
	"fmt"
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

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/consumers"
	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/internal/clock"
	"github.com/recq/recq/internal/fixture/todo"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

// statsEnv is the platform for the stats projector: recq dev, Redis, the
// todo.events topic with 8 partitions, a serde and a publisher of events.
type statsEnv struct {
	t         *testing.T
	dev       *testenv.Dev
	registry  string // the registry URL the projector uses: dev's unless a test runs another
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
	return newStatsEnvAt(t, rs, t.TempDir())
}

// newStatsEnvAt is newStatsEnv with recq dev's data in dataDir (and more
// flags for it). The todo topics are made as the todo runner makes them,
// so it can run beside.
func newStatsEnvAt(t *testing.T, rs *testenv.RedisServer, dataDir string, devFlags ...string) *statsEnv {
	t.Helper()
	e := &statsEnv{t: t, dev: testenv.StartDev(t, dataDir, devFlags...), redis: rs}
	e.registry = e.dev.Registry
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := aggregates.EnsureTopics(ctx, streams.NewAdmin(testenv.Client(t, e.dev.Addr)), todo.Name, 8); err != nil {
		t.Fatal(err)
	}
	e.rdb = testenv.RedisClient(t, rs.Addr)
	e.serde = serdeAt(t, e.dev.Registry)
	var err error
	if e.pub, err = streams.NewPublisher([]string{e.dev.Addr}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.pub.Close(context.Background()) })
	e.bin = testenv.Binary(t, "github.com/recq/recq/internal/fixture/todo/projector")
	return e
}

// projector starts the stats projector binary and returns once it runs
// (not yet in the group).
func (e *statsEnv) projector(version int, instance string, extra ...string) *testenv.Proc {
	e.t.Helper()
	return e.projectorEnv(nil, version, instance, extra...)
}

// projectorEnv is projector with env (KEY=value) added to its environment.
func (e *statsEnv) projectorEnv(env []string, version int, instance string, extra ...string) *testenv.Proc {
	e.t.Helper()
	args := append([]string{"-brokers", e.dev.Addr, "-registry", e.registry, "-redis", e.redis.Addr,
		"-version", strconv.Itoa(version), "-instance", instance}, extra...)
	return testenv.StartEnv(e.t, env, "todo projector: running", e.bin, args...)
}

// randomMaxPoll varies the batch size between starts: the default (a whole
// fetch per poll, thousands of records per partition batch), 500, and 50.
func randomMaxPoll() string { return []string{"0", "500", "50"}[rand.IntN(3)] }

// publish writes n events over lists lists (see event), in bursts of
// burst events with a pause between them, so that a projector meets them
// as a stream, not only as a backlog.
func (e *statsEnv) publish(ctx context.Context, n, lists, burst int, pause time.Duration) error {
	for sent := 0; sent < n; {
		batch := make([]*kgo.Record, 0, burst)
		for ; len(batch) < burst && sent < n; sent++ {
			rec, err := e.event(ctx, lists, sent)
			if err != nil {
				return err
			}
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

// event is a random event (number seq) of one of lists lists, as the
// aggregate runner writes it: schema-encoded, keyed by the list id, with
// the recq-type and recq-aggregate-id headers.
func (e *statsEnv) event(ctx context.Context, lists, seq int) (*kgo.Record, error) {
	list := fmt.Sprintf("list-%d", rand.IntN(lists))
	var v any
	switch r := rand.IntN(100); {
	case r < 60:
		v = todo.ItemAdded{Title: "t" + strconv.Itoa(seq), Minutes: 1 + rand.IntN(60)}
	case r < 90:
		v = todo.ItemCompleted{Title: "t"}
	case r < 97:
		v = todo.ListCreated{Name: list}
	default:
		v = todo.ListDeleted{}
	}
	val, typ, err := e.serde.Encode(ctx, eventsTopic, v)
	if err != nil {
		return nil, err
	}
	rec := &kgo.Record{Topic: eventsTopic, Key: []byte(list), Value: val}
	streams.Envelope{Type: typ, AggregateID: list}.Write(rec)
	return rec, nil
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

// applied is the number of offsets below the group's positions in Redis:
// records, and the markers of transactions when producers use them.
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
		behind := map[int32]string{}
		ends.Each(func(o kadm.ListedOffset) {
			if pos[o.Partition] < o.Offset {
				behind[o.Partition] = fmt.Sprintf("%d of %d", pos[o.Partition], o.Offset)
			}
		})
		if len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("group %s: %d partitions still behind after %v (position of head): %v", group, len(behind), timeout, behind)
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
	var reports []struct {
		Status consumers.Status `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&reports); err != nil {
		t.Fatal(err)
	}
	st := make([]consumers.Status, len(reports))
	for i, r := range reports {
		st[i] = r.Status
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
	testenv.WaitFor(e.t, what, 2*time.Minute, func() bool {
		applied, pub := e.applied(group), e.published.Load()
		return applied >= target && (pub > applied || pub >= int64(n))
	})
}

// killRounds runs a projector (instance name) of group and kills it with
// SIGKILL kills times while n events stream in: kill k lands at a random
// point past k/(kills+1) of them, mid-stream (see waitMidStream), after
// before(k). Each projector starts with a random batch size; every one is
// filed in procs, and the one left running is returned.
func (e *statsEnv) killRounds(procs map[string]*testenv.Proc, group, name string, kills, n int, before func(k int)) *testenv.Proc {
	proj := e.projector(1, name, "-max-poll", randomMaxPoll())
	for k := 1; k <= kills; k++ {
		target := int64(k*n/(kills+1) + rand.IntN(n/(2*(kills+1))))
		e.waitMidStream(fmt.Sprintf("kill %d: %d offsets applied, more to apply", k, target), group, target, n)
		if before != nil {
			before(k)
		}
		proj.Kill9()
		pub, applied := e.published.Load(), e.applied(group)
		e.t.Logf("kill %d: %d of %d written, %d applied (%d behind)", k, pub, n, applied, pub-applied)
		procs[fmt.Sprintf("projector before kill %d", k)] = proj
		proj = e.projector(1, name, "-max-poll", randomMaxPoll())
	}
	procs["last projector"] = proj
	return proj
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
