// Package kafkastore keeps the schema registry's log on a Kafka topic
// (`_schemas` by default): one partition, compacted, so the registry
// survives restarts and every instance pointed at the topic serves the same
// data.
//
// # Single writer: the earliest claim wins
//
// A registry decides a write on the whole log (next id, next version,
// compatibility) and asks to append at the position it read to. Each store
// handle writes inside a Kafka transaction of its own transactional id whose
// first record is a NOOP: the offset Kafka gives that NOOP is the writer's
// claim. The writer then waits until the last stable offset reaches its
// claim (every transaction that claimed earlier has committed or aborted;
// its own open transaction holds the stable offset there) and reads the
// committed records between the decided position and its claim. If there is
// any (a committed NOOP counts: it is an earlier claim that won, even when
// that claim's data lies after ours), someone else changed the log after
// the decision: it aborts and
// reports registry.ErrConflict, and the registry reads the news and decides
// again. Otherwise it appends its records and commits.
//
// Claims are ordered by offset and each writer waits only for earlier
// claims, so of writers racing from one position exactly one commits and
// the next ones see its records: two instances never hand out one schema id
// twice. Aborted attempts leave only markers and NOOPs, which change nothing,
// so losers never invalidate each other (no livelock). A writer that dies
// mid-transaction holds the others for at most the transaction timeout
// (10 s), after which the broker aborts it. A Write returns only once its
// records are below the last stable offset, i.e. visible to every reader
// (a later claim can sit between a writer's NOOP and its data until that
// claim ends).
//
// Positions are Kafka offsets. They skip transaction markers and aborted
// records, which the contract allows (positions need not be dense).
package kafkastore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/schema/registry"
	"github.com/recq/recq/streams"
)

// DefaultTopic is the topic the registry keeps its log on, as Confluent's.
const DefaultTopic = "_schemas"

// noopKey marks the record that starts every write transaction; the registry
// ignores its key type (Confluent's registry writes NOOP records too), and
// Read leaves it out: it is this store's mechanism, not registry data.
var noopKey = []byte(`{"keytype":"NOOP","magic":0}`)

// Store is a registry.Store on a Kafka topic.
type Store struct {
	brokers []string
	topic   string
	cl      *kgo.Client // topic checks at Open

	rd *streams.RangeReader

	writeMu sync.Mutex  // one transaction at a time per handle
	txn     *kgo.Client // transactional writer, made on first write; nil after a failure
}

// writeTimeout bounds one write transaction, so a writer stuck behind a
// broker problem reports an error instead of holding the registry.
const writeTimeout = 15 * time.Second

// txnTimeout is how long a writer that died mid-transaction can hold the
// log's end before the broker aborts its transaction.
const txnTimeout = 10 * time.Second

var _ registry.Store = (*Store)(nil)

// Open returns a store on topic (DefaultTopic if empty), creating the topic
// (one partition, cleanup.policy=compact) when it does not exist, and
// checking an existing one has exactly one partition, since the log's order
// is the order of one partition.
func Open(ctx context.Context, brokers []string, topic string) (*Store, error) {
	if topic == "" {
		topic = DefaultTopic
	}
	cl, err := streams.Dial(ctx, brokers)
	if err != nil {
		return nil, fmt.Errorf("kafkastore: %w", err)
	}
	s := &Store{brokers: brokers, topic: topic, cl: cl}
	if err := s.ensureTopic(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	if s.rd, err = streams.NewRangeReader(brokers); err != nil {
		cl.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) ensureTopic(ctx context.Context) error {
	adm := streams.NewAdmin(s.cl)
	if err := adm.EnsureTopic(ctx, streams.TopicSpec{Name: s.topic, Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact"}}); err != nil {
		return fmt.Errorf("kafkastore: %w", err)
	}
	info, err := adm.DescribeTopic(ctx, s.topic)
	if err != nil {
		return fmt.Errorf("kafkastore: %w", err)
	}
	if n := len(info.Partitions); n != 1 {
		return fmt.Errorf("kafkastore: topic %q has %d partitions; the registry's log needs exactly 1 (use another topic)", s.topic, n)
	}
	if p := info.Configs["cleanup.policy"]; p != "compact" {
		return fmt.Errorf("kafkastore: topic %q has cleanup.policy=%q; the registry's log needs compact, or retention would delete schemas (set it with your Kafka tools, or use another topic)", s.topic, p)
	}
	return nil
}

// Close releases the store's clients.
func (s *Store) Close() {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.txn != nil {
		s.txn.Close()
	}
	s.rd.Close()
	s.cl.Close()
}

// end returns the last stable offset: everything before it is committed or
// aborted, so a read-committed reader sees exactly the committed records.
func (s *Store) end(ctx context.Context) (int64, error) {
	end, err := s.rd.Stable(ctx, s.topic, 0)
	if err != nil {
		return 0, fmt.Errorf("kafkastore: %w", err)
	}
	return end, nil
}

// Read implements registry.Store. Finding nothing new costs one offset lookup.
func (s *Store) Read(ctx context.Context, from int64) ([]registry.Record, int64, error) {
	end, err := s.end(ctx)
	if err != nil {
		return nil, 0, err
	}
	if from > end {
		return nil, 0, fmt.Errorf("kafkastore: read from position %d beyond the end of %q at %d (was the topic deleted or truncated? restart the registry)", from, s.topic, end)
	}
	if from == end {
		return nil, end, nil
	}
	out, err := s.readRange(ctx, from, end)
	// NOOPs are this store's mechanism, not registry data.
	out = slices.DeleteFunc(out, func(r registry.Record) bool { return bytes.Equal(r.Key, noopKey) })
	return out, end, err
}

// readRange returns the committed records in [from, end), NOOPs included.
func (s *Store) readRange(ctx context.Context, from, end int64) ([]registry.Record, error) {
	var out []registry.Record
	err := s.rd.Read(ctx, s.topic, 0, from, end, func(r *kgo.Record) {
		out = append(out, registry.Record{Key: r.Key, Value: r.Value})
	})
	if err != nil {
		return nil, fmt.Errorf("kafkastore: %w", err)
	}
	return out, nil
}

// awaitStable waits until the last stable offset reaches claim: every
// transaction that started before it has ended.
func (s *Store) awaitStable(ctx context.Context, claim int64) error {
	for pause := time.Millisecond; ; pause = min(2*pause, 10*time.Millisecond) {
		end, err := s.end(ctx)
		if err != nil || end >= claim {
			return err
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return fmt.Errorf("kafkastore: waiting for earlier writers to finish: %w", ctx.Err())
		}
	}
}

// Write implements registry.Store (see the package documentation).
func (s *Store) Write(ctx context.Context, at int64, records []registry.Record) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if s.txn == nil {
		// A transactional id per handle: handles never fence each other;
		// the NOOP's offset is what orders them.
		cl, err := streams.NewClient(s.brokers,
			kgo.TransactionalID("recq-registry-"+s.topic+"-"+streams.NewID()),
			kgo.TransactionTimeout(txnTimeout),
			kgo.DefaultProduceTopic(s.topic))
		if err != nil {
			return err
		}
		s.txn = cl
	}
	err := s.write(ctx, s.txn, at, records)
	if aborted(err) {
		// The broker ended our transaction (it timed out, or the epoch
		// moved on): nothing of it is visible, so it is a conflict, and the
		// registry re-reads and decides again.
		err = fmt.Errorf("%w: %w", err, registry.ErrConflict)
	}
	if err != nil && (!errors.Is(err, registry.ErrConflict) || errors.Is(err, errAbortFailed) || aborted(err)) {
		// Unless a conflict was cleanly aborted, the client's transaction
		// state is uncertain (kgo keeps a transaction open when an abort
		// does not complete): the next write starts with a fresh client.
		s.txn.Close()
		s.txn = nil
	}
	return err
}

func (s *Store) write(ctx context.Context, cl *kgo.Client, at int64, records []registry.Record) error {
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("kafkastore: begin transaction: %w", err)
	}
	noop, err := cl.ProduceSync(ctx, &kgo.Record{Key: noopKey, Value: []byte("{}")}).First()
	if err != nil {
		return s.abort(cl, fmt.Errorf("kafkastore: start write: %w", err))
	}
	if noop.Offset < at {
		return s.abort(cl, fmt.Errorf("kafkastore: write at position %d beyond the end of %q at %d (was the topic deleted or truncated? restart the registry)", at, s.topic, noop.Offset))
	}
	if noop.Offset > at {
		if err := s.awaitStable(ctx, noop.Offset); err != nil {
			return s.abort(cl, err)
		}
		// A committed NOOP in between is an earlier claim that won, even if
		// its data lies after our claim; aborted claims left nothing visible.
		news, err := s.readRange(ctx, at, noop.Offset)
		if err != nil {
			return s.abort(cl, err)
		}
		if len(news) > 0 {
			return s.abort(cl, fmt.Errorf("kafkastore: write at %d: another writer committed since: %w", at, registry.ErrConflict))
		}
	}
	recs := make([]*kgo.Record, len(records))
	for i, r := range records {
		recs[i] = &kgo.Record{Key: r.Key, Value: r.Value}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return s.abort(cl, fmt.Errorf("kafkastore: write: %w", err))
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		// Abort what may still be open, or it would hold every reader and
		// writer back until the transaction timeout.
		return s.abort(cl, fmt.Errorf("kafkastore: commit: %w", err))
	}
	// A later claim may have taken an offset between our NOOP and our data;
	// until it ends, the stable offset hides our records. The contract says
	// a successful Write is visible to every Read, so wait for that.
	last := noop.Offset
	if len(recs) > 0 {
		last = recs[len(recs)-1].Offset
	}
	if err := s.awaitStable(ctx, last+1); err != nil {
		return fmt.Errorf("kafkastore: committed, but not yet visible: %w", err)
	}
	return nil
}

// errAbortFailed marks a write whose abort did not complete.
var errAbortFailed = errors.New("kafkastore: abort did not complete")

// aborted reports the errors of a transaction the broker has already ended.
func aborted(err error) bool {
	return errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.ProducerFenced) ||
		errors.Is(err, kerr.InvalidTxnState) || errors.Is(err, kerr.TransactionAbortable)
}

func (s *Store) abort(cl *kgo.Client, cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), streams.DefaultDialTimeout)
	defer cancel()
	if err := cl.AbortBufferedRecords(ctx); err != nil {
		return errors.Join(cause, errAbortFailed, err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		return errors.Join(cause, errAbortFailed, err)
	}
	return cause
}
