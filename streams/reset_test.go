package streams_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

func TestResetGroup(t *testing.T) {
	addr := testenv.Kafka(t)
	testenv.Topic(t, addr, "ledger", 2)
	ctx := ctxT(t)
	prod := testenv.Client(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for i := range 20 {
		recs = append(recs, &kgo.Record{Topic: "ledger", Partition: int32(i % 2), Value: []byte(fmt.Sprint(i))})
	}
	// The first 10 records (5 per partition) are older than the cut.
	if err := prod.ProduceSync(ctx, recs[:10]...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	cut := time.Now()
	time.Sleep(20 * time.Millisecond)
	if err := prod.ProduceSync(ctx, recs[10:]...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl := testenv.Client(t, addr)
	raw := kadm.NewClient(cl)
	commit := kadm.Offsets{}
	commit.Add(kadm.Offset{Topic: "ledger", Partition: 0, At: 7, LeaderEpoch: -1})
	commit.Add(kadm.Offset{Topic: "ledger", Partition: 1, At: 3, LeaderEpoch: -1})
	if _, err := raw.CommitOffsets(ctx, "billing", commit); err != nil {
		t.Fatal(err)
	}
	adm := streams.NewAdmin(cl)
	for _, tc := range []struct {
		to     streams.StartAt
		dryRun bool
		want   string
	}{
		{streams.FromBeginning(), true, "[{ledger 0 7 0} {ledger 1 3 0}]"},
		{streams.FromBeginning(), false, "[{ledger 0 7 0} {ledger 1 3 0}]"},
		{streams.FromEnd(), false, "[{ledger 0 0 10} {ledger 1 0 10}]"},
		{streams.FromTime(cut), false, "[{ledger 0 10 5} {ledger 1 10 5}]"},
		{streams.FromOffset(99), false, "[{ledger 0 5 10} {ledger 1 5 10}]"},
	} {
		changes, err := adm.ResetGroup(ctx, "billing", tc.to, tc.dryRun)
		if err != nil {
			t.Fatalf("reset to %v: %v", tc.to, err)
		}
		if got := fmt.Sprint(changes); got != tc.want {
			t.Fatalf("reset to %v (dry run %v): %s, want %s", tc.to, tc.dryRun, got, tc.want)
		}
	}
	// The last reset was committed: a consumer of the group resumes there.
	offs, err := raw.FetchOffsets(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("ledger", 1); o.At != 10 {
		t.Fatalf("committed offset after reset: %d, want 10", o.At)
	}

	if _, err := adm.ResetGroup(ctx, "nobody", streams.FromBeginning(), false); !errors.Is(err, streams.ErrGroupNotFound) {
		t.Fatalf("group without commits: want ErrGroupNotFound, got %v", err)
	}
	if _, err := adm.ResetGroup(ctx, "billing", streams.FromBeginning(), false, "missing"); !errors.Is(err, streams.ErrTopicNotFound) {
		t.Fatalf("missing topic: want ErrTopicNotFound, got %v", err)
	}

	// A group with a member is refused.
	member := testenv.Client(t, addr, kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("ledger"))
	deadline := time.Now().Add(20 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		member.PollRecords(pctx, 1) // joins the group
		cancel()
		_, err := adm.ResetGroup(ctxT(t), "billing", streams.FromBeginning(), false)
		if errors.Is(err, streams.ErrGroupActive) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reset with an active member: want ErrGroupActive, got %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
