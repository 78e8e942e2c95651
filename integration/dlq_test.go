package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/internal/fixture/todo"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

// publishList writes events of one list, in order.
func (e *statsEnv) publishList(ctx context.Context, list string, events ...any) {
	e.t.Helper()
	recs := make([]*kgo.Record, len(events))
	for i, v := range events {
		val, typ, err := e.serde.Encode(ctx, eventsTopic, v)
		if err != nil {
			e.t.Fatal(err)
		}
		recs[i] = &kgo.Record{Topic: eventsTopic, Key: []byte(list), Value: val}
		streams.Envelope{Type: typ, AggregateID: list}.Write(recs[i])
	}
	if err := e.pub.Publish(ctx, recs...); err != nil {
		e.t.Fatal(err)
	}
	e.published.Add(int64(len(recs)))
}

// dlqItem is a line of `recq dlq list -o json`.
type dlqItem struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	Reason       string `json:"reason"`
	Error        string `json:"error"`
	Attempts     int    `json:"attempts"`
	Generation   int    `json:"generation"`
	Key          string `json:"key"`
	ParkedBehind string `json:"parked_behind"`
}

// dlqList runs `recq dlq list GROUP -o json` with args.
func (e *statsEnv) dlqList(group string, args ...string) []dlqItem {
	e.t.Helper()
	out := recq(e.t, e.dev.Addr, "", append([]string{"dlq", "list", group, "-o", "json"}, args...)...)
	var items []dlqItem
	for _, l := range lines(out.Stdout) {
		var it dlqItem
		if err := json.Unmarshal([]byte(l), &it); err != nil {
			e.t.Fatalf("dlq list line %q: %v", l, err)
		}
		items = append(items, it)
	}
	return items
}

func byKey(items []dlqItem, key string) []dlqItem {
	var out []dlqItem
	for _, it := range items {
		if it.Key == key {
			out = append(out, it)
		}
	}
	return out
}

// The stats projector meets a foreign client's garbage (kcat, claiming to
// be an ItemAdded) and an item with a negative estimate, which it refuses
// for good; the list's later events park behind it. Through the built
// recq binary: list shows them with their reasons, show decodes the
// payload through the registry, a redrive that fails again brings them
// back with their attempts counted on, discard records who and why, and
// the events parked behind the discarded one are released and applied:
// the read model ends equal to the fold of the topic without the
// discarded events.
func TestDeadEventsThroughTheCLI(t *testing.T) {
	const group = "todo.stats.v1"
	kc := kcat(t)
	e := newStatsEnv(t, testenv.Redis(t))
	ctx := context.Background()
	if err := e.publish(ctx, 2000, 40, 1000, 0); err != nil {
		t.Fatal(err)
	}
	added, err := e.serde.TypeName(todo.ItemAdded{})
	if err != nil {
		t.Fatal(err)
	}
	res := testenv.Run(t, "this is not Avro\n", kc, "-b", e.dev.Addr, "-P", "-t", eventsTopic, "-k", "list-poison",
		"-H", "recq-type="+added, "-H", "recq-aggregate-id=list-poison")
	if res.Code != 0 {
		t.Fatalf("kcat produce: %d %s", res.Code, res.Stderr)
	}
	e.publishList(ctx, "list-neg",
		todo.ListCreated{Name: "neg"}, todo.ItemAdded{Title: "bad", Minutes: -5}, todo.ItemAdded{Title: "a", Minutes: 10},
		todo.ItemCompleted{Title: "a"}, todo.ItemAdded{Title: "b", Minutes: 20}, todo.ItemCompleted{Title: "b"}, todo.ListDeleted{})
	if err := e.publish(ctx, 1000, 40, 1000, 0); err != nil {
		t.Fatal(err)
	}
	proj := e.projector(1, "cli")
	dumpOnFailure(t, map[string]*testenv.Proc{"projector": proj})
	e.waitCaughtUp(group, time.Minute)

	all := e.dlqList(group, "--status", "all")
	poison := byKey(all, "list-poison")
	if len(poison) != 1 || poison[0].Reason != "undecodable" || !strings.Contains(poison[0].Error, "not Confluent-framed") {
		t.Fatalf("kcat's record: %+v, want one undecodable dead event", poison)
	}
	neg := byKey(all, "list-neg")
	if len(neg) != 6 || neg[0].Reason != "handler" || neg[0].Attempts != 3 || !strings.Contains(neg[0].Error, "estimate of -5 minutes") {
		t.Fatalf("list-neg: %+v, want its negative item dead after 3 attempts and its 5 later events parked", neg)
	}
	head := neg[0].ID
	for _, it := range neg[1:] {
		if it.Reason != "parked" || it.ParkedBehind != head || it.Status != "pending" {
			t.Fatalf("list-neg: %+v, want parked behind %s", it, head)
		}
	}
	if len(all) != 7 {
		t.Fatalf("%d dead events, want 7: %+v", len(all), all)
	}

	show := recq(t, e.dev.Addr, "", "--registry", e.dev.Registry, "dlq", "show", group, head).Stdout
	for _, want := range []string{`"minutes":-5`, `"title":"bad"`, "estimate of -5 minutes", "reason", "handler", "attempts"} {
		if !strings.Contains(show, want) {
			t.Fatalf("dlq show lacks %q:\n%s", want, show)
		}
	}

	// Still refused: back in the queue, one generation on.
	recq(t, e.dev.Addr, "", "dlq", "redrive", group, "--key", "list-neg", "--reason", "try again", "--who", "alice")
	testenv.WaitFor(t, "the redriven events back in the queue", time.Minute, func() bool {
		neg = byKey(e.dlqList(group, "--status", "all"), "list-neg")
		for _, it := range neg {
			if it.Status != "pending" || it.Generation != 2 {
				return false
			}
		}
		return true
	})
	if neg[0].Attempts != 6 {
		t.Fatalf("the head failed again: %d attempts recorded, want 6 (3 + 3)", neg[0].Attempts)
	}

	// Decide: discard the bad item (the projector then releases the events
	// parked behind it), discard the garbage.
	out := recq(t, e.dev.Addr, "", "dlq", "discard", group, head, "--reason", "negative estimate from the old writer", "--who", "bob")
	if !strings.Contains(out.Stdout, "1 event discarded") {
		t.Fatalf("discard:\n%s", out.Stdout)
	}
	// (By key: --all could race with the projector releasing list-neg.)
	recq(t, e.dev.Addr, "", "dlq", "discard", group, "--key", "list-poison", "--reason", "garbage from kcat", "--who", "bob")
	testenv.WaitFor(t, "list-neg's parked events released and handled", time.Minute, func() bool {
		for _, it := range byKey(e.dlqList(group, "--status", "all"), "list-neg")[1:] {
			if it.Status != "redriven" {
				return false
			}
		}
		return true
	})
	if pending := e.dlqList(group); len(pending) != 0 {
		t.Fatalf("still pending: %+v", pending)
	}
	if out := recq(t, e.dev.Addr, "", "dlq", "list", group).Stdout; !strings.Contains(out, "0 dead events") {
		t.Fatalf("dlq list:\n%s", out)
	}
	var shown struct {
		Status  string              `json:"status"`
		Actions []deadletter.Action `json:"actions"`
	}
	if err := json.Unmarshal([]byte(recq(t, e.dev.Addr, "", "dlq", "show", group, head, "-o", "json").Stdout), &shown); err != nil {
		t.Fatal(err)
	}
	if n := len(shown.Actions); shown.Status != "discarded" || n != 2 || shown.Actions[0].Who != "alice" || shown.Actions[0].Why != "try again" ||
		shown.Actions[1].Who != "bob" || shown.Actions[1].Action != deadletter.ActionDiscard {
		t.Fatalf("the head's history: %+v", shown)
	}
	e.check(group, e.foldWithout(map[string]bool{head: true, poison[0].ID: true}))

	// Mistakes get a clear answer.
	res = testenv.Run(t, "", testenv.Recq(t), "--brokers", e.dev.Addr, "dlq", "list", "no.such.v1")
	if res.Code != 1 || !strings.Contains(res.Stderr, "has no dead event queue") {
		t.Fatalf("dlq list of an unknown group: %d %s", res.Code, res.Stderr)
	}
	res = testenv.Run(t, "", testenv.Recq(t), "--brokers", e.dev.Addr, "dlq", "redrive", group, head)
	if res.Code != 1 || !strings.Contains(res.Stderr, "is discarded, not pending") {
		t.Fatalf("redrive of a discarded event: %d %s", res.Code, res.Stderr)
	}
	res = testenv.Run(t, "", testenv.Recq(t), "--brokers", e.dev.Addr, "dlq", "discard", group, "--all")
	if res.Code != 2 || !strings.Contains(res.Stderr, "--reason is required") {
		t.Fatalf("discard without a reason: %d %s", res.Code, res.Stderr)
	}
	res = testenv.Run(t, "", testenv.Recq(t), "--brokers", e.dev.Addr, "dlq", "discard", group, "--all", "--reason", "x")
	if res.Code != 1 || !strings.Contains(res.Stderr, "no pending dead events") {
		t.Fatalf("discard --all with nothing pending: %d %s", res.Code, res.Stderr)
	}
	res = testenv.Run(t, "", testenv.Recq(t), "--brokers", e.dev.Addr, "dlq", "redrive", group, "list-neg")
	if res.Code != 2 || !strings.Contains(res.Stderr, "want TOPIC/PARTITION/OFFSET") {
		t.Fatalf("redrive of a key given as an id: %d %s", res.Code, res.Stderr)
	}
	res = testenv.Run(t, "", testenv.Recq(t), "--brokers", testenv.FreeAddr(t), "dlq", "list", group)
	if res.Code != 1 || !strings.Contains(res.Stderr, "cannot reach Kafka") {
		t.Fatalf("dlq list with no broker: %d %s", res.Code, res.Stderr)
	}
}

// The projector kills itself with SIGKILL right after writing a dead (or
// parked) event, before the batch holding it commits: after its first,
// second, then third new one.
// After the restarts every dead event is in the queue exactly once, none
// missing, and the read model equals the fold without them.
func TestDeadEventExactlyOnceAcrossKill9(t *testing.T) {
	const group = "todo.stats.v1"
	e := newStatsEnv(t, testenv.Redis(t))
	ctx := context.Background()
	for i, list := range []string{"neg-a", "neg-b", "neg-c"} {
		if err := e.publish(ctx, 1000, 30, 1000, 0); err != nil {
			t.Fatal(err)
		}
		e.publishNeg(ctx, list, -1-i)
	}
	if err := e.publish(ctx, 1000, 30, 1000, 0); err != nil {
		t.Fatal(err)
	}
	want := e.deadNeg()
	args := []string{"-brokers", e.dev.Addr, "-registry", e.dev.Registry, "-redis", e.redis.Addr, "-instance", "crash"}
	for kill := 1; kill <= 3; kill++ {
		p := testenv.StartEnv(t, []string{fmt.Sprintf("RECQ_CRASH_AFTER_DEAD=%d", kill)}, "todo projector: running", e.bin, args...)
		err := p.Wait(time.Minute)
		if err == nil || !strings.Contains(err.Error(), "killed") || !strings.Contains(p.Output(), "killing itself after writing dead event") {
			t.Fatalf("start %d: want the projector killed after a dead event, got %v:\n%s", kill, err, p.Output())
		}
		t.Logf("kill %d: %s", kill, lines(p.Output())[len(lines(p.Output()))-1])
	}
	p := testenv.Start(t, "todo projector: running", e.bin, args...)
	dumpOnFailure(t, map[string]*testenv.Proc{"projector": p})
	e.waitCaughtUp(group, time.Minute)

	e.queueOnce(group, want)
	t.Logf("%d dead events, each in the queue once, after 3 kills", len(want))
	e.check(group, e.foldWithout(want))
}

// publishNeg writes a list whose second event, an item with a negative
// estimate, the projector refuses: it and the list's later events are
// dead (parked).
func (e *statsEnv) publishNeg(ctx context.Context, list string, minutes int) {
	e.t.Helper()
	e.publishList(ctx, list, todo.ListCreated{Name: list}, todo.ItemAdded{Title: "bad", Minutes: minutes},
		todo.ItemAdded{Title: "ok", Minutes: 5}, todo.ItemCompleted{Title: "ok"})
}

// deadNeg is what should be dead in the topic: every event of the lists
// publishNeg wrote (keys "neg-*") but their first.
func (e *statsEnv) deadNeg() map[string]bool {
	e.t.Helper()
	created, err := e.serde.TypeName(todo.ListCreated{})
	if err != nil {
		e.t.Fatal(err)
	}
	want := map[string]bool{}
	for _, r := range testenv.ReadTopic(e.t, e.dev.Addr, eventsTopic) {
		if typ, _ := streams.Header(r, streams.HeaderType); strings.HasPrefix(string(r.Key), "neg-") && typ != created {
			want[deadletter.ID(r.Topic, r.Partition, r.Offset)] = true
		}
	}
	return want
}

// queueOnce checks that group's dead event queue holds each of want
// exactly once, and nothing else.
func (e *statsEnv) queueOnce(group string, want map[string]bool) {
	e.t.Helper()
	copies := map[string]int{}
	for _, r := range testenv.ReadTopic(e.t, e.dev.Addr, deadletter.Topic(group)) {
		id, _ := streams.Header(r, deadletter.HeaderID)
		copies[id]++
	}
	for id := range want {
		if copies[id] != 1 {
			e.t.Errorf("%s: %d copies in the queue, want 1", id, copies[id])
		}
	}
	for id, n := range copies {
		if !want[id] {
			e.t.Errorf("%s: in the queue (%d copies), but it is not dead", id, n)
		}
	}
	if e.t.Failed() {
		e.t.FailNow()
	}
}
