package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/internal/testenv"
)

// BenchmarkReplay replays 1,000,000 Avro records to JSON lines with the
// recq binary, beside kcat reading the same raw records, and reports each
// one's rate and peak RSS. Run with -benchtime 1x.
func BenchmarkReplay(b *testing.B) {
	const n = 1_000_000
	addr := testenv.Kafka(b)
	reg, serde := startTestRegistry(b)
	testenv.Topic(b, addr, "bench", 4)
	ctx := b.Context()
	cl := testenv.Client(b, addr)
	batch := make([]*kgo.Record, 0, 5000)
	for i := range n {
		v, typ, err := serde.Encode(ctx, "bench", orderV1{fmt.Sprint("o", i), int64(i), "open"})
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, &kgo.Record{Topic: "bench", Key: []byte(fmt.Sprint("o", i%1000)), Value: v,
			Headers: []kgo.RecordHeader{{Key: "recq-type", Value: []byte(typ)}, {Key: "recq-id", Value: []byte(fmt.Sprint("id-", i))}}})
		if len(batch) == cap(batch) {
			if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	bin := testenv.Recq(b)
	dir := b.TempDir()
	run := func(name string, cmd *exec.Cmd) {
		t0 := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s: %v\n%s", name, err, out)
		}
		took := time.Since(t0)
		rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
		b.Logf("%s: %.0f records/s, %v, peak RSS %d MB", name, n/took.Seconds(), took.Round(time.Millisecond), rss/1024)
	}
	for b.Loop() {
		out, _ := os.Create(filepath.Join(dir, "kcat.out"))
		k := exec.Command("kcat", "-C", "-e", "-q", "-o", "beginning", "-b", addr, "-t", "bench")
		k.Stdout = out
		t0 := time.Now()
		if err := k.Run(); err != nil {
			b.Fatal(err)
		}
		took := time.Since(t0)
		out.Close()
		b.Logf("kcat raw: %.0f records/s, %v, peak RSS %d MB", n/took.Seconds(), took.Round(time.Millisecond), k.ProcessState.SysUsage().(*syscall.Rusage).Maxrss/1024)
		run("recq replay JSONL", exec.Command(bin, "replay", "bench", "--brokers", addr, "--registry", reg, "--out", filepath.Join(dir, "r.jsonl")))
		run("recq replay CSV", exec.Command(bin, "replay", "bench", "--brokers", addr, "--registry", reg, "--out", filepath.Join(dir, "r.csv")))
	}
}
