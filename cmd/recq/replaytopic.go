package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/streams"
)

// Headers a replay to a topic adds: where and when each record was first
// written.
const (
	headerReplayTopic     = "recq-replay-topic"
	headerReplayPartition = "recq-replay-partition"
	headerReplayOffset    = "recq-replay-offset"
	headerReplayTime      = "recq-replay-time" // ms since the epoch
)

// destination is --to-topic and its options.
type destination struct {
	topic string
	batch int
	rate  float64
}

// parseDestination checks --to-topic and the flags that go with it.
func parseDestination(topics []string, toTopic, out string, follow bool, batch int, rate string) (destination, error) {
	d := destination{topic: toTopic, batch: batch}
	if rate != "" {
		n, err := strconv.ParseFloat(strings.TrimSuffix(rate, "/s"), 64)
		if err != nil || n <= 0 {
			return d, usagef("--rate %q: want a positive number of records a second, e.g. 5000 or 5000/s", rate)
		}
		d.rate = n
	}
	switch {
	case toTopic == "" && (batch != 0 || rate != ""):
		return d, usagef("--txn-batch and --rate go with --to-topic")
	case toTopic == "":
		return d, nil
	case out != "":
		return d, usagef("--to-topic and --out both say where to write: give one")
	case follow:
		return d, usagef("--to-topic replays a closed window: without --follow")
	case batch < 0:
		return d, usagef("--txn-batch %d: want 0 (no transactions) or more", batch)
	case slices.Contains(topics, toTopic):
		return d, usagef("--to-topic %s is one of the topics replayed: it would read what it writes", toTopic)
	}
	return d, nil
}

// topicSink publishes replayed records, as read (key, value, headers,
// timestamp), to another topic. A record goes to the partition of its
// number when the destination has it, else by its key, so each source
// partition's order is kept. With txn, every batch records are one
// transaction: a reader of the destination sees whole batches or none.
type topicSink struct {
	ctx    context.Context
	cl     *kgo.Client
	topic  string
	parts  int
	batch  int // records per transaction; 0: not transactional
	inTxn  int // records in the open transaction
	rate   float64
	start  time.Time
	n      int
	mu     sync.Mutex
	failed error // the first refused record's
	closed bool
}

// openTopicSink makes the sink's producer; batch 0 is not transactional.
func openTopicSink(ctx context.Context, brokers []string, topic string, parts, batch int, rate float64) (*topicSink, error) {
	opts := []kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(topic)}
	if batch > 0 {
		opts = append(opts, kgo.TransactionalID("recq-replay-"+streams.NewID()))
	}
	cl, err := streams.NewClient(brokers, opts...)
	if err != nil {
		return nil, err
	}
	return &topicSink{ctx: ctx, cl: cl, topic: topic, parts: parts, batch: batch, rate: rate, start: time.Now()}, nil
}

func (s *topicSink) write(r *replayed) error {
	if err := s.refused(); err != nil {
		return err
	}
	if s.batch > 0 && s.inTxn == 0 {
		if err := s.cl.BeginTransaction(); err != nil {
			return err
		}
	}
	src := r.Raw
	p := src.Partition
	if int(p) >= s.parts {
		p = streams.KeyPartition(src.Key, s.parts)
	}
	hs := make([]kgo.RecordHeader, 0, len(src.Headers)+4)
	hs = append(hs, src.Headers...)
	hs = append(hs,
		kgo.RecordHeader{Key: headerReplayTopic, Value: []byte(src.Topic)},
		kgo.RecordHeader{Key: headerReplayPartition, Value: strconv.AppendInt(nil, int64(src.Partition), 10)},
		kgo.RecordHeader{Key: headerReplayOffset, Value: strconv.AppendInt(nil, src.Offset, 10)},
		kgo.RecordHeader{Key: headerReplayTime, Value: strconv.AppendInt(nil, src.Timestamp.UnixMilli(), 10)})
	rec := &kgo.Record{Topic: s.topic, Partition: p, Key: src.Key, Value: src.Value, Headers: hs, Timestamp: src.Timestamp}
	s.cl.Produce(s.ctx, rec, func(_ *kgo.Record, err error) {
		if err != nil {
			s.mu.Lock()
			if s.failed == nil {
				s.failed = err
			}
			s.mu.Unlock()
		}
	})
	s.n++
	if s.batch > 0 {
		if s.inTxn++; s.inTxn >= s.batch {
			if err := s.endTxn(kgo.TryCommit); err != nil {
				return err
			}
		}
	}
	return s.pace()
}

// pace holds the replay to --rate records a second.
func (s *topicSink) pace() error {
	if s.rate <= 0 {
		return nil
	}
	wait := time.Until(s.start.Add(time.Duration(float64(s.n) / s.rate * float64(time.Second))))
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

func (s *topicSink) refused() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return fmt.Errorf("the broker refused a record for %s: %w", s.topic, s.failed)
	}
	return nil
}

// endTxn flushes and ends the open transaction.
func (s *topicSink) endTxn(commit kgo.TransactionEndTry) error {
	err := s.cl.Flush(s.ctx)
	if err == nil {
		err = s.refused()
	}
	if err != nil {
		commit = kgo.TryAbort
	}
	s.inTxn = 0
	return errors.Join(err, s.cl.EndTransaction(s.ctx, commit))
}

func (s *topicSink) close() {
	if !s.closed {
		s.closed = true
		s.cl.Close()
	}
}

func (s *topicSink) commit() error {
	defer s.close()
	if s.inTxn > 0 {
		return s.endTxn(kgo.TryCommit)
	}
	if err := s.cl.Flush(s.ctx); err != nil {
		return err
	}
	return s.refused()
}

// abort ends the open transaction without committing it; batches committed
// before stay (they are whole).
func (s *topicSink) abort() {
	if s.inTxn > 0 {
		ctx := context.WithoutCancel(s.ctx)
		_ = s.cl.AbortBufferedRecords(ctx)
		_ = s.cl.EndTransaction(ctx, kgo.TryAbort)
	}
	s.close()
}

func (s *topicSink) paths() []string { return []string{"topic " + s.topic} }
