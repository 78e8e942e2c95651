package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/internal/fixture/todo"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

// replies reads the replies topic from the beginning until it holds a reply
// to every command id in ids, and returns them by id.
func replies(t *testing.T, addr string, ids ...string) map[string]aggregates.Reply {
	t.Helper()
	cl := testenv.Client(t, addr, kgo.ConsumeTopics(aggregates.DefaultRepliesTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := map[string]aggregates.Reply{}
	for {
		missing := 0
		for _, id := range ids {
			if _, ok := got[id]; !ok {
				missing++
			}
		}
		if missing == 0 {
			out := map[string]aggregates.Reply{}
			for _, id := range ids {
				out[id] = got[id]
			}
			return out
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no reply to %d of %d commands", missing, len(ids))
		}
		fs.EachRecord(func(r *kgo.Record) {
			var rp aggregates.Reply
			if json.Unmarshal(r.Value, &rp) == nil {
				got[string(r.Key)] = rp
			}
		})
	}
}

// kcatCommand produces one todo command with kcat, which hashes keys with
// crc32 (librdkafka's default partitioner), not murmur2 as recq does.
func kcatCommand(t *testing.T, kc, addr string, serde *schema.Serde, list, id string, cmd any) {
	t.Helper()
	val, typ, err := serde.Encode(context.Background(), aggregates.CommandsTopic(todo.Name), cmd)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "command")
	if err := os.WriteFile(file, val, 0o644); err != nil {
		t.Fatal(err)
	}
	// A file argument is one message, whatever bytes it holds.
	res := testenv.Run(t, "", kc, "-b", addr, "-P", "-t", aggregates.CommandsTopic(todo.Name), "-k", list,
		"-H", streams.HeaderType+"="+typ, "-H", streams.HeaderID+"="+id, "-H", streams.HeaderReplyTo+"="+aggregates.DefaultRepliesTopic, file)
	if res.Code != 0 {
		t.Fatalf("kcat produce: %d %s", res.Code, res.Stderr)
	}
}

// Commands from foreign clients (kcat's crc32 partitioner, and a producer
// choosing partitions by hand) go to partitions other than their
// aggregate's. The runner, with a cache of one aggregate so that every
// command reloads, moves them to the aggregate's partition: each aggregate
// keeps its whole history there, a second create is refused, and a command
// id sent twice has one event.
func TestAggregateCommandsFromForeignPartitioners(t *testing.T) {
	kc := kcat(t)
	dev := testenv.StartDev(t, t.TempDir())
	testenv.Start(t, "todo runner: ready", testenv.Binary(t, "github.com/recq/recq/internal/fixture/todo/runner"),
		"-brokers", dev.Addr, "-registry", dev.Registry, "-partitions", "8", "-cache-size", "1", "-instance", "foreign")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	iv := todoInvoker(ctx, t, dev)
	serde := serdeAt(t, dev.Registry)
	manual := testenv.Client(t, dev.Addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	byHand := func(list, id string, cmd any) {
		val, typ, err := serde.Encode(ctx, aggregates.CommandsTopic(todo.Name), cmd)
		if err != nil {
			t.Fatal(err)
		}
		p := (streams.KeyPartition([]byte(list), 8) + 1 + rand.Int32N(7)) % 8
		rec := &kgo.Record{Topic: aggregates.CommandsTopic(todo.Name), Partition: p, Key: []byte(list), Value: val}
		streams.Envelope{Type: typ, ID: id, ReplyTo: aggregates.DefaultRepliesTopic}.Write(rec)
		if err := manual.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	const lists = 12
	list := func(i int) string { return fmt.Sprintf("foreign-%d", i) }
	ids := func(prefix string) []string {
		var out []string
		for i := range lists {
			out = append(out, prefix+list(i))
		}
		return out
	}
	for i := range lists {
		kcatCommand(t, kc, dev.Addr, serde, list(i), "create-"+list(i), todo.CreateList{Name: list(i)})
	}
	for id, rp := range replies(t, dev.Addr, ids("create-")...) {
		if rp.Code != "" || rp.Version != 1 {
			t.Fatalf("%s: %+v", id, rp)
		}
	}
	for i := range lists {
		res, err := iv.Send(ctx, todo.Name, list(i), todo.AddItem{Title: "a"})
		if err != nil || res.Version != 2 {
			t.Fatalf("%s: the invoker's command after kcat's create: %+v %v (want version 2)", list(i), res, err)
		}
	}
	for i := range lists {
		if i%2 == 0 {
			kcatCommand(t, kc, dev.Addr, serde, list(i), "b-"+list(i), todo.AddItem{Title: "b"})
		} else {
			byHand(list(i), "b-"+list(i), todo.AddItem{Title: "b"})
		}
	}
	for id, rp := range replies(t, dev.Addr, ids("b-")...) {
		if rp.Code != "" || rp.Version != 3 {
			t.Fatalf("%s: %+v", id, rp)
		}
	}
	for i := range lists {
		byHand(list(i), "create-again-"+list(i), todo.CreateList{Name: "again"})
		kcatCommand(t, kc, dev.Addr, serde, list(i), "b-"+list(i), todo.AddItem{Title: "b"}) // the same id again
	}
	for id, rp := range replies(t, dev.Addr, ids("create-again-")...) {
		if rp.Code != "rejected" || rp.Error != todo.ErrAlreadyExists.Error() {
			t.Fatalf("%s: a second create must see the first: %+v", id, rp)
		}
	}
	for i := range lists {
		res, err := iv.Send(ctx, todo.Name, list(i), todo.AddItem{Title: "c"})
		if err != nil || res.Version != 4 {
			t.Fatalf("%s: last command: %+v %v (want version 4: create, a, b, c)", list(i), res, err)
		}
	}

	// The foreign clients did put commands elsewhere: the test tests something.
	away := 0
	for _, r := range testenv.ReadTopic(t, dev.Addr, aggregates.CommandsTopic(todo.Name)) {
		if r.Partition != streams.KeyPartition(r.Key, 8) {
			away++
		}
	}
	if away < lists {
		t.Fatalf("only %d commands landed away from their aggregate's partition", away)
	}
	versions, causes := map[string]int64{}, map[string]int{}
	for _, e := range testenv.ReadTopic(t, dev.Addr, aggregates.EventsTopic(todo.Name)) {
		env, _ := streams.ReadEnvelope(e)
		if home := streams.KeyPartition(e.Key, 8); e.Partition != home {
			t.Errorf("%s version %d in partition %d, its home is %d", env.AggregateID, env.AggregateVersion, e.Partition, home)
		}
		if env.AggregateVersion != versions[env.AggregateID]+1 {
			t.Errorf("%s: version %d follows %d", env.AggregateID, env.AggregateVersion, versions[env.AggregateID])
		}
		versions[env.AggregateID] = env.AggregateVersion
		causes[env.CausationID]++
	}
	for id, n := range causes {
		if n != 1 {
			t.Errorf("command %s has %d events, want 1", id, n)
		}
	}
	if len(causes) != 4*lists {
		t.Fatalf("%d commands have events, want %d", len(causes), 4*lists)
	}
}

// An events topic made before recq kept events forever (here: with the
// broker's default retention) stops the runner with the command that fixes
// it; `recq topic describe` shows the retention, `recq topic alter` fixes
// it, and the runner starts.
func TestAggregateRunnerRefusesFiniteRetention(t *testing.T) {
	dev := testenv.StartDev(t, t.TempDir())
	recq(t, dev.Addr, "", "topic", "create", aggregates.CommandsTopic(todo.Name), "--partitions", "4")
	recq(t, dev.Addr, "", "topic", "create", aggregates.EventsTopic(todo.Name), "--partitions", "4")
	if out := recq(t, dev.Addr, "", "topic", "describe", aggregates.EventsTopic(todo.Name)).Stdout; !strings.Contains(out, "retention: time 168h0m0s, size unlimited, cleanup.policy=delete (records are deleted by age, size or compaction)") {
		t.Fatalf("describe does not show the retention:\n%s", out)
	}
	bin := testenv.Binary(t, "github.com/recq/recq/internal/fixture/todo/runner")
	args := []string{"-brokers", dev.Addr, "-registry", dev.Registry, "-partitions", "4"}
	p := testenv.Start(t, "", bin, args...)
	if err := p.Wait(30 * time.Second); err == nil || !strings.Contains(p.Output(), "recq topic alter todo.events --config retention.ms=-1 --config retention.bytes=-1 --config cleanup.policy=delete") {
		t.Fatalf("runner on a finite events topic: exit %v, output:\n%s", err, p.Output())
	}
	out := recq(t, dev.Addr, "", "topic", "alter", aggregates.EventsTopic(todo.Name),
		"--config", "retention.ms=-1", "--config", "retention.bytes=-1", "--config", "cleanup.policy=delete").Stdout
	if !strings.Contains(out, "retention: time unlimited, size unlimited, cleanup.policy=delete") {
		t.Fatalf("alter: %s", out)
	}
	if out := recq(t, dev.Addr, "", "topic", "describe", aggregates.EventsTopic(todo.Name)).Stdout; !strings.Contains(out, "(every record is kept)") {
		t.Fatalf("describe after alter:\n%s", out)
	}
	testenv.Start(t, "todo runner: ready", bin, args...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if res, err := todoInvoker(ctx, t, dev).Send(ctx, todo.Name, "l", todo.CreateList{Name: "l"}); err != nil || res.Version != 1 {
		t.Fatalf("after alter: %+v %v", res, err)
	}
}
