package consumers_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/consumers"
	"github.com/recq/recq/consumers/dedupe"
	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

func TestProjectorMemoryStoreReachesHeadAndFollows(t *testing.T) {
	b := newBank(t, 4)
	b.publish(3000, 40)
	// An aborted transaction's events must never be applied, and its
	// markers must not keep the projector from reaching the head.
	abortTransaction(t, b)
	p, read := memoryProjector("memory", 1)
	r, _ := start(t, b, p)
	waitHead(t, r)
	equal(t, "at head", read(), b.fold())

	b.publish(1000, 40)
	catchUp(t, r)
	equal(t, "after catching up", read(), b.fold())

	// WaitFor: read-your-writes for one record whose place the publisher
	// gave back.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec := b.record(ctx, "acct-waitfor", Deposited{Amount: 5})
	must(t, b.pub.Publish(ctx, rec))
	must(t, r.WaitFor(ctx, rec.Topic, rec.Partition, rec.Offset))
	if got := read().Balance["acct-waitfor"]; got != 5 {
		t.Fatalf("after WaitFor on its offset, the balance is %d, want 5", got)
	}
	st := r.Status()
	// The topic's 4 partitions, and the 4 of the group's retry topic.
	if !st.Running || !st.Ready || len(st.Partitions) != 8 || st.Failing != nil {
		t.Fatalf("status: %+v", st)
	}
}

// abortTransaction writes deposits in a transaction and aborts it.
func abortTransaction(t *testing.T, b *bank) {
	t.Helper()
	cl := testenv.Client(t, b.addr, kgo.TransactionalID("aborter"))
	ctx := context.Background()
	must(t, cl.BeginTransaction())
	for i := range 20 {
		must(t, cl.ProduceSync(ctx, b.record(ctx, "acct-"+string(rune('a'+i)), Deposited{Amount: 1000000})).FirstErr())
	}
	must(t, cl.EndTransaction(ctx, kgo.TryAbort))
}

func TestProjectorRedisExactlyOnceAcrossRestarts(t *testing.T) {
	b := newBank(t, 4)
	rdb := testenv.RedisClient(t, testenv.Redis(t).Addr)
	p := redisProjector("ledger", 1)
	b.publish(2000, 30)
	// Stop and restart the projector at points inside the stream; every
	// run resumes from the positions stored with the ledger.
	for range 3 {
		_, stop := start(t, b, p, consumers.WithStore(redisStore(t, rdb)), consumers.WithMaxPollRecords(100))
		b.publish(2000, 30)
		time.Sleep(50 * time.Millisecond)
		stop()
	}
	r, _ := start(t, b, p, consumers.WithStore(redisStore(t, rdb)))
	catchUp(t, r)
	equal(t, "after restarts", redisLedger(t, rdb, p.Group()), b.fold())

	// Kafka offsets trail the store: lag is visible with recq groups describe.
	adm := kadm.NewClient(testenv.Client(t, b.addr))
	testenv.Eventually(t, "kafka offsets follow the store", time.Minute, func() error {
		offs, err := adm.FetchOffsets(context.Background(), p.Group())
		if err != nil {
			return err
		}
		ends, err := adm.ListCommittedOffsets(context.Background(), topic)
		if err != nil {
			return err
		}
		var errs []error
		ends.Each(func(o kadm.ListedOffset) {
			if c, _ := offs.Lookup(topic, o.Partition); c.At != o.Offset {
				errs = append(errs, errors.New("partition behind"))
			}
		})
		return errors.Join(errs...)
	})
}

func TestProjectorFencedOwnerReclaims(t *testing.T) {
	b := newBank(t, 2)
	rdb := testenv.RedisClient(t, testenv.Redis(t).Addr)
	p := redisProjector("fenced", 1)
	store := redisStore(t, rdb)
	r, _ := start(t, b, p, consumers.WithStore(store))
	b.publish(500, 10)
	catchUp(t, r)
	// Another owner claims partition 0 behind the runner's back, as a new
	// member would after this one's session expired.
	_, err := store.Claim(context.Background(), p.Group(), state.Partition{Topic: topic, Partition: 0})
	must(t, err)
	b.publish(500, 10)
	catchUp(t, r)
	equal(t, "after a fenced commit", redisLedger(t, rdb, p.Group()), b.fold())
	var epoch int64
	for _, ps := range r.Status().Partitions {
		if ps.Topic == topic && ps.Partition == 0 {
			epoch = ps.Epoch
		}
	}
	if epoch < 3 {
		t.Fatalf("partition 0 epoch %d: the runner should have claimed again after being fenced (epochs 1, then 2 by the other owner, then 3)", epoch)
	}
}

func TestProjectorRetriesFailingEventWithoutSkipping(t *testing.T) {
	b := newBank(t, 2)
	p := consumers.NewProjector("bank", "flaky", 1, topic)
	var mu sync.Mutex
	seen := map[int64]int{} // offset -> successful applications
	var failures atomic.Int32
	var target atomic.Int64 // the first deposit of partition 0 fails three times
	target.Store(-1)
	consumers.On(p, func(ctx context.Context, e Deposited, md consumers.Metadata) error {
		if md.Partition == 0 {
			target.CompareAndSwap(-1, md.Offset)
		}
		if md.Partition == 0 && md.Offset == target.Load() && failures.Add(1) <= 3 {
			// Transient: retried past the policy's 3 attempts, never dead.
			return deadletter.Transient(errors.New("dependency down"))
		}
		state.OnCommit(ctx, func() {
			mu.Lock()
			seen[int64(md.Partition)<<32|md.Offset]++
			mu.Unlock()
		})
		return nil
	})
	b.publish(300, 5)
	logs := &testenv.LogBuffer{}
	r, _ := start(t, b, p, consumers.WithRetryBackoff(time.Millisecond, 20*time.Millisecond), consumers.WithLogger(logs.Logger()))
	waitHead(t, r)
	if failures.Load() < 4 {
		t.Fatalf("the failing event was tried %d times, want 4 (3 failures, then success)", failures.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	var deposits int64
	for k, c := range seen {
		if c != 1 {
			t.Fatalf("event %d applied %d times", k, c)
		}
		deposits++
	}
	recs := testenv.ReadTopic(t, b.addr, topic)
	var wantDeposits int64
	for _, rec := range recs {
		if typ, _ := streams.Header(rec, streams.HeaderType); typ == typeName(t, b.serde, Deposited{}) {
			wantDeposits++
		}
	}
	if deposits != wantDeposits {
		t.Fatalf("applied %d deposits, the topic holds %d", deposits, wantDeposits)
	}
	if r.Status().Failing != nil {
		t.Fatalf("status still failing after recovery: %+v", r.Status().Failing)
	}
	// The retries' log lines name the event's flow.
	for _, rec := range recs {
		if rec.Partition != 0 || rec.Offset != target.Load() {
			continue
		}
		env, _ := streams.ReadEnvelope(rec)
		want := fmt.Sprintf("correlation_id=%s message_id=%s", env.CorrelationID, env.ID)
		if n := strings.Count(logs.String(), want); n != 4 {
			t.Fatalf("%d log lines with %q; want 4 (3 failed attempts, then recovered). The log:\n%s", n, want, logs.String())
		}
	}
}

func TestProjectorVersionBumpRebuilds(t *testing.T) {
	b := newBank(t, 3)
	rdb := testenv.RedisClient(t, testenv.Redis(t).Addr)
	b.publish(1500, 20)
	v1 := redisProjector("ledger", 1)
	r1, stop1 := start(t, b, v1, consumers.WithStore(redisStore(t, rdb)))
	waitHead(t, r1)
	stop1()
	before := redisLedger(t, rdb, v1.Group())
	equal(t, "v1", before, b.fold())

	b.publish(500, 20)
	v2 := redisProjector("ledger", 2)
	if v2.Group() != "bank.ledger.v2" {
		t.Fatalf("group %q", v2.Group())
	}
	r2, _ := start(t, b, v2, consumers.WithStore(redisStore(t, rdb)))
	waitHead(t, r2)
	equal(t, "v2 rebuilt from the beginning", redisLedger(t, rdb, v2.Group()), b.fold())
	equal(t, "v1 untouched", redisLedger(t, rdb, v1.Group()), before)
}

func TestProjectorsShareGroupWithoutDoubleApply(t *testing.T) {
	b := newBank(t, 6)
	rdb := testenv.RedisClient(t, testenv.Redis(t).Addr)
	p := redisProjector("shared", 1)
	b.publish(3000, 50)
	_, stop1 := start(t, b, p, consumers.WithStore(redisStore(t, rdb)), consumers.WithMaxPollRecords(200))
	b.publish(3000, 50)
	// A second member joins mid-stream; partitions move between them.
	r2, _ := start(t, b, p, consumers.WithStore(redisStore(t, rdb)), consumers.WithMaxPollRecords(200))
	b.publish(3000, 50)
	stop1() // leaves; its partitions move to r2
	b.publish(1000, 50)
	catchUp(t, r2)
	equal(t, "two members, one left", redisLedger(t, rdb, p.Group()), b.fold())
}

// An idle projector (no event comes to fail on) still says it is not
// ready while its Redis store does not answer, and is ready again once it
// does: the runner probes the stores it can ping.
func TestProjectorIdleNotReadyWhileRedisDown(t *testing.T) {
	b := newBank(t, 2)
	srv := testenv.RedisPersistent(t)
	rdb := testenv.RedisClient(t, srv.Addr)
	p := redisProjector("idle", 1)
	b.publish(100, 10)
	r, _ := start(t, b, p, consumers.WithStore(redisStore(t, rdb)))
	waitHead(t, r)
	testenv.WaitFor(t, "ready at the head", time.Minute, r.Ready)
	srv.Stop()
	testenv.Eventually(t, "not ready, naming the store", time.Minute, func() error {
		if st := r.Status(); st.Ready || !strings.Contains(st.Reason, "the consumer-state store has not answered") || !strings.Contains(st.Reason, srv.Addr) {
			return fmt.Errorf("status %v, %q", st.Ready, st.Reason)
		}
		return nil
	})
	srv.Start()
	testenv.WaitFor(t, "ready again once Redis answers", time.Minute, r.Ready)
	b.publish(100, 10)
	catchUp(t, r)
	equal(t, "after the outage", redisLedger(t, rdb, p.Group()), b.fold())
}

func TestProjectorRedisOutageAtStartWaits(t *testing.T) {
	b := newBank(t, 2)
	srv := testenv.Redis(t)
	rdb := testenv.RedisClient(t, srv.Addr)
	p := redisProjector("outage", 1)
	b.publish(500, 10)
	srv.Stop()
	r, _ := start(t, b, p, consumers.WithStore(redisStore(t, rdb)), consumers.WithRetryBackoff(10*time.Millisecond, 100*time.Millisecond))
	testenv.Eventually(t, "status reports the failing store", time.Minute, func() error {
		if f := r.Status().Failing; f == nil || !strings.Contains(f.Error, srv.Addr) {
			return errors.New("no failure naming the Redis address reported yet")
		}
		return nil
	})
	if r.Ready() {
		t.Fatal("ready while Redis is down")
	}
	srv.Start()
	waitHead(t, r)
	equal(t, "after Redis came up", redisLedger(t, rdb, p.Group()), b.fold())
}

func TestRunnerErrors(t *testing.T) {
	serde := testenv.Serde(t)
	p, _ := memoryProjector("errs", 1)
	r, err := consumers.NewRunner(p, serde, []string{testenv.FreeAddr(t)})
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Run(ctx); err == nil || !strings.Contains(err.Error(), "no Kafka broker reachable") {
		t.Fatalf("unreachable broker: %v", err)
	}
	for name, c := range map[string]*consumers.Consumer{
		"no handlers": consumers.NewProjector("bank", "empty", 1, topic),
		"no topics":   consumers.NewProjector("bank", "x", 1),
		"bad version": consumers.NewProjector("bank", "x", 0, topic),
		"bad name":    consumers.NewProjector("bank", "a b", 1, topic),
	} {
		if _, err := consumers.NewRunner(c, serde, []string{"x:1"}); err == nil {
			t.Errorf("%s: NewRunner accepted it", name)
		}
	}
	o := consumers.NewObserver("bank", "mailer", 1, topic)
	consumers.On(o, func(context.Context, Deposited, consumers.Metadata) error { return nil })
	if _, err := consumers.NewRunner(o, serde, []string{"x:1"}, consumers.WithKafkaOffsets()); err == nil {
		t.Error("an observer accepted WithKafkaOffsets")
	}
	if _, err := consumers.NewRunner(p, nil, []string{"x:1"}); err == nil || !strings.Contains(err.Error(), "codec") {
		t.Errorf("no codec: %v", err)
	}
	if _, err := consumers.NewRunner(p, serde, nil); err == nil || !strings.Contains(err.Error(), "brokers") {
		t.Errorf("no brokers: %v", err)
	}
	if _, err := consumers.NewRunner(p, serde, []string{"x:1"}, consumers.WithKafkaOffsets(), consumers.WithStore(state.NewMemory())); err == nil {
		t.Error("both a store and Kafka offsets accepted")
	}
}

func TestProjectorKafkaOffsetsResumesFromCommitted(t *testing.T) {
	b := newBank(t, 3)
	b.publish(1000, 20)
	// A static member: Close does not leave the group, so Run commits the
	// offsets itself before closing.
	p, read := memoryProjector("kafka", 1)
	r, stop := start(t, b, p, consumers.WithKafkaOffsets(), consumers.WithInstanceID("kafka-1"))
	waitHead(t, r)
	first := read()
	stop() // commits its offsets on the way out
	b.publish(500, 20)
	p2, read2 := memoryProjector("kafka", 1)
	r2, _ := start(t, b, p2, consumers.WithKafkaOffsets(), consumers.WithInstanceID("kafka-1"))
	catchUp(t, r2)
	// The second run saw only what the first did not: the two together
	// are the fold.
	got := read2()
	for k, v := range first.Balance {
		got.Balance[k] += v
	}
	for k, v := range first.Count {
		got.Count[k] += v
	}
	equal(t, "two runs on committed offsets", got, b.fold())
}

func TestObserverStartsAtHeadAndDedupesRedelivery(t *testing.T) {
	b := newBank(t, 2)
	rdb := testenv.RedisClient(t, testenv.Redis(t).Addr)
	b.publish(200, 5) // history a new observer must not replay
	var mu sync.Mutex
	calls := map[string]int{} // event id -> side effects
	newObserver := func() *consumers.Consumer {
		o := consumers.NewObserver("bank", "mailer", 1, topic)
		consumers.On(o, func(_ context.Context, _ Deposited, md consumers.Metadata) error {
			mu.Lock()
			calls[md.ID()]++
			mu.Unlock()
			return nil
		})
		return o
	}
	dd := func() dedupe.Store {
		s, err := dedupe.NewRedis(rdb)
		must(t, err)
		return s
	}
	r, stop := start(t, b, newObserver(), consumers.WithDedupe(dd()))
	waitHead(t, r)
	b.publish(100, 5)
	catchUp(t, r)
	stop()
	mu.Lock()
	first := len(calls)
	mu.Unlock()
	if first == 0 || first > 100 {
		t.Fatalf("observer handled %d deposits; want the new ones only (at most 100)", first)
	}
	// Rewind the group to the beginning, as a crash before the offset
	// commit would (and further), and run again: the dedupe store skips
	// every event handled before; the history is new to it.
	adm := kadm.NewClient(testenv.Client(t, b.addr))
	_, err := adm.CommitOffsets(context.Background(), newObserver().Group(), rewind(t, adm))
	must(t, err)
	b.publish(100, 5)
	r2, _ := start(t, b, newObserver(), consumers.WithDedupe(dd()))
	catchUp(t, r2)
	mu.Lock()
	defer mu.Unlock()
	for id, n := range calls {
		if n != 1 {
			t.Fatalf("event %s handled %d times", id, n)
		}
	}
	if len(calls) <= first {
		t.Fatalf("the second run handled nothing new (%d events in all)", len(calls))
	}
}

// rewind returns offsets placing every partition of the topic at 0.
func rewind(t *testing.T, adm *kadm.Client) kadm.Offsets {
	t.Helper()
	ends, err := adm.ListEndOffsets(context.Background(), topic)
	must(t, err)
	offs := kadm.Offsets{}
	ends.Each(func(o kadm.ListedOffset) {
		offs.Add(kadm.Offset{Topic: topic, Partition: o.Partition, At: 0, LeaderEpoch: -1})
	})
	return offs
}

// What a handler publishes continues the handled event's flow: the same
// correlation id, and the event's id as causation.
func TestHandlersPublishInTheEventsFlow(t *testing.T) {
	b := newBank(t, 2)
	testenv.Topic(t, b.addr, "bank.mail", 1)
	o := consumers.NewObserver("bank", "mailer", 1, topic)
	consumers.On(o, func(ctx context.Context, e Deposited, md consumers.Metadata) error {
		return b.pub.Publish(ctx, &kgo.Record{Topic: "bank.mail", Key: []byte(md.Key()), Value: []byte(md.ID())})
	})
	r, _ := start(t, b, o)
	waitHead(t, r)
	b.publish(100, 5)
	catchUp(t, r)
	events := map[string]streams.Envelope{}
	for _, rec := range testenv.ReadTopic(t, b.addr, topic) {
		env, _ := streams.ReadEnvelope(rec)
		events[env.ID] = env
	}
	mails := testenv.ReadTopic(t, b.addr, "bank.mail")
	if len(mails) == 0 {
		t.Fatal("the observer published nothing")
	}
	for _, m := range mails {
		env, _ := streams.ReadEnvelope(m)
		cause, ok := events[string(m.Value)]
		if !ok || env.CausationID != cause.ID || env.CorrelationID != cause.CorrelationID || env.CorrelationID == "" {
			t.Fatalf("mail %+v: want causation %q and correlation %q of its event", env, cause.ID, cause.CorrelationID)
		}
	}
}

// The failure Status shows belongs to the partition that fails: another
// partition recovering from its own failure does not hide it. Both fail in
// one poll; the flaky one is held in its second attempt until the stuck
// one's failure is the one shown, then let succeed.
func TestStatusKeepsAFailureAnotherPartitionsRecoveryDoesNotEnd(t *testing.T) {
	b := newBank(t, 2)
	var stuck, flaky string // accounts on partitions 0 and 1
	for i := 0; stuck == "" || flaky == ""; i++ {
		acct := fmt.Sprint("acct-", i)
		switch streams.KeyPartition([]byte(acct), 2) {
		case 0:
			stuck = cmp.Or(stuck, acct)
		case 1:
			flaky = cmp.Or(flaky, acct)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	must(t, b.pub.Publish(ctx, b.record(ctx, flaky, Deposited{Amount: 5}), b.record(ctx, stuck, Deposited{Amount: 7})))
	var flakyFailed atomic.Bool
	release := make(chan struct{})
	p, _ := checkedProjector("failing", 1, func(md consumers.Metadata, _ int64) error {
		switch md.Key() {
		case stuck:
			return deadletter.Transient(errors.New("the stuck account's dependency is down"))
		case flaky:
			if flakyFailed.CompareAndSwap(false, true) {
				return deadletter.Transient(errors.New("a blip"))
			}
			<-release
		}
		return nil
	})
	var logs testenv.LogBuffer
	r, _ := start(t, b, p, consumers.WithLogger(logs.Logger()),
		consumers.WithRetryPolicy(deadletter.Policy{Backoff: 4 * time.Second, MaxBackoff: 4 * time.Second}))
	testenv.WaitFor(t, "both failing, the stuck one shown", 30*time.Second, func() bool {
		f := r.Status().Failing
		return flakyFailed.Load() && f != nil && f.Partition.Partition == 0
	})
	close(release)
	// Its partition's batch commits only with the stuck one's (one poll),
	// so its recovery shows in the log, written after Status is updated.
	testenv.WaitFor(t, "the flaky account's partition recovered", 30*time.Second, func() bool {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "msg=recovered") && strings.Contains(line, "partition="+topic+"/1 ") {
				return true
			}
		}
		return false
	})
	if f := r.Status().Failing; f == nil || f.Partition.Partition != 0 || !strings.Contains(f.Error, "stuck account") {
		t.Fatalf("after partition 1 recovered, Status.Failing is %+v; want partition 0's failure, which goes on", f)
	}
}
