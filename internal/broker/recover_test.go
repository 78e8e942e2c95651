package broker_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/internal/broker"
	"github.com/recq/recq/internal/testenv"
)

const (
	crashDirEnv = "RECQ_BROKER_CRASH_DIR"
	crashTopic  = "crash.events"
)

// TestCrashHelper is the process TestOpenTransactionEndedAfterKill kills:
// a persistent broker with a transaction open on it. It runs only when the
// test starts it.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("started by TestOpenTransactionEndedAfterKill")
	}
	b, err := broker.Start(broker.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	cl := testenv.Client(t, b.Addr())
	createTopic(t, cl, crashTopic, 1)
	tx := testenv.Client(t, b.Addr(), kgo.TransactionalID("crash"), kgo.DefaultProduceTopic(crashTopic))
	ctx := ctxT(t)
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := tx.ProduceSync(ctx, &kgo.Record{Value: []byte("committed")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := tx.ProduceSync(ctx, &kgo.Record{Value: []byte("open 1")}, &kgo.Record{Value: []byte("open 2")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fmt.Println("open:", b.Addr())
	select {} // killed here
}

// A broker killed with a transaction open leaves its records without a
// marker. The next start ends it with an abort marker before it serves
// anyone, so a reader deciding transactions by their markers (recq's
// aggregate loads, kcat) is not left waiting for one forever, and a new
// transaction of the same producer id does not seem to commit them.
func TestOpenTransactionEndedAfterKill(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.v")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var seen []string
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "open:") {
		seen = append(seen, sc.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(seen) > 0 && !strings.HasPrefix(sc.Text(), "open:") {
		t.Fatalf("the helper broker did not open its transaction:\n%s", strings.Join(seen, "\n"))
	}

	var log bytes.Buffer
	b, err := broker.Start(broker.Config{DataDir: dir, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !strings.Contains(log.String(), "aborted a transaction left open") {
		t.Errorf("the start after the kill does not say it ended the open transaction; its log:\n%s", log.String())
	}
	// Read uncommitted, markers kept: the open records are followed by an
	// abort marker of their producer.
	cl := testenv.Client(t, b.Addr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{crashTopic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.KeepControlRecords())
	var got []string
	for len(got) < 5 {
		fs := cl.PollFetches(ctxT(t))
		if err := fs.Err0(); err != nil {
			t.Fatalf("reading after %v: %v", got, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			switch {
			case r.Attrs.IsControl() && binary.BigEndian.Uint16(r.Key[2:4]) == 0:
				got = append(got, "abort")
			case r.Attrs.IsControl():
				got = append(got, "commit")
			default:
				got = append(got, string(r.Value))
			}
		})
	}
	want := []string{"committed", "commit", "open 1", "open 2", "abort"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("log after the restart: %q, want %q", got, want)
	}

	// A clean stop needs no recovery: the next start writes nothing.
	b.Close()
	log.Reset()
	b2, err := broker.Start(broker.Config{DataDir: dir, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if strings.Contains(log.String(), "aborted") {
		t.Fatalf("a start after a clean stop aborted something: %s", log.String())
	}
}
