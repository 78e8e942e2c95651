package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

// --to-topic publishes the committed records as read, each source
// partition's order kept (partitions the destination lacks go by key),
// with headers saying where each came from; with --txn-batch they come in
// committed transactions. Then the destination is replayed like any topic.
func TestReplayToTopic(t *testing.T) {
	env := startShop(t)
	testenv.Topic(t, env.addr, "shop.copy", 2) // fewer partitions than shop's 3
	_, stderr, err := env.run(t, "replay", "shop", "--to-topic", "shop.copy", "--txn-batch", "3", "--rate", "1000/s")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "8 written to topic shop.copy") {
		t.Fatalf("summary: %s", stderr)
	}
	cl := testenv.Client(t, env.addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"shop.copy": {0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.KeepControlRecords())
	var got []*kgo.Record
	markers := 0
	for len(got) < 8 || markers < 3 {
		fs := cl.PollFetches(testCtx(t))
		if err := fs.Err0(); err != nil {
			t.Fatalf("reading shop.copy after %d records: %v", len(got), err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Attrs.IsControl() {
				markers++
				return
			}
			if !r.Attrs.IsTransactional() {
				t.Errorf("offset %d of shop.copy/%d is not transactional", r.Offset, r.Partition)
			}
			got = append(got, r)
		})
	}
	byOrigin := map[string]*kgo.Record{}
	// Per destination partition and source partition: the last source
	// offset seen, in the destination's order.
	last := map[[2]int32]int64{}
	for _, r := range got {
		h := func(k string) string { v, _ := streams.Header(r, k); return v }
		src := h(headerReplayTopic) + "/" + h(headerReplayPartition) + "@" + h(headerReplayOffset)
		byOrigin[src] = r
		var p int32
		var off int64
		fmt.Sscan(h(headerReplayPartition), &p)
		fmt.Sscan(h(headerReplayOffset), &off)
		if want := p; p >= 2 {
			want = streams.KeyPartition(r.Key, 2)
			if r.Partition != want {
				t.Errorf("%s went to partition %d, want %d (by key)", src, r.Partition, want)
			}
		} else if r.Partition != want {
			t.Errorf("%s went to partition %d, want its own number", src, r.Partition)
		}
		k := [2]int32{r.Partition, p}
		if prev, ok := last[k]; ok && off <= prev {
			t.Errorf("source partition %d out of order in shop.copy/%d: %d after %d", p, r.Partition, off, prev)
		}
		last[k] = off
	}
	for _, e := range env.expected(nil) {
		src := fmt.Sprintf("shop/%d@%d", e.partition, e.offset)
		r := byOrigin[src]
		if r == nil {
			t.Errorf("%s not in shop.copy", src)
			continue
		}
		typ, _ := streams.Header(r, "recq-type")
		at, _ := streams.Header(r, headerReplayTime)
		if string(r.Key) != e.key || typ != e.typ || !r.Timestamp.Equal(shopT0.Add(time.Duration(e.minute)*time.Minute)) || at != fmt.Sprint(r.Timestamp.UnixMilli()) {
			t.Errorf("%s copied as key %q type %q at %v (%s)", src, r.Key, typ, r.Timestamp, at)
		}
	}
	if len(got) != len(env.expected(nil)) {
		t.Fatalf("%d records in shop.copy, want %d", len(got), len(env.expected(nil)))
	}

	// The copy decodes as the original does.
	out, stderr, err := env.run(t, "replay", "shop.copy", "--type", "shop.PaymentReceived", "--where", "amount>100")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if n := strings.Count(out, "\n"); n != 2 {
		t.Fatalf("replaying the copy: %d payments over 100, want 2:\n%s", n, out)
	}
}

func TestReplayToTopicBadInput(t *testing.T) {
	env := startShop(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--to-topic", "nowhere"}, `--to-topic "nowhere" does not exist`},
		{[]string{"--to-topic", "shop"}, "is one of the topics replayed"},
		{[]string{"--to-topic", "x", "--out", "a.jsonl"}, "give one"},
		{[]string{"--txn-batch", "5"}, "go with --to-topic"},
		{[]string{"--to-topic", "x", "--rate", "fast"}, `--rate "fast"`},
	} {
		_, _, err := env.run(t, append([]string{"replay", "shop"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("replay %v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
