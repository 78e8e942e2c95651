package integration

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

// stopped reports whether process pid is stopped (by SIGSTOP).
func stopped(t *testing.T, pid int) bool {
	t.Helper()
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	rest := stat[bytes.LastIndexByte(stat, ')')+1:]
	return bytes.HasPrefix(bytes.TrimSpace(rest), []byte("T"))
}

// A member frozen past its session timeout loses its partitions to the
// other member, which claims them in the store; it resumes with a batch in
// hand, whose commit is fenced. This is what the store's epochs are for:
// nothing of the zombie's may be applied twice, and nothing may be
// skipped. To be sure it has a batch in hand, member a freezes itself
// (SIGSTOP) while decoding an event, when the test tells it to (SIGUSR1,
// with RECQ_FREEZE_ON_SIGUSR1); the test resumes it (SIGCONT) once b owns
// every partition, and a must log a fenced commit after that.
//
// Lists whose events die stream in too. A zombie can add a second raw copy
// of a dead event to the queue topic: woken with the event in hand, it
// writes the entry its successor wrote already (a Kafka produce cannot be
// fenced by the store's epoch), then its commit is fenced. The copy has the
// same id and generation, so the index, and with it recq dlq list, redrive
// and discard, see one entry; the test checks that view, not the raw
// copies, and logs how many there are.
//
// Before the fix (commits of the poll after a fenced one could skip records) it
// lost events about one run in two. Woken, a must not claim the partitions
// back: the group coordinator no longer lists it, so it waits for franz-go
// to take them away, and b's commits are never fenced.
func TestProjectorZombieFenced(t *testing.T) {
	const group = "todo.stats.v1"
	e := newStatsEnv(t, testenv.Redis(t))
	httpA, httpB := testenv.FreeAddr(t), testenv.FreeAddr(t)
	a := e.projectorEnv([]string{"RECQ_FREEZE_ON_SIGUSR1=1"}, 1, "zombie-a", "-session-timeout", "6s", "-http", httpA, "-max-poll", "0")
	b := e.projector(1, "zombie-b", "-session-timeout", "6s", "-http", httpB, "-max-poll", "0")
	dumpOnFailure(t, map[string]*testenv.Proc{"member a": a, "member b": b})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("member a's status: %+v", status(t, httpA))
			t.Logf("member b's status: %+v", status(t, httpB))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Bursts of 3000 events every ~0.5 s for ~10 s: both members have
	// batches in hand when a freezes and when it resumes.
	const events = 60_000
	published := e.publishing(ctx, events, 300, 3000, 400*time.Millisecond)
	// Freeze a only in a stable group: frozen during a rebalance, it would
	// hold the group for the rebalance timeout (60 s), not the session's.
	testenv.WaitFor(t, "both members owning partitions and a applying", time.Minute, func() bool {
		ownsA, appliedA := owned(t, httpA)
		ownsB, _ := owned(t, httpB)
		return ownsB > 0 && appliedA > 0 && ownsA+ownsB == 8
	})
	e.waitMidStream("a random point mid-stream", group, e.applied(group)+rand.Int64N(5000), events)
	e.publishNeg(ctx, "neg-zombie-1", -1)
	pid := a.Pid()
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	// a freezes at its next event: a burst over every partition now and
	// then makes sure it has one, even if the stream is all applied.
	nudged := time.Now()
	testenv.WaitFor(t, "member a frozen with an event in hand", time.Minute, func() bool {
		if time.Since(nudged) > 2*time.Second {
			nudged = time.Now()
			if err := e.publish(ctx, 500, 300, 500, 0); err != nil {
				t.Fatal(err)
			}
		}
		return stopped(t, pid)
	})
	frozen := time.Now()
	e.publishNeg(ctx, "neg-zombie-2", -2)
	testenv.WaitFor(t, "member b owning every partition", time.Minute, func() bool { ownsB, _ := owned(t, httpB); return ownsB == 8 })
	t.Logf("a frozen with %d events applied; b took its partitions after %v", e.applied(group), time.Since(frozen).Round(time.Millisecond))
	resumed := len(a.Output())
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "member a's commit of the batch in hand fenced", time.Minute, func() bool {
		return strings.Contains(a.Output()[resumed:], "claimed by another owner")
	})
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	e.publishNeg(ctx, "neg-zombie-3", -3)
	e.waitCaughtUp(group, 3*time.Minute)
	t.Logf("fenced commits after the resume: a %d; in all: a %d, b %d", strings.Count(a.Output()[resumed:], "claimed by another owner"),
		strings.Count(a.Output(), "claimed by another owner"), strings.Count(b.Output(), "claimed by another owner"))
	// The zombie asks the coordinator before claiming again: it must not
	// take the partitions back from b (it did, about one run in three,
	// before it asked).
	if n := strings.Count(b.Output(), "claimed by another owner"); n > 0 {
		t.Errorf("member b had %d commits fenced: the zombie claimed its partitions", n)
	}
	dead := e.deadNeg()
	e.listedOnce(group, dead)
	e.check(group, e.foldWithout(dead))
}

// listedOnce checks that recq dlq list shows each of want once, pending, and
// nothing else, and logs the raw copies in the queue topic.
func (e *statsEnv) listedOnce(group string, want map[string]bool) {
	e.t.Helper()
	listed := map[string]int{}
	for _, it := range e.dlqList(group) {
		listed[it.ID]++
		if !want[it.ID] || it.Status != "pending" {
			e.t.Errorf("%s listed as %s; want only the dead events, pending", it.ID, it.Status)
		}
	}
	for id := range want {
		if listed[id] != 1 {
			e.t.Errorf("%s listed %d times, want once", id, listed[id])
		}
	}
	copies := 0
	for _, r := range testenv.ReadTopic(e.t, e.dev.Addr, deadletter.Topic(group)) {
		if id, _ := streams.Header(r, deadletter.HeaderID); want[id] {
			copies++
		}
	}
	e.t.Logf("%d dead events listed once each; %d raw copies in %s", len(want), copies, deadletter.Topic(group))
	if e.t.Failed() {
		e.t.FailNow()
	}
}
