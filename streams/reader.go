package streams

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// StartAt is where a Reader starts in each partition: the beginning, the end,
// an absolute offset, or the first record at or after a time. For group reads
// it applies only to partitions the group has no committed offset for.
type StartAt struct {
	kind   startKind
	offset int64
	at     time.Time
}

type startKind uint8

const (
	startBeginning startKind = iota
	startEnd
	startOffset
	startTime
)

// FromBeginning starts at the earliest retained record (the zero StartAt).
func FromBeginning() StartAt { return StartAt{kind: startBeginning} }

// FromEnd starts after the last record: only new records are read.
func FromEnd() StartAt { return StartAt{kind: startEnd} }

// FromOffset starts at offset n in every partition (clamped by the broker to
// the partition's range).
func FromOffset(n int64) StartAt { return StartAt{kind: startOffset, offset: n} }

// FromTime starts at the first record whose timestamp is at or after t.
func FromTime(t time.Time) StartAt { return StartAt{kind: startTime, at: t} }

// ParseStartAt reads "beginning", "end", a non-negative offset, or an RFC 3339
// time, the forms the CLI's --from flag accepts.
func ParseStartAt(s string) (StartAt, error) {
	switch s {
	case "beginning", "earliest":
		return FromBeginning(), nil
	case "end", "latest":
		return FromEnd(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return StartAt{}, fmt.Errorf("offset %d is negative", n)
		}
		return FromOffset(n), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return FromTime(t), nil
	}
	return StartAt{}, fmt.Errorf("%q is not beginning, end, an offset or an RFC 3339 time (e.g. 2026-01-02T15:04:05Z)", s)
}

func (s StartAt) String() string {
	switch s.kind {
	case startEnd:
		return "end"
	case startOffset:
		return strconv.FormatInt(s.offset, 10)
	case startTime:
		return s.at.Format(time.RFC3339Nano)
	default:
		return "beginning"
	}
}

func (s StartAt) kgoOffset() kgo.Offset {
	switch s.kind {
	case startEnd:
		return kgo.NewOffset().AtEnd()
	case startOffset:
		return kgo.NewOffset().At(s.offset)
	case startTime:
		return kgo.NewOffset().AfterMilli(s.at.UnixMilli())
	default:
		return kgo.NewOffset().AtStart()
	}
}

// ReaderOption configures a Reader.
type ReaderOption func(*ReaderConfig)

// ReaderConfig is what the reader options set.
type ReaderConfig struct {
	Brokers  []string
	Topics   []string
	Group    string // empty: direct reads, no group
	From     StartAt
	UntilEnd bool
}

// Validate reports a configuration that cannot work.
func (c ReaderConfig) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("streams: reader needs brokers")
	}
	if len(c.Topics) == 0 {
		return errors.New("streams: reader needs at least one topic (WithTopics)")
	}
	return nil
}

// WithTopics sets the topics to read.
func WithTopics(topics ...string) ReaderOption {
	return func(c *ReaderConfig) { c.Topics = append(c.Topics, topics...) }
}

// WithGroup reads as a member of consumer group g; partitions are shared with
// the group's other members and offsets are committed with Commit.
func WithGroup(g string) ReaderOption { return func(c *ReaderConfig) { c.Group = g } }

// WithFrom sets where reading starts (default: the beginning).
func WithFrom(s StartAt) ReaderOption { return func(c *ReaderConfig) { c.From = s } }

// WithStopAtEnd makes Poll return ErrEndReached once every partition of the
// topics has been read up to the end it had when reading started (its last
// stable offset, so transactions still open then do not keep the reader
// waiting), returning only committed records below that end. With a group,
// it assumes this reader is the group's only member.
func WithStopAtEnd() ReaderOption { return func(c *ReaderConfig) { c.UntilEnd = true } }

// Reader reads records of topics, directly or in a consumer group. Offsets are
// never committed implicitly: a group reader commits what the caller passes to
// Commit, so nothing is marked done before the caller has handled it.
type Reader struct {
	cl   *kgo.Client
	cfg  ReaderConfig
	left map[string]map[int32]*span // WithStopAtEnd: what is left to read; nil until the first Poll
}

// span is a partition's remaining range [next, end), and the filter that
// decides its transactions.
type span struct {
	next, end int64
	committed CommittedFilter
}

// NewReader builds a reader for brokers.
func NewReader(brokers []string, opts ...ReaderOption) (*Reader, error) {
	cfg := ReaderConfig{Brokers: brokers}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	kopts := []kgo.Opt{kgo.ConsumeTopics(cfg.Topics...), kgo.ConsumeResetOffset(cfg.From.kgoOffset())}
	if cfg.Group != "" {
		kopts = append(kopts, kgo.ConsumerGroup(cfg.Group), kgo.DisableAutoCommit())
	}
	if cfg.UntilEnd {
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

// ErrEndReached is returned by Poll of a WithStopAtEnd reader once it has read
// everything that was there when it started.
var ErrEndReached = errors.New("streams: end of topics reached")

// bounds computes, per partition, where this reader starts and where the end
// was when it started.
func (r *Reader) bounds(ctx context.Context) (map[string]map[int32]*span, error) {
	adm := kadm.NewClient(r.cl)
	ends, err := adm.ListCommittedOffsets(ctx, r.cfg.Topics...)
	if err != nil {
		return nil, fmt.Errorf("streams: end offsets: %w", err)
	}
	var starts kadm.ListedOffsets
	switch r.cfg.From.kind {
	case startTime:
		starts, err = adm.ListOffsetsAfterMilli(ctx, r.cfg.From.at.UnixMilli(), r.cfg.Topics...)
	default:
		starts, err = adm.ListStartOffsets(ctx, r.cfg.Topics...)
	}
	if err != nil {
		return nil, fmt.Errorf("streams: start offsets: %w", err)
	}
	var committed kadm.OffsetResponses
	if r.cfg.Group != "" {
		// A group that never committed may not exist yet: no commits, not an error.
		if committed, err = adm.FetchOffsets(ctx, r.cfg.Group); err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			return nil, fmt.Errorf("streams: committed offsets of group %q: %w", r.cfg.Group, err)
		}
	}
	left := map[string]map[int32]*span{}
	for _, t := range r.cfg.Topics {
		ps, ok := ends[t]
		if !ok {
			return nil, fmt.Errorf("streams: %q: %w", t, ErrTopicNotFound)
		}
		left[t] = map[int32]*span{}
		for p, e := range ps {
			if e.Err != nil {
				return nil, fmt.Errorf("streams: end offset of %q partition %d: %w", t, p, topicErr(e.Err))
			}
			next := e.Offset // FromEnd, and times after the last record
			if st, ok := starts.Lookup(t, p); ok && st.Err == nil && st.Offset >= 0 {
				switch r.cfg.From.kind {
				case startBeginning, startTime:
					next = st.Offset
				case startOffset:
					next = max(r.cfg.From.offset, st.Offset)
				}
			}
			if c, ok := committed.Lookup(t, p); ok && c.Err == nil && c.At >= 0 {
				next = c.At
			}
			left[t][p] = &span{next: next, end: e.Offset}
		}
	}
	return left, nil
}

// ended reports whether every partition has been read to its end and every
// transaction seen below it decided.
func (r *Reader) ended() bool {
	for _, ps := range r.left {
		for _, s := range ps {
			if s.next < s.end || s.committed.Undecided() {
				return false
			}
		}
	}
	return true
}

// Poll returns the next records, blocking until some arrive or ctx ends (then
// it returns ctx's error). Fetch errors other than the context's are returned
// joined; the records fetched alongside them are still returned.
func (r *Reader) Poll(ctx context.Context) ([]*kgo.Record, error) {
	if r.cfg.UntilEnd {
		if r.left == nil {
			left, err := r.bounds(ctx)
			if err != nil {
				return nil, err
			}
			r.left = left
		}
		if r.ended() {
			return nil, ErrEndReached
		}
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
	if r.cfg.UntilEnd {
		recs = r.advance(recs)
	}
	return recs, errors.Join(errs...)
}

// advance moves the remaining ranges past recs and returns the committed
// records below each partition's end.
func (r *Reader) advance(recs []*kgo.Record) []*kgo.Record {
	var out []*kgo.Record
	for _, rec := range recs {
		s := r.left[rec.Topic][rec.Partition]
		if s == nil {
			continue
		}
		s.next = max(s.next, rec.Offset+1)
		if rec.Offset >= s.end && !rec.Attrs.IsControl() {
			continue // arrived after the reader started; markers still decide
		}
		out = append(out, s.committed.Add(rec)...)
	}
	return out
}

// ReadAll polls a WithStopAtEnd reader until the end and returns every
// record, for reads small enough to hold in memory (tests, tools, replays of
// a window). It commits nothing.
func (r *Reader) ReadAll(ctx context.Context) ([]*kgo.Record, error) {
	if !r.cfg.UntilEnd {
		return nil, errors.New("streams: ReadAll needs a reader built with WithStopAtEnd")
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
