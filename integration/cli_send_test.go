package integration

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

// counter is the tiny aggregate `recq send` is tested against, run in the
// test process: Add creates it or adds to it, Reset needs it to exist.
type counterState struct{ Total int64 }

type (
	counterAdd     struct{ N int64 }
	counterReset   struct{}
	counterAdded   struct{ N int64 }
	counterCleared struct{}
)

func (counterAdd) AvroName() string     { return "counter.Add" }
func (counterReset) AvroName() string   { return "counter.Reset" }
func (counterAdded) AvroName() string   { return "counter.Added" }
func (counterCleared) AvroName() string { return "counter.Cleared" }

func counterAggregate(name string) *aggregates.Aggregate[counterState] {
	a := aggregates.New[counterState](name)
	aggregates.Create(a, func(_ context.Context, c counterAdd, _ *counterState) ([]any, error) {
		if c.N <= 0 {
			return nil, errors.New("n must be positive")
		}
		return []any{counterAdded(c)}, nil
	})
	aggregates.Handle(a, func(context.Context, counterReset, *counterState) ([]any, error) {
		return []any{counterCleared{}}, nil
	})
	aggregates.Apply(a, func(s *counterState, e counterAdded) { s.Total += e.N })
	aggregates.Apply(a, func(s *counterState, _ counterCleared) { s.Total = 0 })
	return a
}

// counterTopics creates an aggregate's topics and registers its command
// schemas, as a service does when it starts.
func counterTopics(ctx context.Context, t *testing.T, dev *testenv.Dev, name string) *schema.Serde {
	t.Helper()
	if err := aggregates.EnsureTopics(ctx, streams.NewAdmin(testenv.Client(t, dev.Addr)), name, 2); err != nil {
		t.Fatal(err)
	}
	serde := serdeAt(t, dev.Registry)
	if err := serde.Register(ctx, aggregates.CommandsTopic(name), counterAdd{}, counterReset{}); err != nil {
		t.Fatal(err)
	}
	return serde
}

// recq send against a runner: the reply (version, events, duplicate), the
// rejections with exit 1, JSON from the argument or stdin, and what a
// newcomer gets wrong (the type name, the fields, the aggregate's name).
func TestCLISend(t *testing.T) {
	dev := testenv.StartDev(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	serde := counterTopics(ctx, t, dev, "counter")
	var log testenv.LogBuffer
	r, err := aggregates.NewRunner(counterAggregate("counter"), serde, []string{dev.Addr}, aggregates.WithLogger(log.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	testenv.RunUntilCleanup(t, r.Run)
	testenv.WaitFor(t, "counter runner ready", time.Minute, r.Ready)
	counterTopics(ctx, t, dev, "idle") // topics and schemas, no runner

	bin := testenv.Recq(t)
	send := func(stdin string, args ...string) testenv.Result {
		t.Helper()
		return testenv.Run(t, stdin, bin, append([]string{"--brokers", dev.Addr, "--registry", dev.Registry, "send"}, args...)...)
	}
	ok := func(res testenv.Result) string {
		t.Helper()
		if res.Code != 0 {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", res.Code, res.Stdout, res.Stderr)
		}
		return res.Stdout
	}
	reply := func(out string) (rp struct {
		CommandID string `json:"command_id"`
		Version   int64  `json:"version"`
		Events    int    `json:"events"`
		Duplicate bool   `json:"duplicate"`
		Code      string `json:"code"`
		Error     string `json:"error"`
	}) {
		t.Helper()
		if err := json.Unmarshal([]byte(out), &rp); err != nil {
			t.Fatalf("not a JSON reply: %v\n%s", err, out)
		}
		return rp
	}

	if out := ok(send("", "counter", "c-1", "counter.Add", `{"n":2}`)); !strings.HasPrefix(out, "accepted: counter c-1 is at version 1 (1 event); command id ") {
		t.Fatalf("first send: %q", out)
	}
	// From stdin, with a command id, as JSON.
	rp := reply(ok(send(`{"n":3}`+"\n", "counter", "c-1", "counter.Add", "--command-id", "add-3", "-o", "json")))
	if rp.CommandID != "add-3" || rp.Version != 2 || rp.Events != 1 || rp.Duplicate {
		t.Fatalf("send from stdin: %+v", rp)
	}
	// The same command id again: handled once.
	if out := ok(send(`{"n":3}`, "counter", "c-1", "counter.Add", "-", "--command-id", "add-3")); out != "duplicate: command add-3 was handled before; counter c-1 is at version 2, nothing new was written\n" {
		t.Fatalf("resend: %q", out)
	}
	rp = reply(ok(send("", "counter", "c-1", "counter.Add", `{"n":3}`, "--command-id", "add-3", "-o", "json")))
	if !rp.Duplicate || rp.Version != 2 || rp.Events != 0 {
		t.Fatalf("resend as JSON: %+v", rp)
	}

	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		msg   string
	}{
		{"handler's rejection", "", []string{"counter", "c-1", "counter.Add", `{"n":-1}`}, 1, "counter c-1 rejected counter.Add: n must be positive (command id "},
		{"not found", "", []string{"counter", "c-9", "counter.Reset", `{}`}, 1, "counter c-9 rejected counter.Reset (not_found): "},
		{"conflict", "", []string{"counter", "c-1", "counter.Add", `{"n":1}`, "--expect-version", "1"}, 1, "counter c-1 rejected counter.Add (conflict): "},
		{"unknown type", "", []string{"counter", "c-1", "Add", `{"n":1}`}, 1, "aggregate counter has no command type Add (no subject counter.commands-Add); its command types are: counter.Add, counter.Reset"},
		{"unknown field", "", []string{"counter", "c-1", "counter.Add", `{"count":1}`}, 1, "command counter.Add does not fit its schema (subject counter.commands-counter.Add)"},
		{"unknown aggregate", "", []string{"nosuch", "x", "nosuch.Add", `{}`}, 1, "the registry has no command schemas for aggregate nosuch"},
		{"not JSON", "", []string{"counter", "c-1", "counter.Add", `n=1`}, 2, "send: the command must be a JSON object"},
		{"empty stdin", "", []string{"counter", "c-1", "counter.Add", "-"}, 2, "send: the command must be a JSON object"},
		{"missing type", "", []string{"counter", "c-1"}, 2, "send: accepts between 3 and 4 arg(s), received 2"},
		{"no runner", "", []string{"--timeout", "2s", "idle", "i-1", "counter.Add", `{"n":1}`, "--command-id", "idle-1"}, 1,
			"no reply from idle i-1 within 2s to command idle-1: it may still be handled. Is the idle runner running? (see: recq groups describe idle.runner) Send again with --command-id idle-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := send(tc.stdin, tc.args...)
			if res.Code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", res.Code, tc.code, res.Stdout, res.Stderr)
			}
			if got := lines(res.Stderr); len(got) != 1 || !strings.HasPrefix(got[0], "recq: ") || !strings.Contains(got[0], tc.msg) {
				t.Fatalf("stderr must be one line containing %q, got:\n%s", tc.msg, res.Stderr)
			}
		})
	}
	// A rejection with -o json is a JSON reply too.
	res := send("", "counter", "c-1", "counter.Add", `{"n":0}`, "-o", "json")
	if rp := reply(res.Stdout); res.Code != 1 || rp.Code != "rejected" || rp.Error != "n must be positive" || rp.CommandID == "" {
		t.Fatalf("rejection as JSON: exit %d, %+v", res.Code, rp)
	}

	// What was accepted is in the event store: two events, the second
	// caused by add-3.
	evts := testenv.ReadTopic(t, dev.Addr, aggregates.EventsTopic("counter"))
	if len(evts) != 2 {
		t.Fatalf("%d events, want 2", len(evts))
	}
	if env, _ := streams.ReadEnvelope(evts[1]); env.CausationID != "add-3" || env.Type != "counter.Added" || env.AggregateVersion != 2 {
		t.Fatalf("second event: %+v", env)
	}
}
