package streams

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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
// [from, end), in order, as a bounded Reader does with one partition. end must not be above the stable offset; records
// of transactions that began below end are decided by markers that may lie
// beyond it, so Read may read past end (without returning what is there).
func (rr *RangeReader) Read(ctx context.Context, topic string, partition int32, from, end int64, fn func(*kgo.Record)) error {
	if from >= end {
		return nil
	}
	s := span{topic: topic, partition: partition, from: from, next: from, end: end}
	err := rr.scan(ctx, topic, partition, from, func(int64) bool { return !s.finished() }, func(r *kgo.Record) {
		for _, c := range s.add(r) {
			fn(c)
		}
	})
	if err != nil {
		return fmt.Errorf("streams: read %q partition %d from %d: %w", topic, partition, from, err)
	}
	return nil
}

// scan moves the reader's client to topic/partition at from and hands every
// polled record to each, for as long as more(the offset after the last
// record seen) holds.
func (rr *RangeReader) scan(ctx context.Context, topic string, partition int32, from int64, more func(next int64) bool, each func(*kgo.Record)) error {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	rr.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}})
	defer rr.cl.RemoveConsumePartitions(map[string][]int32{topic: {partition}})
	for next := from; more(next); {
		fs := rr.cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return topicErr(err)
		}
		for _, r := range fs.Records() {
			next = max(next, r.Offset+1)
			each(r)
		}
	}
	return nil
}

// bounds returns the partition's log start offset and high watermark.
func (rr *RangeReader) bounds(ctx context.Context, topic string, partition int32) (start, end int64, err error) {
	starts, err := rr.adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return 0, 0, topicErr(err)
	}
	ends, err := rr.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, 0, topicErr(err)
	}
	s, ok1 := starts.Lookup(topic, partition)
	e, ok2 := ends.Lookup(topic, partition)
	if !ok1 || !ok2 {
		return 0, 0, ErrTopicNotFound
	}
	if err := errors.Join(s.Err, e.Err); err != nil {
		return 0, 0, topicErr(err)
	}
	return s.Offset, e.Offset, nil
}

// ErrUndecided is returned (wrapped) by ReadKey when the key's history
// cannot be known yet: a transaction holding some of its records is still
// open.
var ErrUndecided = errors.New("a transaction holding the key's records is still open")

// KeyRead is one key's history for ReadKey to read.
type KeyRead struct {
	Topic     string
	Partition int32
	From      int64 // the first offset to read
	Key       []byte
	// Wait bounds how long, once the partition is read to its end, ReadKey
	// waits for the key's records in transactions still open to be
	// decided. The reading itself is bounded only by ctx.
	Wait time.Duration
	// Waiting, if set, is called once the wait has lasted WaitingAfter,
	// with the first undecided record: a wait worth telling an operator
	// about (markers of transactions just ended take milliseconds).
	Waiting      func(first *kgo.Record)
	WaitingAfter time.Duration
}

// ReadKey calls fn with each committed record of kr.Topic/kr.Partition
// whose key is kr.Key, in order, from kr.From to the partition's end (its
// high watermark) as it is when ReadKey is called. Unlike Read it does not
// stop at the last stable offset: a transaction left open by any producer
// holds that offset below records committed after it, and a history read
// only to it would miss them. Records of other keys are not waited for; a
// record of the key in a transaction still open is, up to kr.Wait: ReadKey
// returns once every record of the key below the end is decided (committed
// ones given to fn, aborted ones dropped), or an error wrapping
// ErrUndecided naming the first undecided record.
func (rr *RangeReader) ReadKey(ctx context.Context, kr KeyRead, fn func(*kgo.Record)) error {
	start, end, err := rr.bounds(ctx, kr.Topic, kr.Partition)
	if err != nil {
		return fmt.Errorf("streams: read key %q of %q partition %d: %w", kr.Key, kr.Topic, kr.Partition, err)
	}
	from := max(kr.From, start) // what retention or DeleteRecords removed is not there to wait for
	if from >= end {
		return nil
	}
	var committed CommittedFilter
	// The wait starts once the end is reached with records undecided: it
	// cancels the reading's context when it runs out.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var waited, noticed *time.Timer
	defer func() {
		for _, t := range []*time.Timer{waited, noticed} {
			if t != nil {
				t.Stop()
			}
		}
	}()
	more := func(next int64) bool {
		switch {
		case next < end:
			return true
		case !committed.Undecided():
			return false
		case waited == nil:
			waited = time.AfterFunc(kr.Wait, cancel)
			if kr.Waiting != nil {
				first := committed.FirstUndecided()
				noticed = time.AfterFunc(kr.WaitingAfter, func() { kr.Waiting(first) })
			}
		}
		return true
	}
	err = rr.scan(wctx, kr.Topic, kr.Partition, from, more, func(r *kgo.Record) {
		if !r.Attrs.IsControl() && (r.Offset >= end || !bytes.Equal(r.Key, kr.Key)) {
			return
		}
		for _, c := range committed.Add(r) {
			fn(c)
		}
	})
	if h := committed.FirstUndecided(); err != nil && h != nil && wctx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("streams: read key %q of %q partition %d: %w: offset %d, producer id %d, written %s ago",
			kr.Key, kr.Topic, kr.Partition, ErrUndecided, h.Offset, h.ProducerID, time.Since(h.Timestamp).Round(time.Millisecond))
	}
	if err != nil {
		return fmt.Errorf("streams: read key %q of %q partition %d from %d: %w", kr.Key, kr.Topic, kr.Partition, from, err)
	}
	return nil
}

// Tail returns the raw records among the last n offsets of topic/partition
// below its end: transactional ones whether committed, aborted or open, and
// control records. It is for inspecting what was written last.
func (rr *RangeReader) Tail(ctx context.Context, topic string, partition int32, n int64) ([]*kgo.Record, error) {
	start, end, err := rr.bounds(ctx, topic, partition)
	if err != nil {
		return nil, fmt.Errorf("streams: tail of %q partition %d: %w", topic, partition, err)
	}
	from := max(start, end-n)
	if from >= end {
		return nil, nil
	}
	var out []*kgo.Record
	err = rr.scan(ctx, topic, partition, from, func(next int64) bool { return next < end }, func(r *kgo.Record) {
		if r.Offset >= from && r.Offset < end {
			out = append(out, r)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("streams: tail of %q partition %d: %w", topic, partition, err)
	}
	return out, nil
}

// Close closes the reader's client.
func (rr *RangeReader) Close() { rr.cl.Close() }
