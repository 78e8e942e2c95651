package aggregates_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

const testReplies = "test.replies"

// commander sends commands as a foreign client would: to a partition of its
// own choosing (kcat and librdkafka hash keys with crc32, not murmur2), and
// reads the replies itself.
type commander struct {
	t     *testing.T
	serde *schema.Serde
	prod  *kgo.Client

	mu      sync.Mutex
	replies map[string][]aggregates.Reply // by command id, in order
}

func newCommander(t *testing.T, addr string, serde *schema.Serde) *commander {
	testenv.Topic(t, addr, testReplies, 1)
	c := &commander{t: t, serde: serde, replies: map[string][]aggregates.Reply{},
		prod: testenv.Client(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))}
	rd := testenv.Client(t, addr, kgo.ConsumeTopics(testReplies), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	testenv.RunUntilCleanup(t, func(ctx context.Context) error {
		for {
			fs := rd.PollFetches(ctx)
			if ctx.Err() != nil {
				return nil
			}
			fs.EachRecord(func(r *kgo.Record) {
				var rp aggregates.Reply
				if err := json.Unmarshal(r.Value, &rp); err != nil {
					t.Errorf("reply %s: %v", r.Key, err)
				}
				c.mu.Lock()
				c.replies[string(r.Key)] = append(c.replies[string(r.Key)], rp)
				c.mu.Unlock()
			})
		}
	})
	return c
}

// send produces cmd for aggregate id to partition p of the commands topic
// and waits for its reply (the next one to a command id sent before).
func (c *commander) send(ctx context.Context, p int32, id, cmdID string, cmd any) aggregates.Reply {
	c.t.Helper()
	c.mu.Lock()
	before := len(c.replies[cmdID])
	c.mu.Unlock()
	val, typ, err := c.serde.Encode(ctx, aggregates.CommandsTopic("todo"), cmd)
	if err != nil {
		c.t.Fatal(err)
	}
	rec := &kgo.Record{Topic: aggregates.CommandsTopic("todo"), Partition: p, Key: []byte(id), Value: val}
	streams.Envelope{Type: typ, ID: cmdID, ReplyTo: testReplies}.Write(rec)
	if err := c.prod.ProduceSync(ctx, rec).FirstErr(); err != nil {
		c.t.Fatal(err)
	}
	for {
		c.mu.Lock()
		rps := c.replies[cmdID]
		c.mu.Unlock()
		if len(rps) > before {
			return rps[before]
		}
		if ctx.Err() != nil {
			c.t.Fatalf("no reply to %s (%T on %s, partition %d)", cmdID, cmd, id, p)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Commands produced to partitions other than their key's (by murmur2, as
// recq's own clients do) are moved there and handled with the aggregate's
// whole history, with a cache of one aggregate so that every command
// reloads. Every event lands in its aggregate's home partition, once.
func TestRunnerRehomesCommandsOfOtherPartitioners(t *testing.T) {
	addr, serde := platform(t)
	iv := runTodoWith(t, addr, serde, aggregates.WithCacheSize(1))
	c := newCommander(t, addr, serde)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const lists, n = 8, 4
	id := func(i int) string { return fmt.Sprintf("list-%d", i) }
	away := func(i int, by int32) int32 { return (streams.KeyPartition([]byte(id(i)), n) + by) % n }
	for i := range lists {
		if rp := c.send(ctx, away(i, 1), id(i), "create-"+id(i), CreateList{Name: id(i)}); rp.Code != "" || rp.Version != 1 {
			t.Fatalf("%s: create from another partition: %+v", id(i), rp)
		}
	}
	for i := range lists {
		if res, err := iv.Send(ctx, "todo", id(i), AddItem{Title: "a"}); err != nil || res.Version != 2 {
			t.Fatalf("%s: the invoker's command after a re-homed create: %+v %v (want version 2)", id(i), res, err)
		}
	}
	for i := range lists {
		if rp := c.send(ctx, away(i, 2), id(i), "b-"+id(i), AddItem{Title: "b"}); rp.Code != "" || rp.Version != 3 {
			t.Fatalf("%s: add b: %+v", id(i), rp)
		}
	}
	for i := range lists {
		// The same command id again, straight to the home partition and to
		// a third one: both recognised.
		for _, by := range []int32{0, 3} {
			if rp := c.send(ctx, away(i, by), id(i), "b-"+id(i), AddItem{Title: "b"}); !rp.Duplicate || rp.Version != 3 {
				t.Fatalf("%s: resent command id through partition +%d: %+v, want a duplicate at version 3", id(i), by, rp)
			}
		}
		if rp := c.send(ctx, away(i, 1), id(i), "create-again-"+id(i), CreateList{Name: "again"}); rp.Code != "rejected" || rp.Error != errListExists.Error() {
			t.Fatalf("%s: a second create must see the first: %+v", id(i), rp)
		}
	}
	causes := map[string]int{}
	for _, e := range testenv.ReadTopic(t, addr, aggregates.EventsTopic("todo")) {
		env, _ := streams.ReadEnvelope(e)
		if home := streams.KeyPartition(e.Key, n); e.Partition != home {
			t.Errorf("event of %s (version %d) in partition %d; its home is %d", env.AggregateID, env.AggregateVersion, e.Partition, home)
		}
		if v, _ := streams.Header(e, aggregates.HeaderPartitions); v != "4" {
			t.Errorf("event of %s: %s=%q, want 4", env.AggregateID, aggregates.HeaderPartitions, v)
		}
		causes[env.CausationID]++
	}
	if len(causes) != 3*lists {
		t.Fatalf("%d distinct commands have events, want %d (create, a, b per list)", len(causes), 3*lists)
	}
	for cmd, k := range causes {
		if k != 1 {
			t.Errorf("command %s has %d events, want 1", cmd, k)
		}
	}
}

// foreignTxn opens a transaction on the events topic, as another producer
// (or a crashed runner without an instance id) would leave it, holding the
// partition's last stable offset back.
func foreignTxn(t *testing.T, addr, txnID string, recs ...*kgo.Record) *kgo.Client {
	t.Helper()
	cl := testenv.Client(t, addr, kgo.TransactionalID(txnID), kgo.TransactionTimeout(2*time.Minute),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return cl
}

// event is a todo event for id at version v, as the runner writes it.
func event(t *testing.T, serde *schema.Serde, id string, v int64, e any) *kgo.Record {
	t.Helper()
	val, typ, err := serde.Encode(context.Background(), aggregates.EventsTopic("todo"), e)
	if err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: aggregates.EventsTopic("todo"), Partition: streams.KeyPartition([]byte(id), 4), Key: []byte(id), Value: val}
	streams.Envelope{Type: typ, ID: streams.NewID(), AggregateID: id, AggregateVersion: v}.Write(rec)
	return rec
}

// A transaction left open on an aggregate's partition holds its last stable
// offset back. Loading must still see every event committed after it (the
// cache holds one aggregate, so every command reloads); and when the open
// transaction holds one of the aggregate's own events, the command waits
// for it to be decided rather than deciding on a history without it.
func TestRunnerNeverDecidesOnATruncatedHistory(t *testing.T) {
	addr, serde := platform(t)
	var log testenv.LogBuffer
	iv := runTodoWith(t, addr, serde, aggregates.WithCacheSize(1), aggregates.WithLogger(log.Logger()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Two lists in one partition, so that each command evicts the other.
	k, other := "list-k", ""
	for i := 0; other == ""; i++ {
		if id := fmt.Sprintf("other-%d", i); streams.KeyPartition([]byte(id), 4) == streams.KeyPartition([]byte(k), 4) {
			other = id
		}
	}
	for _, id := range []string{k, other} {
		if _, err := iv.Send(ctx, "todo", id, CreateList{Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	unrelated := event(t, serde, other, 999, ItemAdded{Title: "unrelated"})
	unrelated.Key = []byte("someone-else")
	stuck := foreignTxn(t, addr, "foreign-stuck", unrelated)
	for round := range 5 {
		for _, id := range []string{k, other} {
			title := fmt.Sprintf("item-%d", round)
			res, err := iv.Send(ctx, "todo", id, AddItem{Title: title})
			if err != nil || res.Version != int64(round+2) {
				t.Fatalf("%s round %d behind a stuck stable offset: %+v %v (want version %d)", id, round, res, err, round+2)
			}
			var rej *aggregates.RejectedError
			if _, err := iv.Send(ctx, "todo", id, AddItem{Title: title}); !errors.As(err, &rej) {
				t.Fatalf("%s round %d: the same item twice was not refused (%v): the load missed committed events", id, round, err)
			}
		}
	}
	// An open transaction holding an event of k: k's commands wait for it.
	for _, end := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort} {
		title := fmt.Sprintf("foreign-%v", end)
		held := foreignTxn(t, addr, "foreign-"+title, event(t, serde, k, 7, ItemAdded{Title: title}))
		// k is evicted (other is loaded last) and must be reloaded.
		if _, err := iv.Send(ctx, "todo", other, AddItem{Title: title}); err != nil {
			t.Fatal(err)
		}
		out := iv.SendAsync(ctx, "todo", k, AddItem{Title: title})
		select {
		case o := <-out:
			t.Fatalf("%s: decided while an event of the aggregate was undecided: %+v", title, o)
		case <-time.After(aggregates.LoadWait + 2*time.Second): // past the first wait: the batch is retried
		}
		if err := held.EndTransaction(ctx, end); err != nil {
			t.Fatal(err)
		}
		o := <-out
		var rej *aggregates.RejectedError
		switch {
		case end == kgo.TryCommit && !(errors.As(o.Err, &rej) && rej.Err.Error() == errDuplicate.Error()):
			t.Fatalf("after the foreign event committed, adding its item again must be refused: %+v", o)
		case end == kgo.TryAbort && o.Err != nil:
			t.Fatalf("after the foreign event aborted, adding its item must be accepted: %+v", o)
		}
	}
	if err := stuck.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	// The runner said what it waited for, for an operator to see.
	for _, want := range []string{"loading an aggregate waits for an open transaction", "aggregate=list-k", "history is not decided yet"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the runner's log does not say %q:\n%s", want, log.String())
		}
	}
}

// The runner refuses topics that would lose or misplace an aggregate's
// history, saying what to do; EnsureTopics creates an events topic that
// keeps everything.
func TestRunnerRefusesTopicsThatLoseHistory(t *testing.T) {
	run := func(t *testing.T, addr string, serde *schema.Serde, opts ...aggregates.RunnerOption) error {
		r, err := aggregates.NewRunner(todo(), serde, []string{addr}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return r.Run(ctx) // nil once it ran until the deadline
	}
	refused := func(t *testing.T, err error, says ...string) {
		t.Helper()
		if !errors.Is(err, aggregates.ErrTopics) {
			t.Fatalf("want ErrTopics, got %v", err)
		}
		for _, s := range says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not say %q", err, s)
			}
		}
	}
	t.Run("new topics keep events forever", func(t *testing.T) {
		addr, serde := platform(t)
		adm := streams.NewAdmin(testenv.Client(t, addr))
		if err := aggregates.EnsureTopics(context.Background(), adm, "todo", 2); err != nil {
			t.Fatal(err)
		}
		info, err := adm.DescribeTopic(context.Background(), aggregates.EventsTopic("todo"))
		if err != nil || !info.Retention.Forever() {
			t.Fatalf("events topic retention %v (%v), want unlimited", info.Retention, err)
		}
		if err := run(t, addr, serde); err != nil {
			t.Fatalf("on topics EnsureTopics made: %v", err)
		}
	})
	t.Run("finite retention", func(t *testing.T) {
		for name, cfg := range map[string]map[string]string{
			"default 7 days": nil,
			"by size":        {"retention.ms": "-1", "retention.bytes": "1000000"},
			"compacted":      {"retention.ms": "-1", "cleanup.policy": "compact"},
		} {
			t.Run(name, func(t *testing.T) {
				addr, serde := platform(t)
				testenv.Topic(t, addr, aggregates.CommandsTopic("todo"), 2)
				if err := streams.NewAdmin(testenv.Client(t, addr)).CreateTopic(context.Background(),
					streams.TopicSpec{Name: aggregates.EventsTopic("todo"), Partitions: 2, Configs: cfg}); err != nil {
					t.Fatal(err)
				}
				refused(t, run(t, addr, serde), "deletes records", "recq topic alter todo.events --config retention.ms=-1", "WithFiniteRetention")
				if err := run(t, addr, serde, aggregates.WithFiniteRetention()); err != nil {
					t.Fatalf("with WithFiniteRetention: %v", err)
				}
			})
		}
	})
	t.Run("partition counts differ", func(t *testing.T) {
		addr, serde := platform(t)
		testenv.Topic(t, addr, aggregates.CommandsTopic("todo"), 4)
		testenv.Topic(t, addr, aggregates.EventsTopic("todo"), 2)
		err := aggregates.EnsureTopics(context.Background(), streams.NewAdmin(testenv.Client(t, addr)), "todo", 4)
		refused(t, err, "todo.commands has 4 partitions but todo.events has 2", "Scaling an aggregate")
		refused(t, run(t, addr, serde), "must share partitions")
	})
	t.Run("partitions added after events were written", func(t *testing.T) {
		addr, serde := platform(t)
		t.Run("events under two partitions", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := aggregates.EnsureTopics(ctx, streams.NewAdmin(testenv.Client(t, addr)), "todo", 2); err != nil {
				t.Fatal(err)
			}
			startRunner(t, addr, serde)
			iv, err := aggregates.NewInvoker(ctx, []string{addr}, serde)
			if err != nil {
				t.Fatal(err)
			}
			defer iv.Close()
			for i := range 6 {
				if _, err := iv.Send(ctx, "todo", fmt.Sprintf("l%d", i), CreateList{Name: "x"}); err != nil {
					t.Fatal(err)
				}
			}
		})
		adm := kadm.NewClient(testenv.Client(t, addr))
		for _, topic := range []string{aggregates.CommandsTopic("todo"), aggregates.EventsTopic("todo")} {
			if _, err := adm.CreatePartitions(context.Background(), 2, topic); err != nil {
				t.Fatal(err)
			}
		}
		refused(t, run(t, addr, serde), "written when the topics had 2 partitions; they have 4 now", "new topic pair")
	})
	// The group would rebalance onto the new partitions only after its
	// metadata ages (minutes); the runner's own watch stops it first.
	t.Run("partitions added while it runs", func(t *testing.T) {
		addr, serde := platform(t)
		if err := aggregates.EnsureTopics(context.Background(), streams.NewAdmin(testenv.Client(t, addr)), "todo", 2); err != nil {
			t.Fatal(err)
		}
		r, err := aggregates.NewRunner(todo(), serde, []string{addr})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		testenv.WaitFor(t, "the runner ready", 10*time.Second, r.Ready)
		if _, err := kadm.NewClient(testenv.Client(t, addr)).CreatePartitions(context.Background(), 1, aggregates.CommandsTopic("todo"), aggregates.EventsTopic("todo")); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			refused(t, err, "partitions were added", "it started with 2, they have 3 now", "new topic pair")
		case <-ctx.Done():
			t.Fatal("the runner kept running on topics whose partitions were added")
		}
	})
}
