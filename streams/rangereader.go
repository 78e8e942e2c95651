package streams

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// RangeReader reads stretches of single partitions: the committed records
// between two offsets. It is how an aggregate's history after a snapshot,
// or the registry's log after its last read, is loaded. One long-lived
// client is moved from range to range, since a client per read would cost a
// connection and a metadata round trip each time. Reads are serialised.
type RangeReader struct {
	mu  sync.Mutex
	cl  *kgo.Client
	adm *kadm.Client
}

// NewRangeReader returns a RangeReader for brokers.
func NewRangeReader(brokers []string, opts ...kgo.Opt) (*RangeReader, error) {
	cl, err := NewClient(brokers, append([]kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{}),
		// Every offset must be seen to know a range is done; transactions
		// are decided from their markers (CommittedFilter).
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.KeepControlRecords(),
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	return &RangeReader{cl: cl, adm: kadm.NewClient(cl)}, nil
}

// Stable returns the partition's last stable offset: every record below it
// is committed or aborted, so it is the end a consistent read can go to.
func (rr *RangeReader) Stable(ctx context.Context, topic string, partition int32) (int64, error) {
	offs, err := rr.adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("streams: stable offset of %q: %w", topic, topicErr(err))
	}
	o, ok := offs.Lookup(topic, partition)
	if !ok {
		return 0, fmt.Errorf("streams: stable offset of %q partition %d: %w", topic, partition, ErrTopicNotFound)
	}
	if o.Err != nil {
		return 0, fmt.Errorf("streams: stable offset of %q partition %d: %w", topic, partition, topicErr(o.Err))
	}
	return o.Offset, nil
}

// Read calls fn with each committed record of topic/partition in
// [from, end), in order. end must not be above the stable offset; records
// of transactions that began below end are decided by markers that may lie
// beyond it, so Read may read past end (without returning what is there).
func (rr *RangeReader) Read(ctx context.Context, topic string, partition int32, from, end int64, fn func(*kgo.Record)) error {
	if from >= end {
		return nil
	}
	rr.mu.Lock()
	defer rr.mu.Unlock()
	rr.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}})
	defer rr.cl.RemoveConsumePartitions(map[string][]int32{topic: {partition}})
	var committed CommittedFilter
	for next := from; next < end || committed.Undecided(); {
		fs := rr.cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("streams: read %q partition %d from %d: %w", topic, partition, from, topicErr(err))
		}
		for _, r := range fs.Records() {
			next = max(next, r.Offset+1)
			if r.Offset >= end && !r.Attrs.IsControl() {
				continue
			}
			for _, c := range committed.Add(r) {
				fn(c)
			}
		}
	}
	return nil
}

// Close closes the reader's client.
func (rr *RangeReader) Close() { rr.cl.Close() }
