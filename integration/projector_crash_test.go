package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/consumers"
	"github.com/recq/recq/examples/todo"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

// statsEnv is the platform for the stats projector: recq dev, Redis, the
// todo.events topic with 8 partitions, a serde and a publisher of events.
type statsEnv struct {
	t     *testing.T
	dev   *testenv.Dev
	redis *testenv.RedisServer
	rdb   *redis.Client
	serde *schema.Serde
	pub   *streams.Publisher
	bin   string
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

// projector starts the stats projector binary.
func (e *statsEnv) projector(version int, instance string, extra ...string) *testenv.Proc {
	e.t.Helper()
	args := append([]string{"-brokers", e.dev.Addr, "-registry", e.dev.Registry, "-redis", e.redis.Addr,
		"-version", strconv.Itoa(version), "-instance", instance, "-max-poll", "500"}, extra...)
	return testenv.Start(e.t, "todo projector: running", e.bin, args...)
}

// publish writes n events over lists lists in batches of 1000, pausing
// between batches so that kills land mid-stream.
func (e *statsEnv) publish(ctx context.Context, n, lists int, pause time.Duration) error {
	for sent := 0; sent < n; {
		batch := make([]*kgo.Record, 0, 1000)
		for ; len(batch) < 1000 && sent < n; sent++ {
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
		time.Sleep(pause)
	}
	return nil
}

// fold computes every list's stats from the topic, the source of truth.
func (e *statsEnv) fold() map[string]todo.Stats {
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
		list := string(r.Key)
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

// waitCaughtUp waits until the group's positions in Redis reach the
// topic's last stable offsets, i.e. every event has been applied.
func (e *statsEnv) waitCaughtUp(group string, timeout time.Duration) {
	e.t.Helper()
	adm := kadm.NewClient(testenv.Client(e.t, e.dev.Addr))
	ends, err := adm.ListCommittedOffsets(context.Background(), eventsTopic)
	if err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		pos, err := e.rdb.HGetAll(context.Background(), "recq:consumer:"+group).Result()
		behind := 0
		ends.Each(func(o kadm.ListedOffset) {
			if n, _ := strconv.ParseInt(pos["next:"+eventsTopic+":"+strconv.Itoa(int(o.Partition))], 10, 64); n < o.Offset {
				behind++
			}
		})
		if err == nil && behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("group %s: %d partitions still behind after %v (err %v); positions %v", group, behind, timeout, err, pos)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// applied is the number of records below the group's positions in Redis.
func (e *statsEnv) applied(group string) int64 {
	pos, _ := e.rdb.HGetAll(context.Background(), "recq:consumer:"+group).Result()
	var n int64
	for f, v := range pos {
		if strings.HasPrefix(f, "next:") {
			o, _ := strconv.ParseInt(v, 10, 64)
			n += o
		}
	}
	return n
}

// check compares the read model of group with the fold, list by list and
// field by field, and checks there are no other lists.
func (e *statsEnv) check(group string, want map[string]todo.Stats) {
	e.t.Helper()
	ctx := context.Background()
	keys, err := e.rdb.Keys(ctx, group+":list:*").Result()
	if err != nil {
		e.t.Fatal(err)
	}
	if len(keys) != len(want) {
		e.t.Fatalf("%s: %d lists in Redis, %d in the topic", group, len(keys), len(want))
	}
	var events int64
	for list, w := range want {
		h, err := e.rdb.HGetAll(ctx, todo.StatsKey(group, list)).Result()
		if err != nil {
			e.t.Fatal(err)
		}
		num := func(f string) int64 { n, _ := strconv.ParseInt(h[f], 10, 64); return n }
		got := todo.Stats{List: list, Events: num("events"), Added: num("added"), Completed: num("completed"), Minutes: num("minutes"), Deleted: h["deleted"] == "1"}
		if got != w {
			e.t.Fatalf("%s: list %s: read model %+v, fold of the topic %+v", group, list, got, w)
		}
		events += w.Events
	}
	e.t.Logf("%s: %d lists, %d events: read model equals the fold", group, len(want), events)
}

// status reads a projector's /health/status.
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

// A projector building the stats of 100,000 events over 8 partitions is
// killed with SIGKILL five times at random points and restarted. At the end
// every list's stats equal the fold of the topic: nothing lost, nothing
// counted twice.
func TestProjectorKill9ExactlyOnce(t *testing.T) {
	const events, lists = 100_000, 500
	e := newStatsEnv(t, testenv.Redis(t))
	proj := e.projector(1, "crash")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	published := make(chan error, 1)
	go func() { published <- e.publish(ctx, events, lists, 10*time.Millisecond) }()
	for kill := range 5 {
		time.Sleep(time.Duration(200+rand.IntN(800)) * time.Millisecond)
		proj.Kill9()
		t.Logf("kill %d after %d of %d events applied", kill+1, e.applied("todo.stats.v1"), events)
		proj = e.projector(1, "crash")
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp("todo.stats.v1", 3*time.Minute)
	e.check("todo.stats.v1", e.fold())
}

// Two projector processes share the group; one is killed with SIGKILL and
// not restarted. The survivor takes its partitions after the session
// timeout, from the positions stored with the read model.
func TestProjectorTwoMembersOneKilled(t *testing.T) {
	e := newStatsEnv(t, testenv.Redis(t))
	a := e.projector(1, "a", "-session-timeout", "6s")
	e.projector(1, "b", "-session-timeout", "6s")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	published := make(chan error, 1)
	go func() { published <- e.publish(ctx, 50_000, 300, 10*time.Millisecond) }()
	time.Sleep(time.Duration(500+rand.IntN(1000)) * time.Millisecond)
	a.Kill9()
	t.Logf("member a killed after %d records applied by the group", e.applied("todo.stats.v1"))
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp("todo.stats.v1", 3*time.Minute)
	e.check("todo.stats.v1", e.fold())
}

// Redis is killed for 10 seconds mid-run and comes back with its data. The
// projector reports the failure and retries without moving any position
// past the read model, then finishes: the read model equals the fold.
func TestProjectorRedisOutage(t *testing.T) {
	e := newStatsEnv(t, testenv.RedisPersistent(t))
	httpAddr := testenv.FreeAddr(t)
	e.projector(1, "outage", "-http", httpAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	published := make(chan error, 1)
	go func() { published <- e.publish(ctx, 40_000, 200, 20*time.Millisecond) }()
	time.Sleep(500 * time.Millisecond)
	e.redis.Stop()
	outage := time.Now()
	failing := false
	for time.Since(outage) < 10*time.Second {
		for _, st := range status(t, httpAddr) {
			if st.Failing != nil && strings.Contains(st.Failing.Error, e.redis.Addr) {
				failing = true
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !failing {
		t.Fatal("during the outage /health/status never reported a failure naming the Redis address")
	}
	e.redis.Start()
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp("todo.stats.v1", 3*time.Minute)
	e.check("todo.stats.v1", e.fold())
	for _, st := range status(t, httpAddr) {
		if st.Failing != nil {
			t.Fatalf("still failing after Redis came back: %+v", st.Failing)
		}
	}
}

// Bumping the version starts a new group from the beginning under new
// keys; the old version's read model is left as it was.
func TestProjectorVersionBumpRebuilds(t *testing.T) {
	e := newStatsEnv(t, testenv.Redis(t))
	ctx := context.Background()
	if err := e.publish(ctx, 5000, 50, 0); err != nil {
		t.Fatal(err)
	}
	v1 := e.projector(1, "v1")
	e.waitCaughtUp("todo.stats.v1", time.Minute)
	if err := v1.Stop(sigterm, 30*time.Second); err != nil {
		t.Fatalf("v1 did not stop on SIGTERM: %v", err)
	}
	before := e.fold()
	if err := e.publish(ctx, 2000, 50, 0); err != nil {
		t.Fatal(err)
	}
	e.projector(2, "v2")
	e.waitCaughtUp("todo.stats.v2", time.Minute)
	e.check("todo.stats.v2", e.fold())
	e.check("todo.stats.v1", before)
}

// After Send returns, a consistent query sees the command's events at once.
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
	for i := range 10 {
		list := fmt.Sprintf("ryw-%d", i)
		if _, err := iv.Send(ctx, todo.Name, list, todo.CreateList{Name: list}); err != nil {
			t.Fatal(err)
		}
		if _, err := iv.Send(ctx, todo.Name, list, todo.AddItem{Title: "a", Minutes: 30 + i}); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post("http://"+httpAddr+"/query/GetStats?consistent=true&key="+list, "application/json",
			strings.NewReader(`{"List":"`+list+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var got todo.Stats
		if err := json.Unmarshal(body, &got); resp.StatusCode != 200 || err != nil {
			t.Fatalf("query %s: %d %s", list, resp.StatusCode, body)
		}
		if got.Events != 2 || got.Added != 1 || got.Minutes != int64(30+i) {
			t.Fatalf("consistent read right after Send: %+v, want 2 events, 1 added, %d minutes", got, 30+i)
		}
	}
}
