package streams

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReaderOption configures a Reader.
type ReaderOption func(*ReaderConfig)

// ReaderConfig is what the reader options set.
type ReaderConfig struct {
	Brokers []string
	Topics  []string
	Group   string // empty: direct reads, no group
	From    StartAt
	// To, when set, is where reading stops in every partition, exclusive:
	// FromEnd is the end the partition had when reading started. Nil:
	// reading follows new records (unless PartitionTo bounds the read).
	To *StartAt
	// PartitionFrom and PartitionTo override From and To for single
	// partitions (direct reads only).
	PartitionFrom, PartitionTo map[string]map[int32]StartAt
	// InOrder reads the partitions one after another (see WithPartitionOrder).
	InOrder bool
}

// Validate reports a configuration that cannot work.
func (c ReaderConfig) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("streams: reader needs brokers")
	}
	if len(c.Topics) == 0 {
		return errors.New("streams: reader needs at least one topic (WithTopics)")
	}
	if c.Group != "" && (len(c.PartitionFrom) > 0 || len(c.PartitionTo) > 0 || c.InOrder) {
		return errors.New("streams: per-partition ranges and partition order are for direct reads; drop WithGroup or them")
	}
	if c.InOrder && !c.bounded() {
		return errors.New("streams: WithPartitionOrder needs an end (WithTo or WithStopAtEnd): a followed partition never ends")
	}
	for _, m := range []map[string]map[int32]StartAt{c.PartitionFrom, c.PartitionTo} {
		for t := range m {
			if !slices.Contains(c.Topics, t) {
				return fmt.Errorf("streams: a partition range names topic %q, which is not read (WithTopics)", t)
			}
		}
	}
	return nil
}

// bounded reports a read that ends.
func (c ReaderConfig) bounded() bool { return c.To != nil || len(c.PartitionTo) > 0 }

// assigned reports a direct read whose partitions and start offsets the
// reader resolves itself, once, instead of leaving them to the client's
// reset offset: so per-partition starts work and a closed range is the
// same range every time.
func (c ReaderConfig) assigned() bool {
	return c.Group == "" && (c.bounded() || len(c.PartitionFrom) > 0)
}

func (c ReaderConfig) from(t string, p int32) StartAt {
	if s, ok := c.PartitionFrom[t][p]; ok {
		return s
	}
	return c.From
}

func (c ReaderConfig) to(t string, p int32) StartAt {
	if s, ok := c.PartitionTo[t][p]; ok {
		return s
	}
	if c.To != nil {
		return *c.To
	}
	return FromEnd()
}

// WithTopics sets the topics to read.
func WithTopics(topics ...string) ReaderOption {
	return func(c *ReaderConfig) { c.Topics = append(c.Topics, topics...) }
}

// WithGroup reads as a member of consumer group g; partitions are shared with
// the group's other members and offsets are committed with Commit.
func WithGroup(g string) ReaderOption { return func(c *ReaderConfig) { c.Group = g } }

// WithFrom sets where reading starts in every partition, inclusive (default:
// the beginning).
func WithFrom(s StartAt) ReaderOption { return func(c *ReaderConfig) { c.From = s } }

// WithTo sets where reading stops in every partition, exclusive: before
// offset n (FromOffset), before the first record at or after a time
// (FromTime), or at the end the partition had when reading started
// (FromEnd). Poll then returns ErrEndReached once every partition is read
// to its end. Ends are resolved once, at the first Poll, and never beyond
// the last stable offset, so transactions still open then do not keep the
// reader waiting and a closed range gives the same records every time. With
// a group, it assumes this reader is the group's only member.
func WithTo(s StartAt) ReaderOption { return func(c *ReaderConfig) { c.To = &s } }

// WithStopAtEnd is WithTo(FromEnd()): read what is there when reading
// starts, then stop.
func WithStopAtEnd() ReaderOption { return WithTo(FromEnd()) }

// WithPartitionFrom starts topic's partition at s instead of WithFrom's
// start (direct reads).
func WithPartitionFrom(topic string, partition int32, s StartAt) ReaderOption {
	return func(c *ReaderConfig) { setPartition(&c.PartitionFrom, topic, partition, s) }
}

// WithPartitionTo ends topic's partition at s instead of WithTo's end
// (direct reads). Partitions given no end then end where they were when
// reading started.
func WithPartitionTo(topic string, partition int32, s StartAt) ReaderOption {
	return func(c *ReaderConfig) { setPartition(&c.PartitionTo, topic, partition, s) }
}

func setPartition(m *map[string]map[int32]StartAt, topic string, partition int32, s StartAt) {
	if *m == nil {
		*m = map[string]map[int32]StartAt{}
	}
	if (*m)[topic] == nil {
		(*m)[topic] = map[int32]StartAt{}
	}
	(*m)[topic][partition] = s
}

// WithPartitionOrder makes a bounded direct read return its records
// partition by partition: topics in the order given, partitions ascending,
// each in offset order. Reading the partitions concurrently interleaves
// them as fetches happen to arrive; in this order a closed range comes out
// the same every time, which exports that must be reproducible need.
func WithPartitionOrder() ReaderOption { return func(c *ReaderConfig) { c.InOrder = true } }

// Reader reads records of topics, directly or in a consumer group. Offsets are
// never committed implicitly: a group reader commits what the caller passes to
// Commit, so nothing is marked done before the caller has handled it.
type Reader struct {
	cl    *kgo.Client
	cfg   ReaderConfig
	spans []*span                    // resolved at the first Poll, in partition order
	left  map[string]map[int32]*span // bounded reads: what is left to read, by partition
	next  int                        // InOrder: the index in spans of the partition being read
}

// span is a partition's remaining range [next, end), and the filter that
// decides its transactions. end is -1 for a partition that is followed.
type span struct {
	topic     string
	partition int32
	from      int64
	next, end int64
	committed CommittedFilter
	done      bool
}

// add takes the partition's next record and returns the committed records
// it releases below the end.
func (s *span) add(r *kgo.Record) []*kgo.Record {
	s.next = max(s.next, r.Offset+1)
	if r.Offset >= s.end && !r.Attrs.IsControl() {
		return nil // beyond the end; markers still decide what is below it
	}
	return s.committed.Add(r)
}

// finished reports whether the span is read to its end with every
// transaction below it decided.
func (s *span) finished() bool { return s.next >= s.end && !s.committed.Undecided() }

// NewReader builds a reader for brokers.
func NewReader(brokers []string, opts ...ReaderOption) (*Reader, error) {
	cfg := ReaderConfig{Brokers: brokers}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var kopts []kgo.Opt
	if cfg.assigned() {
		kopts = append(kopts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{})) // assigned at the first Poll
	} else {
		kopts = append(kopts, kgo.ConsumeTopics(cfg.Topics...), kgo.ConsumeResetOffset(cfg.From.kgoOffset()))
	}
	if cfg.Group != "" {
		kopts = append(kopts, kgo.ConsumerGroup(cfg.Group), kgo.DisableAutoCommit())
	}
	if cfg.bounded() {
		// To know it has passed the end, the reader must see every offset:
		// it reads uncommitted with markers and decides transactions itself
		// (CommittedFilter), returning only committed records.
		kopts = append(kopts, kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.KeepControlRecords())
	}
	cl, err := NewClient(brokers, kopts...)
	if err != nil {
		return nil, err
	}
	return &Reader{cl: cl, cfg: cfg}, nil
}

// ErrEndReached is returned by Poll of a bounded reader (WithTo,
// WithStopAtEnd) once it has read its whole range.
var ErrEndReached = errors.New("streams: end of topics reached")

// PartitionRange is the range a reader resolved for one partition: offsets
// in [From, To). To is -1 for a partition that is followed.
type PartitionRange struct {
	Topic     string
	Partition int32
	From, To  int64
}

// Ranges resolves the reader's range (if the first Poll has not already)
// and returns it per partition, in partition order. For a group read, From
// counts the group's committed offsets.
func (r *Reader) Ranges(ctx context.Context) ([]PartitionRange, error) {
	if err := r.start(ctx); err != nil {
		return nil, err
	}
	out := make([]PartitionRange, len(r.spans))
	for i, s := range r.spans {
		out[i] = PartitionRange{Topic: s.topic, Partition: s.partition, From: s.from, To: s.end}
	}
	return out, nil
}

// start resolves the spans once; an assigned read then starts consuming
// them.
func (r *Reader) start(ctx context.Context) error {
	if r.spans != nil {
		return nil
	}
	spans, err := r.resolve(ctx)
	if err != nil {
		return err
	}
	r.spans = spans
	if r.cfg.bounded() {
		r.left = map[string]map[int32]*span{}
		for _, s := range spans {
			if r.left[s.topic] == nil {
				r.left[s.topic] = map[int32]*span{}
			}
			r.left[s.topic][s.partition] = s
		}
	}
	if r.cfg.assigned() {
		r.consumeNext()
	}
	return nil
}

// consumeNext hands the client the partitions to fetch: all of them, or in
// partition order the first that is not finished.
func (r *Reader) consumeNext() {
	add := map[string]map[int32]kgo.Offset{}
	for ; r.next < len(r.spans); r.next++ {
		s := r.spans[r.next]
		if r.cfg.bounded() && s.finished() {
			s.done = true
			continue
		}
		if add[s.topic] == nil {
			add[s.topic] = map[int32]kgo.Offset{}
		}
		add[s.topic][s.partition] = kgo.NewOffset().At(s.next)
		if r.cfg.InOrder {
			break
		}
	}
	if len(add) > 0 {
		r.cl.AddConsumePartitions(add)
	}
}

// resolve computes, per partition, where this reader starts and where it
// ends: offsets clamped to what the partition holds, ends never beyond its
// last stable offset when reading starts.
func (r *Reader) resolve(ctx context.Context) ([]*span, error) {
	adm := kadm.NewClient(r.cl)
	stable, err := adm.ListCommittedOffsets(ctx, r.cfg.Topics...)
	if err != nil {
		return nil, fmt.Errorf("streams: end offsets: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, r.cfg.Topics...)
	if err != nil {
		return nil, fmt.Errorf("streams: start offsets: %w", err)
	}
	byTime := map[int64]kadm.ListedOffsets{} // one lookup per distinct time
	at := func(s StartAt, t string, p int32, start, end int64) (int64, error) {
		switch s.kind {
		case startBeginning:
			return start, nil
		case startOffset:
			return max(s.offset, start), nil
		case startTime:
			ms := s.at.UnixMilli()
			if ms < 0 { // before 1970: negative times are ListOffsets' special values
				return start, nil
			}
			offs, ok := byTime[ms]
			if !ok {
				if offs, err = adm.ListOffsetsAfterMilli(ctx, ms, r.cfg.Topics...); err != nil {
					return 0, fmt.Errorf("streams: offsets at %s: %w", s, err)
				}
				byTime[ms] = offs
			}
			o, ok := offs.Lookup(t, p)
			switch {
			case !ok || o.Offset < 0:
				return end, nil // no record at or after the time
			case o.Err != nil:
				return 0, fmt.Errorf("streams: offset of %q partition %d at %s: %w", t, p, s, topicErr(o.Err))
			}
			return max(o.Offset, start), nil
		default:
			return end, nil
		}
	}
	var committed kadm.OffsetResponses
	if r.cfg.Group != "" {
		// A group that never committed may not exist yet: no commits, not an error.
		if committed, err = adm.FetchOffsets(ctx, r.cfg.Group); err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			return nil, fmt.Errorf("streams: committed offsets of group %q: %w", r.cfg.Group, err)
		}
	}
	var spans []*span
	for _, t := range r.cfg.Topics {
		ps, ok := stable[t]
		if !ok {
			return nil, fmt.Errorf("streams: %q: %w", t, ErrTopicNotFound)
		}
		for _, p := range slices.Sorted(maps.Keys(ps)) {
			e := ps[p]
			if e.Err != nil {
				return nil, fmt.Errorf("streams: end offset of %q partition %d: %w", t, p, topicErr(e.Err))
			}
			start := e.Offset
			if st, ok := starts.Lookup(t, p); ok && st.Err == nil && st.Offset >= 0 {
				start = st.Offset
			}
			s := &span{topic: t, partition: p, end: -1}
			if s.next, err = at(r.cfg.from(t, p), t, p, start, e.Offset); err != nil {
				return nil, err
			}
			if c, ok := committed.Lookup(t, p); ok && c.Err == nil && c.At >= 0 {
				s.next = c.At
			}
			if r.cfg.bounded() {
				if s.end, err = at(r.cfg.to(t, p), t, p, start, e.Offset); err != nil {
					return nil, err
				}
				s.end = max(min(s.end, e.Offset), s.next) // nothing after the stable end; an end before the start is empty
			}
			s.from = s.next
			spans = append(spans, s)
		}
	}
	return spans, nil
}

// ended reports whether every partition has been read to its end and every
// transaction seen below it decided.
func (r *Reader) ended() bool {
	for _, s := range r.spans {
		if !s.finished() {
			return false
		}
	}
	return true
}

// Poll returns the next records, blocking until some arrive or ctx ends (then
// it returns ctx's error). Fetch errors other than the context's are returned
// joined; the records fetched alongside them are still returned.
func (r *Reader) Poll(ctx context.Context) ([]*kgo.Record, error) {
	if r.cfg.bounded() || r.cfg.assigned() {
		if err := r.start(ctx); err != nil {
			return nil, err
		}
	}
	if r.cfg.bounded() && r.ended() {
		return nil, ErrEndReached
	}
	fs := r.cl.PollFetches(ctx)
	if fs.IsClientClosed() {
		return nil, kgo.ErrClientClosed
	}
	var errs []error
	fs.EachError(func(t string, p int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			errs = append(errs, err)
			return
		}
		if t == "" { // franz-go's group errors (a lost session) name no partition
			errs = append(errs, fmt.Errorf("group: %w", err))
			return
		}
		errs = append(errs, fmt.Errorf("topic %q partition %d: %w", t, p, topicErr(err)))
	})
	recs := fs.Records()
	if r.cfg.bounded() {
		recs = r.advance(recs)
	}
	return recs, errors.Join(errs...)
}

// advance moves the remaining ranges past recs and returns the committed
// records below each partition's end. An assigned read stops fetching the
// partitions it has finished (and, in partition order, moves to the next).
func (r *Reader) advance(recs []*kgo.Record) []*kgo.Record {
	var out []*kgo.Record
	for _, rec := range recs {
		if s := r.left[rec.Topic][rec.Partition]; s != nil && !s.done {
			out = append(out, s.add(rec)...)
		}
	}
	if !r.cfg.assigned() {
		return out
	}
	finished := map[string][]int32{}
	for _, s := range r.spans {
		if !s.done && s.finished() {
			s.done = true
			finished[s.topic] = append(finished[s.topic], s.partition)
		}
	}
	if len(finished) > 0 {
		r.cl.RemoveConsumePartitions(finished)
		if r.cfg.InOrder {
			r.next++
			r.consumeNext()
		}
	}
	return out
}

// ReadAll polls a bounded reader until the end and returns every record,
// for reads small enough to hold in memory (tests, tools). It commits
// nothing. Records reads any range in bounded memory.
func (r *Reader) ReadAll(ctx context.Context) ([]*kgo.Record, error) {
	if !r.cfg.bounded() {
		return nil, errors.New("streams: ReadAll needs a reader with an end (WithTo or WithStopAtEnd)")
	}
	var all []*kgo.Record
	for {
		recs, err := r.Poll(ctx)
		all = append(all, recs...)
		if errors.Is(err, ErrEndReached) {
			return all, nil
		}
		if err != nil {
			return all, err
		}
	}
}

// Commit commits the offsets after recs for the reader's group (a no-op for
// direct reads), waiting for the broker's answer.
func (r *Reader) Commit(ctx context.Context, recs ...*kgo.Record) error {
	if r.cfg.Group == "" || len(recs) == 0 {
		return nil
	}
	if err := r.cl.CommitRecords(ctx, recs...); err != nil {
		return fmt.Errorf("streams: commit group %q: %w", r.cfg.Group, err)
	}
	return nil
}

// Close leaves the group (if any) and closes the client.
func (r *Reader) Close() { r.cl.Close() }
