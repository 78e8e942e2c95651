package aggregates_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

// A poll that brings records of some partitions beside a fetch error of
// another: franz-go has moved its positions past those records, so the
// runner must handle them. Every command is answered (none is skipped by
// the next commit), and each has its event.
func TestRunnerHandlesRecordsBesideAFetchError(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1)) // on 127.0.0.1, kfake's default
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	serde := testenv.Serde(t)
	iv := runTodo(t, addr, serde)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var lists []string // none on partition 1, whose fetches fail
	for i := 0; len(lists) < 20; i++ {
		if id := fmt.Sprintf("l%d", i); streams.KeyPartition([]byte(id), 4) != 1 {
			lists = append(lists, id)
			if _, err := iv.Send(ctx, "todo", id, CreateList{Name: id}); err != nil {
				t.Fatal(err)
			}
		}
	}
	faults := make(chan struct{})
	go func() {
		defer close(faults)
		for range 10 {
			h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: aggregates.CommandsTopic("todo"), Partitions: []int32{1}, Err: kerr.UnknownServerError, Count: 3})
			time.Sleep(100 * time.Millisecond)
			h.Remove()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []error
	sent := 0
	for done := false; !done; sent++ {
		select {
		case <-faults:
			done = true
		default:
		}
		out := iv.SendAsync(ctx, "todo", lists[sent%len(lists)], AddItem{Title: fmt.Sprint(sent)}, aggregates.WithCommandID(fmt.Sprintf("cmd-%d", sent)))
		wg.Go(func() {
			if o := <-out; o.Err != nil {
				mu.Lock()
				failed = append(failed, o.Err)
				mu.Unlock()
			}
		})
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d of %d commands not answered, the first: %v", len(failed), sent, failed[0])
	}
	causes := map[string]bool{}
	for _, e := range testenv.ReadTopic(t, addr, aggregates.EventsTopic("todo")) {
		env, _ := streams.ReadEnvelope(e)
		causes[env.CausationID] = true
	}
	for n := range sent {
		if !causes[fmt.Sprintf("cmd-%d", n)] {
			t.Fatalf("command %d has no event", n)
		}
	}
}

// A runner that lost partitions twice while idle (the transactional
// session then skips the second revocation callback) and gets them back
// must not decide on what it had cached of them: another member changed
// those aggregates meanwhile.
func TestRunnerReloadsPartitionsItGetsBack(t *testing.T) {
	addr, serde := platform(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := aggregates.EnsureTopics(ctx, streams.NewAdmin(testenv.Client(t, addr)), "todo", 4); err != nil {
		t.Fatal(err)
	}
	type member struct {
		r    *aggregates.Runner[TodoList]
		stop context.CancelFunc
		done chan struct{} // closed when Run returned, with err set
		err  error
	}
	start := func() *member {
		r, err := aggregates.NewRunner(todo(), serde, []string{addr}, aggregates.WithSessionTimeout(6*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		rctx, stop := context.WithCancel(ctx)
		m := &member{r: r, stop: stop, done: make(chan struct{})}
		go func() {
			defer close(m.done)
			m.err = r.Run(rctx)
		}()
		return m
	}
	stop := func(ms ...*member) {
		for _, m := range ms {
			m.stop()
			if <-m.done; m.err != nil {
				t.Error(m.err)
			}
		}
	}
	owns := func(m *member, n int) func() bool {
		return func() bool {
			select {
			case <-m.done: // a runner that stopped will never own anything
				t.Fatalf("a runner stopped while the test waited for it: %v", m.err)
			default:
			}
			return len(m.r.Status().Partitions) == n
		}
	}
	settled := func(what string, cond func() bool) {
		t.Helper()
		testenv.WaitFor(t, what, time.Minute, cond)
		time.Sleep(2 * time.Second) // let the group finish its rebalance
	}
	r1 := start()
	settled("r1 owning every partition", owns(r1, 4))
	iv, err := aggregates.NewInvoker(ctx, []string{addr}, serde)
	if err != nil {
		t.Fatal(err)
	}
	defer iv.Close()
	list := map[int32]string{} // one list per partition, cached by r1
	for i := 0; len(list) < 4; i++ {
		id := fmt.Sprintf("l%d", i)
		if p := streams.KeyPartition([]byte(id), 4); list[p] == "" {
			list[p] = id
			if _, err := iv.Send(ctx, "todo", id, CreateList{Name: id}); err != nil {
				t.Fatal(err)
			}
		}
	}
	r2 := start()
	settled("r2 sharing the group", owns(r2, 2))
	r3, r4 := start(), start()
	settled("four members", func() bool { return owns(r3, 1)() && owns(r4, 1)() })
	var moved []int32 // r1's partitions, as far as it knows, that others own now
	for _, m := range []*member{r2, r3, r4} {
		moved = append(moved, m.r.Status().Partitions...)
	}
	for _, p := range moved {
		if res, err := iv.Send(ctx, "todo", list[p], AddItem{Title: "x"}); err != nil || res.Version != 2 {
			t.Fatalf("%s on another member: %+v %v", list[p], res, err)
		}
	}
	stop(r2, r3, r4)
	settled("r1 alone again", owns(r1, 4))
	for p := range int32(4) {
		want := int64(2)
		if slices.Contains(moved, p) {
			want = 3
		}
		if res, err := iv.Send(ctx, "todo", list[p], AddItem{Title: "y"}); err != nil || res.Version != want {
			t.Fatalf("%s (partition %d) back on r1: %+v %v, want version %d: decided on a stale cached state", list[p], p, res, err, want)
		}
	}
	stop(r1)
}
