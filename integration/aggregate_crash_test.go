package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/aggregates/snapshot"
	"github.com/recq/recq/internal/fixture/todo"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

// serdeAt returns a serde on the registry at url that registers what it
// meets.
func serdeAt(t *testing.T, url string) *schema.Serde {
	t.Helper()
	src, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	serde, err := schema.NewSerde(src, schema.WithAutoRegister(true))
	if err != nil {
		t.Fatal(err)
	}
	return serde
}

// todoInvoker returns an invoker for the todo aggregate on dev's broker and
// registry, closed at cleanup.
func todoInvoker(ctx context.Context, t *testing.T, dev *testenv.Dev) *aggregates.Invoker {
	t.Helper()
	iv, err := aggregates.NewInvoker(ctx, []string{dev.Addr}, serdeAt(t, dev.Registry))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(iv.Close)
	return iv
}

// A runner handling commands across 8 partitions is killed with SIGKILL
// three times at random points and restarted. Afterwards the event topic,
// read committed, holds exactly one event per accepted command, the
// versions of every aggregate are contiguous, and every Send that returned
// success is there. The variants reach the paths a restart can take:
//   - "fenced": restarted with the same instance id, so its first
//     transaction fences the predecessor's open one at once;
//   - "unfenced": a new instance id each time, a cache smaller than the
//     lists and Redis snapshots. The first crash comes from inside a
//     transaction that holds events (RECQ_CRASH_AT_EVENT): it stays open
//     until the broker times it out, holding the stable offset back, and
//     the successor must wait for it when it reloads those aggregates.
func TestAggregateRunnerKill9ExactlyOnce(t *testing.T) {
	t.Run("fenced", func(t *testing.T) {
		runnerCrashTest(t, 20_000, func(int) ([]string, []string) {
			return nil, []string{"-instance", "crash-test", "-session-timeout", "6s"}
		})
	})
	t.Run("unfenced", func(t *testing.T) {
		rds := testenv.Redis(t)
		start := func(restart int) (env, args []string) {
			if restart == 0 {
				env = []string{fmt.Sprintf("RECQ_CRASH_AT_EVENT=%d", 1000+rand.IntN(2000))}
			}
			return env, []string{"-instance", fmt.Sprintf("unfenced-%d", restart), "-session-timeout", "6s",
				"-cache-size", "16", "-redis", rds.Addr, "-snapshot-every", "7"}
		}
		if waits := runnerCrashTest(t, 10_000, start); waits == 0 {
			t.Fatal("no runner waited for its predecessor's open transaction: the test missed the path it is for")
		}
		rdb := testenv.RedisClient(t, rds.Addr)
		keys, err := rdb.Keys(context.Background(), snapshot.DefaultKeyPrefix+"*").Result()
		if err != nil || len(keys) < 100 {
			t.Fatalf("%d snapshots in Redis (%v): the loads did not go through snapshots", len(keys), err)
		}
	})
}

// runnerCrashTest sends commands over 200 lists with 400 in flight to the
// todo runner started with the environment and arguments of start(restart)
// (restart counts from 0), has it killed three times, and checks the event
// topic. A runner started with RECQ_CRASH_AT_EVENT kills itself; the others
// are killed at random points. It returns how many times the runners logged
// a load waiting for an open transaction.
func runnerCrashTest(t *testing.T, commands int, start func(restart int) (env, args []string)) int {
	const lists = 200
	dev := testenv.StartDev(t, t.TempDir())
	runnerBin := testenv.Binary(t, "github.com/recq/recq/internal/fixture/todo/runner")
	selfKilling := map[*testenv.Proc]bool{}
	startRunner := func(restart int) *testenv.Proc {
		env, args := start(restart)
		p := testenv.StartEnv(t, env, "todo runner: ready", runnerBin,
			append([]string{"-brokers", dev.Addr, "-registry", dev.Registry, "-partitions", "8"}, args...)...)
		selfKilling[p] = len(env) > 0
		return p
	}
	runner := startRunner(0)
	procs := []*testenv.Proc{runner}

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	iv := todoInvoker(ctx, t, dev)
	for i := range lists {
		if _, err := iv.Send(ctx, todo.Name, fmt.Sprintf("list-%d", i), todo.CreateList{Name: "l"}); err != nil {
			t.Fatal(err)
		}
	}

	// Kill and restart the runner three times while commands flow.
	var accepted atomic.Int64
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		for kill := range 3 {
			target := int64((kill + 1) * commands / 4)
			target += rand.Int64N(int64(commands / 8))
			if selfKilling[runner] {
				select {
				case <-runner.Done():
				case <-ctx.Done():
				}
			} else {
				for accepted.Load() < target && ctx.Err() == nil {
					time.Sleep(5 * time.Millisecond)
				}
				runner.Kill9()
			}
			time.Sleep(time.Duration(rand.IntN(500)) * time.Millisecond)
			runner = startRunner(kill + 1)
			procs = append(procs, runner)
		}
	}()

	// Every command has its own id; one that got no answer (its runner
	// died) is sent again with the same id until it is answered.
	send := func(n int) error {
		id := fmt.Sprintf("list-%d", n%lists)
		cmd := todo.AddItem{Title: fmt.Sprintf("item-%d", n)}
		for ctx.Err() == nil {
			sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
			_, err := iv.Send(sctx, todo.Name, id, cmd, aggregates.WithCommandID(fmt.Sprintf("cmd-%d", n)))
			scancel()
			if err == nil {
				accepted.Add(1)
				return nil
			}
			if !strings.Contains(err.Error(), "send again with WithCommandID") {
				return fmt.Errorf("command %d: %w", n, err)
			}
		}
		return ctx.Err()
	}
	var wg sync.WaitGroup
	errs := make(chan error, commands)
	sem := make(chan struct{}, 400)
	for n := range commands {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := send(n); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	<-killerDone
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	checkCommandEvents(t, dev.Addr, lists, commands)
	t.Logf("%d commands over %d lists, %d accepted answers, 3 kills", commands, lists, accepted.Load())
	waits := 0
	for _, p := range procs {
		waits += strings.Count(p.Output(), "waits for an open transaction")
	}
	return waits
}

// checkCommandEvents checks the todo event topic after lists creations and
// commands AddItem commands with ids cmd-0..cmd-<commands-1>: exactly one
// event per command, each in its aggregate's home partition, versions
// contiguous per list.
func checkCommandEvents(t *testing.T, addr string, lists, commands int) {
	t.Helper()
	events := testenv.ReadTopic(t, addr, aggregates.EventsTopic(todo.Name))
	versions := map[string]int64{}
	causes := map[string]int{}
	for _, e := range events {
		env, err := streams.ReadEnvelope(e)
		if err != nil {
			t.Fatal(err)
		}
		if env.AggregateVersion != versions[env.AggregateID]+1 {
			t.Fatalf("%s: version %d follows %d (versions must be contiguous)", env.AggregateID, env.AggregateVersion, versions[env.AggregateID])
		}
		versions[env.AggregateID] = env.AggregateVersion
		causes[env.CausationID]++
		if home := streams.KeyPartition(e.Key, 8); e.Partition != home {
			t.Fatalf("%s: event in partition %d, its home is %d", env.AggregateID, e.Partition, home)
		}
	}
	if len(events) != lists+commands {
		t.Fatalf("%d events, want %d (one per accepted command)", len(events), lists+commands)
	}
	for n := range commands {
		if c := causes[fmt.Sprintf("cmd-%d", n)]; c != 1 {
			t.Fatalf("command %d has %d events, want exactly 1", n, c)
		}
	}
	t.Logf("%d events, one per command, versions contiguous for %d lists", len(events), len(versions))
}

// Two runner processes in one group split the partitions; one is killed
// with SIGKILL and the other takes its aggregates over with their state.
func TestTwoRunnersOneKilled(t *testing.T) {
	dev := testenv.StartDev(t, t.TempDir())
	bin := testenv.Binary(t, "github.com/recq/recq/internal/fixture/todo/runner")
	start := func(instance string) *testenv.Proc {
		return testenv.Start(t, "todo runner: ready", bin, "-brokers", dev.Addr, "-registry", dev.Registry,
			"-partitions", "8", "-instance", instance, "-session-timeout", "6s")
	}
	a := start("a")
	start("b")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	iv := todoInvoker(ctx, t, dev)
	cl := testenv.Client(t, dev.Addr)
	for {
		g, err := streams.NewAdmin(cl).DescribeGroup(ctx, "todo.runner")
		if err == nil && len(g.Members) == 2 && g.State == "Stable" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("two runners never shared the group: %+v %v", g, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := range 16 {
		id := fmt.Sprintf("list-%d", i)
		if _, err := iv.Send(ctx, todo.Name, id, todo.CreateList{Name: id}); err != nil {
			t.Fatal(err)
		}
		if _, err := iv.Send(ctx, todo.Name, id, todo.AddItem{Title: "first"}); err != nil {
			t.Fatal(err)
		}
	}
	a.Kill9()
	for i := range 16 {
		id := fmt.Sprintf("list-%d", i)
		res, err := iv.Send(ctx, todo.Name, id, todo.AddItem{Title: "second"})
		if err != nil || res.Version != 3 {
			t.Fatalf("%s after a runner was killed: %+v %v (want version 3)", id, res, err)
		}
		_, err = iv.Send(ctx, todo.Name, id, todo.AddItem{Title: "first"})
		var rej *aggregates.RejectedError
		if !errors.As(err, &rej) || rej.Err.Error() != todo.ErrDuplicateItem.Error() {
			t.Fatalf("%s: the surviving runner lost the first item: %v", id, err)
		}
	}
}
