package integration

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/internal/fixture/todo"
	"github.com/recq/recq/internal/testenv"
)

// faultEnv runs the todo system as an operator would, to inject one fault
// into: recq dev, Redis with its append-only file, the todo runner and the
// stats projector (each serving /health/), and a steady stream of commands
// through an invoker.
type faultEnv struct {
	*statsEnv
	runnerBin string
	regAddr   string        // host:port of a separate recq registry, if any
	regProc   *testenv.Proc // that registry
	iv        *aggregates.Invoker

	mu      sync.Mutex
	runners map[string]*testenv.Proc // by instance
	http    map[string]string        // component → its health address

	ctx      context.Context
	stopLoad context.CancelFunc
	sends    sync.WaitGroup
	sent     atomic.Int64
	accepted atomic.Int64
	lastOK   atomic.Int64 // unix nanoseconds of the latest accepted answer
	refused  []error      // under mu
}

const faultLists = 40

// newFaultEnv starts everything, with recq dev's data in dataDir; with
// separateRegistry the components use a recq registry process of their
// own instead of recq dev's.
func newFaultEnv(t *testing.T, dataDir string, separateRegistry bool, rs *testenv.RedisServer) *faultEnv {
	t.Helper()
	f := &faultEnv{statsEnv: newStatsEnvAt(t, rs, dataDir), runners: map[string]*testenv.Proc{}, http: map[string]string{}}
	if separateRegistry {
		f.regAddr = testenv.FreeAddr(t)
		f.startRegistry()
		f.registry = "http://" + f.regAddr
	}
	f.runnerBin = testenv.Binary(t, "github.com/recq/recq/internal/fixture/todo/runner")
	f.startRunner("a")
	projHTTP := testenv.FreeAddr(t)
	f.http["projector"] = projHTTP
	proj := f.projector(1, "p", "-session-timeout", "6s", "-http", projHTTP)
	dumpOnFailure(t, map[string]*testenv.Proc{"projector": proj, "recq dev": f.dev.Proc})
	var cancel context.CancelFunc
	f.ctx, cancel = context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	var err error
	if f.iv, err = aggregates.NewInvoker(f.ctx, []string{f.dev.Addr}, serdeAt(t, f.registry)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.iv.Close)
	for i := range faultLists {
		if _, err := f.iv.Send(f.ctx, todo.Name, fmt.Sprintf("list-%d", i), todo.CreateList{Name: "l"}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// startRegistry starts the separate registry, on the same address each time.
func (f *faultEnv) startRegistry() {
	f.regProc = testenv.Start(f.t, "recq registry: ready", testenv.Recq(f.t), "registry", "--brokers", f.dev.Addr, "--addr", f.regAddr)
}

// startRunner starts a todo runner with instance id (and a 6 s session),
// serving its health on an address of its own.
func (f *faultEnv) startRunner(instance string) *testenv.Proc {
	f.t.Helper()
	addr := testenv.FreeAddr(f.t)
	p := testenv.Start(f.t, "todo runner: ready", f.runnerBin, "-brokers", f.dev.Addr, "-registry", f.registry,
		"-partitions", "8", "-instance", instance, "-session-timeout", "6s", "-http", addr)
	f.mu.Lock()
	f.runners[instance], f.http["runner "+instance] = p, addr
	f.mu.Unlock()
	dumpOnFailure(f.t, map[string]*testenv.Proc{"runner " + instance: p})
	return p
}

// load sends 100 commands a second until stopped. A command without an
// answer is sent again with its id until it is answered; any other error
// (a rejection: a valid command refused) fails the test.
func (f *faultEnv) load() {
	lctx, stop := context.WithCancel(f.ctx)
	f.stopLoad = stop
	f.sends.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for n := 0; lctx.Err() == nil; n++ {
			select {
			case <-lctx.Done():
				return
			case <-tick.C:
			}
			f.sent.Add(1)
			f.sends.Go(func() { f.send(n) })
		}
	})
}

func (f *faultEnv) send(n int) {
	list, id := fmt.Sprintf("list-%d", n%faultLists), fmt.Sprintf("cmd-%d", n)
	for f.ctx.Err() == nil {
		sctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
		_, err := f.iv.Send(sctx, todo.Name, list, todo.AddItem{Title: id, Minutes: n % 7}, aggregates.WithCommandID(id))
		cancel()
		switch {
		case err == nil:
			f.accepted.Add(1)
			f.lastOK.Store(time.Now().UnixNano())
			return
		case !strings.Contains(err.Error(), "send again with WithCommandID"):
			f.mu.Lock()
			f.refused = append(f.refused, fmt.Errorf("command %s refused: %w", id, err))
			f.mu.Unlock()
			return
		}
	}
}

// rate is the accepted commands per second over d.
func (f *faultEnv) rate(d time.Duration) float64 {
	before := f.accepted.Load()
	time.Sleep(d)
	return float64(f.accepted.Load()-before) / d.Seconds()
}

// readiness polls every component's /health/readyz until stop, recording
// whether it answered 503 and when it was last not ready.
type readiness struct {
	mu       sync.Mutex
	notReady map[string]time.Time // component → last time seen not ready
	stop     context.CancelFunc
	done     sync.WaitGroup
}

func (f *faultEnv) watchReadiness() *readiness {
	ctx, stop := context.WithCancel(f.ctx)
	rd := &readiness{notReady: map[string]time.Time{}, stop: stop}
	hc := &http.Client{Timeout: time.Second}
	rd.done.Go(func() {
		for ctx.Err() == nil {
			f.mu.Lock()
			targets := maps.Clone(f.http)
			f.mu.Unlock()
			for name, addr := range targets {
				resp, err := hc.Get("http://" + addr + "/health/readyz")
				if err == nil {
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					rd.mu.Lock()
					rd.notReady[name] = time.Now()
					rd.mu.Unlock()
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return rd
}

// lastNotReady is when name was last seen not ready (zero: never).
func (rd *readiness) lastNotReady(name string) time.Time {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.notReady[name]
}

// fault runs a steady stream, injects the fault (inject returns when the
// dependency is back), and checks: every affected component's readiness
// went false during the fault and came back; commands flow again; nothing
// was lost or doubled; every component still runs, never restarted.
func (f *faultEnv) fault(name string, affected []string, inject func()) {
	t := f.t
	f.load()
	rd := f.watchReadiness()
	defer func() { rd.stop(); rd.done.Wait() }()
	testenv.WaitFor(t, "the stream flowing", time.Minute, func() bool { return f.accepted.Load() > 200 })
	before := f.rate(2 * time.Second)
	start := time.Now()
	inject()
	back := time.Now()
	testenv.WaitFor(t, "a command answered after "+name, 2*time.Minute, func() bool { return f.lastOK.Load() > back.UnixNano() })
	firstOK := time.Unix(0, f.lastOK.Load())
	for _, c := range affected {
		if rd.lastNotReady(c).Before(start) {
			t.Errorf("%s: %s never reported not ready during the fault", name, c)
		}
	}
	// Recovered: the stream runs at its rate again, in a second's window.
	var after float64
	testenv.WaitFor(t, "the stream back at its rate", 2*time.Minute, func() bool {
		after = f.rate(time.Second)
		return after >= 0.8*before
	})
	recovered := time.Now().Add(-time.Second)
	testenv.WaitFor(t, "every component ready again", 2*time.Minute, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		for c := range f.http {
			if time.Since(rd.lastNotReady(c)) < 300*time.Millisecond {
				return false
			}
		}
		return true
	})
	ready := time.Now()
	f.stopLoad()
	f.sends.Wait()
	f.mu.Lock()
	refused := f.refused
	f.mu.Unlock()
	if len(refused) > 0 {
		t.Fatalf("%d valid commands refused, the first: %v", len(refused), refused[0])
	}
	if t.Failed() {
		t.FailNow()
	}
	f.mu.Lock()
	runners := maps.Clone(f.runners)
	f.mu.Unlock()
	for instance, p := range runners {
		select {
		case <-p.Done():
			t.Fatalf("runner %s exited during %s:\n%s", instance, name, p.Output())
		default:
		}
	}
	checkCommandEvents(t, f.dev.Addr, faultLists, int(f.sent.Load()))
	f.waitCaughtUp("todo.stats.v1", 2*time.Minute)
	f.check("todo.stats.v1", f.fold())
	t.Logf("%s: fault %v; after the dependency was back: first answer %v, the stream at its rate %v, every component ready %v; %.0f commands/s before, %.0f after",
		name, back.Sub(start).Round(time.Millisecond), firstOK.Sub(back).Round(time.Millisecond), max(0, recovered.Sub(back)).Round(time.Millisecond),
		ready.Sub(back).Round(time.Millisecond), before, after)
}

// recq dev killed with kill -9 and restarted on its data dir three seconds
// later.
func TestFaultBrokerKilled(t *testing.T) {
	f := newFaultEnv(t, t.TempDir(), false, testenv.RedisPersistent(t))
	f.fault("recq dev killed", []string{"runner a", "projector"}, func() {
		f.dev.Kill9()
		time.Sleep(3 * time.Second)
		f.dev.Restart(t)
	})
}

// recq dev frozen (SIGSTOP) past the components' session timeout, then
// resumed.
func TestFaultBrokerFrozen(t *testing.T) {
	f := newFaultEnv(t, t.TempDir(), false, testenv.RedisPersistent(t))
	f.fault("recq dev frozen", []string{"runner a", "projector"}, func() {
		if err := f.dev.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(8 * time.Second)
		if err := f.dev.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	})
}

// Redis killed and restarted with its append-only file.
func TestFaultRedisKilled(t *testing.T) {
	rs := testenv.RedisPersistent(t)
	f := newFaultEnv(t, t.TempDir(), false, rs)
	f.fault("Redis killed", []string{"projector"}, func() {
		rs.Stop()
		time.Sleep(4 * time.Second)
		rs.Start()
	})
}

// A separate recq registry is down while the runner restarts and while a
// second runner joins: commands wait (the runners retry what they cannot
// decode yet), none is refused, nothing is dead.
func TestFaultRegistryDown(t *testing.T) {
	f := newFaultEnv(t, t.TempDir(), true, testenv.RedisPersistent(t))
	f.fault("registry down", []string{"runner a", "runner b"}, func() {
		f.regProc.Kill9()
		f.runners["a"].Kill9()
		f.startRunner("a")
		time.Sleep(3 * time.Second)
		f.startRunner("b")
		time.Sleep(4 * time.Second)
		f.startRegistry()
	})
	for _, g := range []string{"todo.runner", "todo.stats.v1"} {
		idx, err := deadletter.Load(context.Background(), []string{f.dev.Addr}, g)
		if err != nil {
			t.Fatal(err)
		}
		if items := idx.List(deadletter.Filter{}); len(items) != 0 {
			t.Fatalf("%s: %d dead events after a registry outage, want none: %+v", g, len(items), items[0].Entry)
		}
	}
}

// recq dev's disk fills up and stays full for ten seconds: its data dir is
// on a small tmpfs that another writer fills, then frees. recq dev refuses
// new records with KAFKA_STORAGE_ERROR under 64 MiB free (it keeps that for
// transaction markers) and says so; the runner backs off and goes on.
func TestFaultBrokerDiskFull(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=192m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("a full disk needs a small filesystem of the test's own: mounting a tmpfs at %s failed (%v: %s); run the tests as root", dir, err, out)
	}
	// Registered before recq dev starts, so it runs after recq dev is killed.
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	f := newFaultEnv(t, filepath.Join(dir, "data"), false, testenv.RedisPersistent(t))
	free := func() uint64 {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			t.Fatal(err)
		}
		return st.Bavail * uint64(st.Bsize)
	}
	f.fault("disk full", []string{"runner a"}, func() {
		fill := filepath.Join(dir, "fill")
		file, err := os.Create(fill)
		if err != nil {
			t.Fatal(err)
		}
		// As a disk fills: a few MiB at a time, down to 16 MiB free.
		chunk := make([]byte, 4<<20)
		for free() > 16<<20 {
			if _, err := file.Write(chunk); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		file.Close()
		time.Sleep(10 * time.Second)
		if err := os.Remove(fill); err != nil {
			t.Fatal(err)
		}
	})
	for _, want := range []string{"refusing new records with KAFKA_STORAGE_ERROR", "accepting records"} {
		if !strings.Contains(f.dev.Output(), want) {
			t.Errorf("recq dev never said %q:\n%s", want, f.dev.Output())
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if out := f.runners["a"].Output(); !strings.Contains(out, "KAFKA_STORAGE_ERROR") {
		t.Errorf("the runner never said the broker's disk was full:\n%s", out)
	}
}
