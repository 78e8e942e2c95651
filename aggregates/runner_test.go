package aggregates_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/internal/broker"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

// platform starts the real parts a runner needs: the broker over TCP and a
// schema registry over HTTP, and returns the broker address and a serde.
func platform(t testing.TB) (string, *schema.Serde) {
	t.Helper()
	return testenv.Kafka(t), testenv.Serde(t)
}

// runTodo starts a runner of the todo aggregate and an invoker.
func runTodo(t testing.TB, addr string, serde *schema.Serde) *aggregates.Invoker {
	return runTodoWith(t, addr, serde)
}

func runTodoWith(t testing.TB, addr string, serde *schema.Serde, opts ...aggregates.RunnerOption) *aggregates.Invoker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := aggregates.EnsureTopics(ctx, streams.NewAdmin(testenv.Client(t, addr)), "todo", 4); err != nil {
		t.Fatal(err)
	}
	startRunner(t, addr, serde, opts...)
	iv, err := aggregates.NewInvoker(ctx, []string{addr}, serde)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(iv.Close)
	return iv
}

// startRunner runs a todo runner until the test's cleanup.
func startRunner(t testing.TB, addr string, serde *schema.Serde, opts ...aggregates.RunnerOption) {
	t.Helper()
	r, err := aggregates.NewRunner(todo(), serde, []string{addr}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	testenv.RunUntilCleanup(t, r.Run)
}

func TestRunnerSendReplyAndEvents(t *testing.T) {
	addr, serde := platform(t)
	iv := runTodo(t, addr, serde)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	if _, err := iv.Send(ctx, "todo", "list-1", AddItem{Title: "milk"}); !errors.Is(err, aggregates.ErrNotFound) {
		t.Fatalf("command on a missing aggregate: want ErrNotFound, got %v", err)
	}
	res, err := iv.Send(ctx, "todo", "list-1", CreateList{Name: "groceries"})
	if err != nil || res.Version != 1 || res.Events != 1 {
		t.Fatalf("create: %+v %v", res, err)
	}
	for i, title := range []string{"milk", "eggs", "bread"} {
		res, err := iv.Send(ctx, "todo", "list-1", AddItem{Title: title})
		if err != nil || res.Version != int64(i+2) {
			t.Fatalf("add %s: %+v %v", title, res, err)
		}
	}
	// A handler's refusal crosses processes as its message.
	_, err = iv.Send(ctx, "todo", "list-1", AddItem{Title: "milk"})
	var rej *aggregates.RejectedError
	if !errors.As(err, &rej) || rej.Err.Error() != errDuplicate.Error() {
		t.Fatalf("duplicate item: want the handler's rejection, got %v", err)
	}
	_, err = iv.Send(ctx, "todo", "list-1", AddItem{Title: "jam"}, aggregates.ExpectVersion(2))
	if !errors.Is(err, aggregates.ErrConflict) || aggregates.Code(err) != "conflict" {
		t.Fatalf("stale expected version: want ErrConflict (code conflict), got %v (%q)", err, aggregates.Code(err))
	}
	if n := strings.Count(err.Error(), aggregates.ErrConflict.Error()); n != 1 {
		t.Fatalf("the conflict's message says %q %d times: %v", aggregates.ErrConflict, n, err)
	}
	if aggregates.Code(errors.New("no reply")) != "" || aggregates.Code(&aggregates.RejectedError{Err: errDuplicate}) != "rejected" {
		t.Fatal("Code of an error that is no answer, or of a handler's refusal")
	}
	// The same command id twice: handled once.
	first, err := iv.Send(ctx, "todo", "list-1", AddItem{Title: "tea"}, aggregates.WithCommandID("cmd-tea"))
	if err != nil || first.Duplicate {
		t.Fatalf("first send: %+v %v", first, err)
	}
	again, err := iv.Send(ctx, "todo", "list-1", AddItem{Title: "tea"}, aggregates.WithCommandID("cmd-tea"))
	if err != nil || !again.Duplicate || again.Version != first.Version {
		t.Fatalf("resend of the same command id: %+v %v (first %+v)", again, err, first)
	}
	// Resent after the aggregate moved on, it is answered with the version
	// it brought the aggregate to, not today's.
	if _, err := iv.Send(ctx, "todo", "list-1", AddItem{Title: "jam"}); err != nil {
		t.Fatal(err)
	}
	late, err := iv.Send(ctx, "todo", "list-1", AddItem{Title: "tea"}, aggregates.WithCommandID("cmd-tea"))
	if err != nil || !late.Duplicate || late.Version != first.Version {
		t.Fatalf("resend after a later command: %+v %v, want a duplicate at version %d", late, err, first.Version)
	}

	// The event topic holds exactly the accepted events, versions 1..5, with
	// the envelope: aggregate id, version, causation = the command id.
	got := testenv.ReadTopic(t, addr, aggregates.EventsTopic("todo"))
	if len(got) != 6 {
		t.Fatalf("%d events, want 6 (create, 3 adds, tea, jam)", len(got))
	}
	for i, r := range got {
		env, _ := streams.ReadEnvelope(r)
		if env.AggregateID != "list-1" || env.AggregateVersion != int64(i+1) || env.CausationID == "" || env.ID == "" {
			t.Fatalf("event %d envelope: %+v", i, env)
		}
	}
	if env, _ := streams.ReadEnvelope(got[4]); env.CausationID != "cmd-tea" || env.Type != "aggregates_test.ItemAdded" {
		t.Fatalf("last event: %+v", env)
	}
}

// A second runner process (here: a fresh runner) rebuilds an aggregate from
// its events: its state, its version and the command ids it has handled.
func TestRunnerRebuildsFromEvents(t *testing.T) {
	addr, serde := platform(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The subtest's cleanup stops the first runner before the second starts.
	t.Run("first runner", func(t *testing.T) {
		iv := runTodo(t, addr, serde)
		if _, err := iv.Send(ctx, "todo", "l", CreateList{Name: "x"}, aggregates.WithCommandID("c0")); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if _, err := iv.Send(ctx, "todo", "l", AddItem{Title: strconv.Itoa(i)}, aggregates.WithCommandID("a"+strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
		}
	})
	iv := runTodo(t, addr, serde)
	res, err := iv.Send(ctx, "todo", "l", AddItem{Title: "3"})
	if err != nil || res.Version != 5 {
		t.Fatalf("after restart: %+v %v, want version 5", res, err)
	}
	if _, err := iv.Send(ctx, "todo", "l", AddItem{Title: "1"}); err == nil {
		t.Fatal("the rebuilt state lost item 1")
	}
	dup, err := iv.Send(ctx, "todo", "l", AddItem{Title: "2"}, aggregates.WithCommandID("a2"))
	if err != nil || !dup.Duplicate || dup.Version != 4 {
		t.Fatalf("a command id handled before the restart must be recognised, with the version it made (4): %+v %v", dup, err)
	}
}

// Two runners in one group share the partitions; when one stops, the other
// takes its aggregates over with their state rebuilt from the events, and
// keeps serving its own.
func TestTwoRunnersFailover(t *testing.T) {
	addr, serde := platform(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	iv := runTodo(t, addr, serde) // runner A, for the whole test
	t.Run("while B runs too", func(t *testing.T) {
		startRunner(t, addr, serde) // runner B, stopped when this subtest ends
		adm := streams.NewAdmin(testenv.Client(t, addr))
		for {
			desc, err := adm.DescribeGroup(ctx, "todo.runner")
			if err == nil && len(desc.Members) == 2 && desc.State == "Stable" {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("the second runner never joined: %+v %v", desc, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		for i := range 16 {
			id := "list-" + strconv.Itoa(i)
			if _, err := iv.Send(ctx, "todo", id, CreateList{Name: id}); err != nil {
				t.Fatal(err)
			}
			if _, err := iv.Send(ctx, "todo", id, AddItem{Title: "first"}); err != nil {
				t.Fatal(err)
			}
		}
	})
	for i := range 16 {
		id := "list-" + strconv.Itoa(i)
		res, err := iv.Send(ctx, "todo", id, AddItem{Title: "second"})
		if err != nil || res.Version != 3 {
			t.Fatalf("%s after B stopped: %+v %v (want version 3)", id, res, err)
		}
		if _, err := iv.Send(ctx, "todo", id, AddItem{Title: "first"}); err == nil {
			t.Fatalf("%s: runner A lost the first item", id)
		}
	}
}

// SendAsync returns at once; many commands in flight at once all get their
// own answers.
func TestSendAsyncManyInFlight(t *testing.T) {
	addr, serde := platform(t)
	iv := runTodo(t, addr, serde)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := iv.Send(ctx, "todo", "l", CreateList{Name: "l"}); err != nil {
		t.Fatal(err)
	}
	var outs []<-chan aggregates.Outcome
	for i := range 50 {
		outs = append(outs, iv.SendAsync(ctx, "todo", "l", AddItem{Title: strconv.Itoa(i)}))
	}
	versions := map[int64]bool{}
	for i, ch := range outs {
		o := <-ch
		if o.Err != nil || o.CommandID == "" {
			t.Fatalf("command %d: %+v", i, o)
		}
		versions[o.Version] = true
	}
	if len(versions) != 50 {
		t.Fatalf("50 accepted commands must leave 50 distinct versions, got %d", len(versions))
	}
	if o := <-iv.SendAsync(ctx, "todo", "missing", AddItem{Title: "x"}); !errors.Is(o.Err, aggregates.ErrNotFound) {
		t.Fatalf("async rejection: %+v", o)
	}
	short, stop := context.WithTimeout(ctx, 200*time.Millisecond)
	defer stop()
	if o := <-iv.SendAsync(short, "nobody", "x", AddItem{Title: "x"}); o.Err == nil {
		t.Fatal("a command to an aggregate nobody runs must time out or fail")
	}
}

// A cache of two aggregates over twelve: every command still sees its
// aggregate's full state, reloaded from the events when it was evicted.
func TestRunnerSmallCacheReloads(t *testing.T) {
	addr, serde := platform(t)
	iv := runTodoWith(t, addr, serde, aggregates.WithCacheSize(2))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for round := range 3 {
		for i := range 12 {
			id := "list-" + strconv.Itoa(i)
			var cmd any = AddItem{Title: strconv.Itoa(round)}
			if round == 0 {
				cmd = CreateList{Name: id}
			}
			res, err := iv.Send(ctx, "todo", id, cmd)
			if err != nil || res.Version != int64(round+1) {
				t.Fatalf("%s round %d: %+v %v", id, round, res, err)
			}
		}
	}
}

// A command that cannot be read (not Avro; a malformed expected version) is
// answered and kept in the runner's dead event queue, once, in the
// transaction of its answer; the commands after it are handled.
func TestRunnerUndecodableCommandsAreDead(t *testing.T) {
	addr, serde := platform(t)
	iv := runTodo(t, addr, serde)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := iv.Send(ctx, "todo", "list-1", CreateList{Name: "groceries"}); err != nil {
		t.Fatal(err)
	}
	addType, err := serde.TypeName(AddItem{})
	if err != nil {
		t.Fatal(err)
	}
	garbage := &kgo.Record{Topic: aggregates.CommandsTopic("todo"), Key: []byte("list-1"), Value: []byte("not avro")}
	streams.Envelope{Type: addType}.Write(garbage)
	val, _, err := serde.Encode(ctx, aggregates.CommandsTopic("todo"), AddItem{Title: "x"})
	if err != nil {
		t.Fatal(err)
	}
	badVersion := &kgo.Record{Topic: aggregates.CommandsTopic("todo"), Key: []byte("list-1"), Value: val,
		Headers: []kgo.RecordHeader{{Key: aggregates.HeaderExpectedVersion, Value: []byte("seven")}}}
	streams.Envelope{Type: addType}.Write(badVersion)
	if err := testenv.Client(t, addr).ProduceSync(ctx, garbage, badVersion).FirstErr(); err != nil {
		t.Fatal(err)
	}
	res, err := iv.Send(ctx, "todo", "list-1", AddItem{Title: "milk"})
	if err != nil || res.Version != 2 {
		t.Fatalf("the command after the bad ones: %+v %v", res, err)
	}
	idx, err := deadletter.Load(ctx, []string{addr}, "todo.runner")
	if err != nil {
		t.Fatal(err)
	}
	items := idx.List(deadletter.Filter{})
	if len(items) != 2 {
		t.Fatalf("%d dead commands, want 2: %+v", len(items), items)
	}
	for i, want := range []string{"not Confluent-framed", `header recq-expected-version="seven" is not a version`} {
		e := items[i].Entry
		if e.Reason != deadletter.ReasonUndecodable || !strings.Contains(e.Error, want) || e.Handler != addType || e.Attempts != 1 {
			t.Errorf("dead command %d: %+v, want undecodable saying %q", i, e, want)
		}
	}
	if n := len(testenv.ReadTopic(t, addr, deadletter.Topic("todo.runner"))); n != 2 {
		t.Fatalf("%d records in the queue, want 2", n)
	}
	if _, err := deadletter.Redrive(ctx, []string{addr}, "todo.runner", deadletter.Selection{All: true}, deadletter.Decision{Who: "test"}); !errors.Is(err, deadletter.ErrNoRedrive) {
		t.Fatalf("redrive of a dead command: %v, want ErrNoRedrive", err)
	}
}

// A Send whose command the broker never acknowledged says so (not "no
// reply"), and how to find out whether it was handled.
func TestInvokerSaysWhenTheBrokerNeverAcknowledged(t *testing.T) {
	b, err := broker.Start(broker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	serde := testenv.Serde(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := aggregates.EnsureTopics(ctx, streams.NewAdmin(testenv.Client(t, b.Addr())), "todo", 1); err != nil {
		t.Fatal(err)
	}
	iv, err := aggregates.NewInvoker(ctx, []string{b.Addr()}, serde)
	if err != nil {
		t.Fatal(err)
	}
	defer iv.Close()
	b.Close()
	short, stop := context.WithTimeout(ctx, time.Second)
	defer stop()
	_, err = iv.Send(short, "todo", "l", CreateList{Name: "l"}, aggregates.WithCommandID("c-1"))
	if err == nil || !strings.Contains(err.Error(), "the broker did not acknowledge command c-1") || !strings.Contains(err.Error(), `send again with WithCommandID("c-1")`) {
		t.Fatalf("send to a stopped broker: %v", err)
	}
}

// An invoker of its own replies topic gets its answers there.
func TestInvokerOwnRepliesTopic(t *testing.T) {
	addr, serde := platform(t)
	runTodo(t, addr, serde)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iv, err := aggregates.NewInvoker(ctx, []string{addr}, serde, aggregates.WithRepliesTopic("billing.replies"), aggregates.WithReplyPartitions(2))
	if err != nil {
		t.Fatal(err)
	}
	defer iv.Close()
	if res, err := iv.Send(ctx, "todo", "l", CreateList{Name: "l"}); err != nil || res.Version != 1 {
		t.Fatalf("send: %+v %v", res, err)
	}
	info, err := streams.NewAdmin(testenv.Client(t, addr)).DescribeTopic(ctx, "billing.replies")
	if err != nil || len(info.Partitions) != 2 {
		t.Fatalf("billing.replies: %+v %v, want 2 partitions", info.Partitions, err)
	}
	if n := len(testenv.ReadTopic(t, addr, "billing.replies")); n != 1 {
		t.Fatalf("billing.replies holds %d replies, want the one", n)
	}
	if _, err := aggregates.NewInvoker(ctx, []string{addr}, serde, aggregates.WithReplyPartitions(0)); err == nil {
		t.Fatal("0 reply partitions accepted")
	}
}
