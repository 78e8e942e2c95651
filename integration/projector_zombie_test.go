package integration

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/recq/recq/internal/testenv"
)

// pidOf finds the process whose command line holds args, in order.
func pidOf(t *testing.T, args ...string) int {
	t.Helper()
	want := []byte(strings.Join(args, "\x00") + "\x00")
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmd, err := os.ReadFile(d + "/cmdline")
		if err == nil && bytes.Contains(cmd, want) {
			pid, _ := strconv.Atoi(filepath.Base(d))
			return pid
		}
	}
	t.Fatalf("no process with %q", args)
	return 0
}

// A member frozen (SIGSTOP) past its session timeout loses its partitions
// to the other member, which claims them in the store; it resumes
// (SIGCONT) with batches in hand, whose commits are fenced. This is what
// the store's epochs are for: nothing of the zombie's may be applied
// twice, and nothing may be skipped.
//
// Before the fix (commits of the poll after a fenced one could skip records) it
// lost events about one run in two.
func TestProjectorZombieFenced(t *testing.T) {
	const group = "todo.stats.v1"
	e := newStatsEnv(t, testenv.Redis(t))
	a, b, httpA, httpB := e.twoMembers("zombie-", "0")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Bursts of 3000 events every ~0.5 s for ~10 s: both members have
	// batches in hand when a freezes and when it resumes.
	const events = 60_000
	published := e.publishing(ctx, events, 300, 3000, 400*time.Millisecond)
	// Freeze a only in a stable group: frozen during a rebalance, it would
	// hold the group for the rebalance timeout (60 s), not the session's.
	waitFor(t, "both members owning partitions and a applying", time.Minute, func() bool {
		ownsA, appliedA := owned(t, httpA)
		ownsB, _ := owned(t, httpB)
		return ownsB > 0 && appliedA > 0 && ownsA+ownsB == 8
	})
	// Freeze it at a random point while published events wait to be
	// applied, so it has work in hand.
	e.waitMidStream("a random point mid-stream", group, e.applied(group)+rand.Int64N(5000), events)
	pid := pidOf(t, "-instance", "zombie-a")
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	waitFor(t, "member b owning every partition", time.Minute, func() bool { ownsB, _ := owned(t, httpB); return ownsB == 8 })
	t.Logf("a frozen with %d events applied; b took its partitions after %v", e.applied(group), time.Since(frozen).Round(time.Millisecond))
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(group, 3*time.Minute)
	t.Logf("fenced commits: a %d, b %d", strings.Count(a.Output(), "claimed by another owner"), strings.Count(b.Output(), "claimed by another owner"))
	e.check(group, e.fold())
}
