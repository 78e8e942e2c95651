package integration

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

type groupJSON struct {
	Partitions []struct {
		Topic     string
		Partition int32
		Committed int64
	}
}

func describeGroup(t *testing.T, addr, group string) map[int32]int64 {
	t.Helper()
	var g groupJSON
	out := recq(t, addr, "", "groups", "describe", group, "-o", "json")
	if err := json.Unmarshal([]byte(out.Stdout), &g); err != nil {
		t.Fatalf("groups describe: %v\n%s", err, out.Stdout)
	}
	m := map[int32]int64{}
	for _, p := range g.Partitions {
		m[p.Partition] = p.Committed
	}
	return m
}

// The broker process is killed with SIGKILL while a producer is writing; after
// a restart on the same data dir every acknowledged record is there exactly
// once, and the group's committed offsets are unchanged. Two rounds, so a
// restarted broker's own state also survives the next crash.
func TestDevKill9KeepsAckedRecordsAndGroupOffsets(t *testing.T) {
	dir := t.TempDir()
	dev := testenv.StartDev(t, dir)
	addr := dev.Addr
	recq(t, addr, "", "topic", "create", "durable", "--partitions", "4")

	acked := map[string]bool{}
	next := 0
	for round := range 2 {
		// A group commits part of what is there, through the CLI; the
		// second round moves the same group further.
		if round == 0 {
			recq(t, addr, strings.Repeat("seed\n", 1000), "produce", "durable")
		}
		recq(t, addr, "", "consume", "durable", "--group", "g", "--max", "300", "--format", "raw")
		before := describeGroup(t, addr, "g")

		// A producer writing as fast as it can while the broker dies.
		p, err := streams.NewPublisher([]string{addr}, streams.WithClientOptions(kgo.RecordDeliveryTimeout(5*time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var (
			mu sync.Mutex
			wg sync.WaitGroup
		)
		enough := make(chan struct{})
		var once sync.Once
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				v := strconv.Itoa(next)
				next++
				r := &kgo.Record{Topic: "durable", Key: []byte(strconv.Itoa(next % 16)), Value: []byte(v)}
				p.PublishAsync(ctx, r, func(_ *kgo.Record, err error) {
					if err != nil {
						return
					}
					mu.Lock()
					acked[v] = true
					n := len(acked)
					mu.Unlock()
					if n >= 3000*(round+1) {
						once.Do(func() { close(enough) })
					}
				})
			}
		}()
		select {
		case <-enough:
		case <-time.After(60 * time.Second):
			t.Fatal("producer did not get 3000 acks in 60s")
		}
		dev.Kill9()
		cancel()
		wg.Wait()
		closeCtx, closeCancel := context.WithTimeout(context.Background(), 10*time.Second)
		p.Close(closeCtx) // fails what the dead broker never acknowledged
		closeCancel()

		dev = testenv.RestartDev(t, addr, dir)
		if after := describeGroup(t, addr, "g"); !equalOffsets(before, after) {
			t.Fatalf("round %d: committed offsets changed across kill -9: before %v after %v", round, before, after)
		}
		seen := readAll(t, addr, "durable")
		mu.Lock()
		for v := range acked {
			if seen[v] == 0 {
				t.Fatalf("round %d: acknowledged record %s lost (of %d acked)", round, v, len(acked))
			}
		}
		mu.Unlock()
		for v, n := range seen {
			if n > 1 && v != "seed" {
				t.Fatalf("round %d: record %s stored %d times", round, v, n)
			}
		}
		t.Logf("round %d: %d acked, %d stored, committed %v", round, len(acked), len(seen), before)
	}
	if err := dev.Stop(sigint, 30*time.Second); err != nil {
		t.Fatalf("recq dev after SIGINT: %v\n%s", err, dev.Output())
	}
}

func equalOffsets(a, b map[int32]int64) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for p, o := range a {
		if b[p] != o {
			return false
		}
	}
	return true
}

// readAll counts each value in topic, reading to its current end.
func readAll(t *testing.T, addr, topic string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for _, r := range testenv.ReadTopic(t, addr, topic) {
		seen[string(r.Value)]++
	}
	return seen
}
