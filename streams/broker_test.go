package streams_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newPublisher(t *testing.T, addr string, opts ...streams.PublisherOption) *streams.Publisher {
	t.Helper()
	p, err := streams.NewPublisher([]string{addr}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

// readN reads until n records arrived.
func readN(t *testing.T, r *streams.Reader, n int) []*kgo.Record {
	t.Helper()
	ctx := ctxT(t)
	var got []*kgo.Record
	for len(got) < n {
		recs, err := r.Poll(ctx)
		if err != nil {
			t.Fatalf("poll after %d of %d records: %v", len(got), n, err)
		}
		got = append(got, recs...)
	}
	if len(got) != n {
		t.Fatalf("want %d records, got %d", n, len(got))
	}
	return got
}

func TestPublishConsumeRoundTripOverTCP(t *testing.T) {
	addr := testenv.Kafka(t)
	testenv.Topic(t, addr, "orders", 4)
	p := newPublisher(t, addr)
	ctx := streams.ContextWithMessage(ctxT(t), streams.Envelope{ID: "cause-1", CorrelationID: "flow-1"})

	const keys, perKey = 10, 50
	var recs []*kgo.Record
	for i := range perKey {
		for k := range keys {
			r := &kgo.Record{Topic: "orders", Key: []byte("agg-" + strconv.Itoa(k)), Value: []byte(strconv.Itoa(i))}
			streams.Envelope{Type: "shop.OrderPlaced", AggregateID: string(r.Key), AggregateVersion: int64(i + 1)}.Write(r)
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: "custom", Value: []byte("c" + strconv.Itoa(i))})
			recs = append(recs, r)
		}
	}
	if err := p.Publish(ctx, recs...); err != nil {
		t.Fatal(err)
	}

	rd, err := streams.NewReader([]string{addr}, streams.WithTopics("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	got := readN(t, rd, keys*perKey)

	next := map[string]int{}
	partOf := map[string]int32{}
	ids := map[string]bool{}
	for _, r := range got {
		k := string(r.Key)
		if p, ok := partOf[k]; ok && p != r.Partition {
			t.Fatalf("key %s in partitions %d and %d", k, p, r.Partition)
		}
		partOf[k] = r.Partition
		i, _ := strconv.Atoi(string(r.Value))
		if i != next[k] {
			t.Fatalf("key %s: record %d arrived when %d was expected (order per key broken)", k, i, next[k])
		}
		next[k]++
		e, err := streams.ReadEnvelope(r)
		if err != nil {
			t.Fatal(err)
		}
		if e.Type != "shop.OrderPlaced" || e.AggregateID != k || e.AggregateVersion != int64(i+1) ||
			e.CorrelationID != "flow-1" || e.CausationID != "cause-1" || e.ID == "" {
			t.Fatalf("envelope not preserved: %+v", e)
		}
		if ids[e.ID] {
			t.Fatalf("duplicate message id %s", e.ID)
		}
		ids[e.ID] = true
		if v, _ := streams.Header(r, "custom"); v != "c"+strconv.Itoa(i) {
			t.Fatalf("custom header: %q", v)
		}
	}
	for k := range keys {
		if next["agg-"+strconv.Itoa(k)] != perKey {
			t.Fatalf("key %d: %d records", k, next["agg-"+strconv.Itoa(k)])
		}
	}
}

func TestPublishAsyncReportsEachRecord(t *testing.T) {
	addr := testenv.Kafka(t)
	testenv.Topic(t, addr, "t", 1)
	p := newPublisher(t, addr)
	done := make(chan error, 100)
	for i := range 100 {
		p.PublishAsync(ctxT(t), &kgo.Record{Topic: "t", Value: []byte{byte(i)}}, func(_ *kgo.Record, err error) { done <- err })
	}
	if err := p.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestPublishErrorsPerRecord(t *testing.T) {
	addr := testenv.Kafka(t)
	testenv.Topic(t, addr, "exists", 1)
	p := newPublisher(t, addr, streams.WithClientOptions(kgo.UnknownTopicRetries(0)))
	err := p.Publish(ctxT(t),
		&kgo.Record{Topic: "exists", Value: []byte("ok")},
		&kgo.Record{Topic: "missing", Value: []byte("no")},
	)
	var pe *streams.PublishError
	if !errors.As(err, &pe) {
		t.Fatalf("want *PublishError, got %v", err)
	}
	if pe.Total != 2 || len(pe.Failed) != 1 || pe.Failed[0].Record.Topic != "missing" {
		t.Fatalf("want exactly the record to the missing topic failed, got %+v", pe)
	}
	end, err := streams.NewAdmin(testenv.Client(t, addr)).EndOffsets(ctxT(t), "exists")
	if err != nil {
		t.Fatal(err)
	}
	if end["exists"][0] != 1 {
		t.Fatalf("the good record was not published: end offset %d", end["exists"][0])
	}
}

func TestPublishValueNeedsCodec(t *testing.T) {
	p := newPublisher(t, testenv.Kafka(t))
	if err := p.PublishValue(ctxT(t), "t", "k", 1); !errors.Is(err, streams.ErrNoCodec) {
		t.Fatalf("want ErrNoCodec, got %v", err)
	}
}

type upperCodec struct{}

func (upperCodec) Encode(_ context.Context, topic string, v any) ([]byte, string, error) {
	s, ok := v.(string)
	if !ok {
		return nil, "", fmt.Errorf("want string, got %T", v)
	}
	return []byte(topic + ":" + s), "test.String", nil
}

func (upperCodec) Decode(context.Context, string, []byte, any) error { return nil }

func TestPublishValueEncodesAndSetsType(t *testing.T) {
	addr := testenv.Kafka(t)
	testenv.Topic(t, addr, "vals", 1)
	p := newPublisher(t, addr, streams.WithCodec(upperCodec{}))
	if err := p.PublishValue(ctxT(t), "vals", "k1", 7); err == nil {
		t.Fatal("an unencodable value must be refused")
	}
	if err := p.PublishValue(ctxT(t), "vals", "k1", "hello"); err != nil {
		t.Fatal(err)
	}
	rd, err := streams.NewReader([]string{addr}, streams.WithTopics("vals"))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	r := readN(t, rd, 1)[0]
	e, _ := streams.ReadEnvelope(r)
	if string(r.Value) != "vals:hello" || string(r.Key) != "k1" || e.Type != "test.String" || r.Offset != 0 {
		t.Fatalf("got value %q key %q type %q offset %d (the refused value must not be produced)", r.Value, r.Key, e.Type, r.Offset)
	}
}

func TestReaderStartPositions(t *testing.T) {
	addr := testenv.Kafka(t)
	testenv.Topic(t, addr, "hist", 1)
	p := newPublisher(t, addr)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Topic: "hist", Value: []byte{byte(i)}, Timestamp: base.Add(time.Duration(i) * time.Minute)})
	}
	if err := p.Publish(ctxT(t), recs...); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		from  streams.StartAt
		first int64
	}{
		"beginning": {streams.FromBeginning(), 0},
		"offset":    {streams.FromOffset(6), 6},
		"time":      {streams.FromTime(base.Add(4*time.Minute - time.Second)), 4},
	} {
		t.Run(name, func(t *testing.T) {
			rd, err := streams.NewReader([]string{addr}, streams.WithTopics("hist"), streams.WithFrom(tc.from))
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			got := readN(t, rd, int(10-tc.first))
			if got[0].Offset != tc.first {
				t.Fatalf("first offset %d, want %d", got[0].Offset, tc.first)
			}
		})
	}
	t.Run("end", func(t *testing.T) {
		rd, err := streams.NewReader([]string{addr}, streams.WithTopics("hist"), streams.WithFrom(streams.FromEnd()))
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		// Poll once with a short deadline: nothing old may be returned.
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		recs, _ := rd.Poll(ctx)
		if len(recs) != 0 {
			t.Fatalf("from end returned %d old records", len(recs))
		}
		if err := p.Publish(ctxT(t), &kgo.Record{Topic: "hist", Value: []byte("new")}); err != nil {
			t.Fatal(err)
		}
		if r := readN(t, rd, 1)[0]; string(r.Value) != "new" || r.Offset != 10 {
			t.Fatalf("got %q at %d", r.Value, r.Offset)
		}
	})
}

func TestGroupCommitAndDescribe(t *testing.T) {
	addr := testenv.Kafka(t)
	testenv.Topic(t, addr, "g", 2)
	p := newPublisher(t, addr)
	var recs []*kgo.Record
	for i := range 20 {
		recs = append(recs, &kgo.Record{Topic: "g", Key: []byte(strconv.Itoa(i))})
	}
	if err := p.Publish(ctxT(t), recs...); err != nil {
		t.Fatal(err)
	}
	rd, err := streams.NewReader([]string{addr}, streams.WithTopics("g"), streams.WithGroup("grp"))
	if err != nil {
		t.Fatal(err)
	}
	got := readN(t, rd, 20)
	// Commit only the first record of each partition: lag must show the rest.
	firsts := map[int32]*kgo.Record{}
	for _, r := range got {
		if _, ok := firsts[r.Partition]; !ok {
			firsts[r.Partition] = r
		}
	}
	var toCommit []*kgo.Record
	for _, r := range firsts {
		toCommit = append(toCommit, r)
	}
	if err := rd.Commit(ctxT(t), toCommit...); err != nil {
		t.Fatal(err)
	}
	adm := streams.NewAdmin(testenv.Client(t, addr))
	info, err := adm.DescribeGroup(ctxT(t), "grp")
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Members) != 1 || len(info.Partitions) != 2 {
		t.Fatalf("want 1 member and 2 partitions, got %+v", info)
	}
	var lag int64
	for _, gp := range info.Partitions {
		if gp.Committed != firsts[gp.Partition].Offset+1 || gp.MemberID != info.Members[0].MemberID {
			t.Fatalf("partition %+v", gp)
		}
		lag += gp.Lag
	}
	if lag != 18 {
		t.Fatalf("total lag %d, want 18", lag)
	}
	rd.Close()

	// A new member of the group resumes after the commits.
	rd2, err := streams.NewReader([]string{addr}, streams.WithTopics("g"), streams.WithGroup("grp"))
	if err != nil {
		t.Fatal(err)
	}
	defer rd2.Close()
	if n := len(readN(t, rd2, 18)); n != 18 {
		t.Fatalf("resumed with %d records", n)
	}

	if _, err := adm.DescribeGroup(ctxT(t), "nobody"); !errors.Is(err, streams.ErrGroupNotFound) {
		t.Fatalf("want ErrGroupNotFound, got %v", err)
	}
	groups, err := adm.ListGroups(ctxT(t))
	if err != nil || len(groups) != 1 || groups[0].Name != "grp" {
		t.Fatalf("list groups: %+v %v", groups, err)
	}
}

func TestAdminTopics(t *testing.T) {
	addr := testenv.Kafka(t)
	adm := streams.NewAdmin(testenv.Client(t, addr))
	ctx := ctxT(t)
	spec := streams.TopicSpec{Name: "compacted", Partitions: 3, Configs: map[string]string{"cleanup.policy": "compact"}}
	if err := adm.CreateTopic(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := adm.CreateTopic(ctx, spec); !errors.Is(err, streams.ErrTopicExists) {
		t.Fatalf("want ErrTopicExists, got %v", err)
	}
	if err := adm.CreateTopic(ctx, streams.TopicSpec{Name: "zero"}); err == nil {
		t.Fatal("zero partitions must be refused")
	}
	info, err := adm.DescribeTopic(ctx, "compacted")
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Partitions) != 3 || info.Configs["cleanup.policy"] != "compact" {
		t.Fatalf("describe: %+v", info)
	}
	for _, p := range info.Partitions {
		if p.StartOffset != 0 || p.EndOffset != 0 || p.Leader < 0 {
			t.Fatalf("partition %+v", p)
		}
	}
	list, err := adm.ListTopics(ctx, false)
	if err != nil || len(list) != 1 || list[0].Name != "compacted" || list[0].Partitions != 3 {
		t.Fatalf("list: %+v %v", list, err)
	}
	if n, err := adm.PartitionCounts(ctx, "compacted"); err != nil || n["compacted"] != 3 {
		t.Fatalf("partition counts: %v %v", n, err)
	}
	if err := adm.DeleteTopic(ctx, "compacted"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.PartitionCounts(ctx, "compacted"); !errors.Is(err, streams.ErrTopicNotFound) {
		t.Fatalf("partition counts of a deleted topic: want ErrTopicNotFound, got %v", err)
	}
	if _, err := adm.DescribeTopic(ctx, "compacted"); !errors.Is(err, streams.ErrTopicNotFound) {
		t.Fatalf("describe deleted: want ErrTopicNotFound, got %v", err)
	}
	if err := adm.DeleteTopic(ctx, "compacted"); !errors.Is(err, streams.ErrTopicNotFound) {
		t.Fatalf("delete missing: want ErrTopicNotFound, got %v", err)
	}
	if _, err := adm.EndOffsets(ctx, "compacted"); !errors.Is(err, streams.ErrTopicNotFound) {
		t.Fatalf("end offsets missing: want ErrTopicNotFound, got %v", err)
	}
}

func TestDialUnreachable(t *testing.T) {
	start := time.Now()
	_, err := streams.Dial(context.Background(), []string{"127.0.0.1:1"})
	if !errors.Is(err, streams.ErrBrokerUnreachable) {
		t.Fatalf("want ErrBrokerUnreachable, got %v", err)
	}
	if time.Since(start) > 2*streams.DefaultDialTimeout {
		t.Fatalf("ping hung for %v", time.Since(start))
	}
}

// A port where something listens but never answers in Kafka's protocol is
// unreachable too, said as such, within the dial timeout (franz-go alone
// would wait out its own 10 s request timeout).
func TestDialSilentPort(t *testing.T) {
	addr := testenv.SilentAddr(t)
	start := time.Now()
	_, err := streams.Dial(context.Background(), []string{addr})
	if !errors.Is(err, streams.ErrBrokerUnreachable) || !strings.Contains(err.Error(), "nothing answered in Kafka's protocol") {
		t.Fatalf("want ErrBrokerUnreachable saying nothing answered, got %v", err)
	}
	if d := time.Since(start); d > streams.DefaultDialTimeout+2*time.Second {
		t.Fatalf("Dial took %v, its bound is %v", d, streams.DefaultDialTimeout)
	}
}

func TestStopAtEndStopsAfterTransactions(t *testing.T) {
	addr := testenv.Kafka(t)
	testenv.Topic(t, addr, "tx", 2)
	ctx := ctxT(t)
	p := newPublisher(t, addr)
	for i := range 5 {
		if err := p.Publish(ctx, &kgo.Record{Topic: "tx", Key: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	txc := testenv.Client(t, addr, kgo.TransactionalID("tx-test"))
	for _, commit := range []bool{true, false} {
		if err := txc.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := txc.ProduceSync(ctx, &kgo.Record{Topic: "tx", Key: []byte("t" + strconv.Itoa(i)), Value: []byte(strconv.FormatBool(commit))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := txc.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}

	read := func(opts ...streams.ReaderOption) []*kgo.Record {
		rd, err := streams.NewReader([]string{addr}, append([]streams.ReaderOption{streams.WithTopics("tx"), streams.WithStopAtEnd()}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		got, err := rd.ReadAll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := rd.Commit(ctx, got...); err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := read()
	if len(got) != 8 {
		t.Fatalf("want 5 plain + 3 committed records, got %d", len(got))
	}
	for _, r := range got {
		if string(r.Value) == "false" || r.Attrs.IsControl() {
			t.Fatalf("aborted or control record returned: %+v", r)
		}
	}
	if n := len(read(streams.WithFrom(streams.FromEnd()))); n != 0 {
		t.Fatalf("from end: %d records", n)
	}
	// A group that does not exist yet reads from --from.
	if n := len(read(streams.WithGroup("g1"))); n != 8 {
		t.Fatalf("group first pass: %d records", n)
	}
	if n := len(read(streams.WithGroup("g1"))); n != 0 {
		t.Fatalf("group second pass must resume after its commits, read %d", n)
	}
}

// A range ending in an aborted transaction whose marker lies behind another,
// still open, transaction: the reader must finish without waiting for the
// open one, and must not return what the open one commits later.
func TestStopAtEndAbortedTailBeforeOpenTransaction(t *testing.T) {
	addr := testenv.Kafka(t)
	testenv.Topic(t, addr, "tail", 1)
	ctx := ctxT(t)
	p := newPublisher(t, addr)
	if err := p.Publish(ctx, &kgo.Record{Topic: "tail", Value: []byte("plain")}); err != nil {
		t.Fatal(err)
	}
	a := testenv.Client(t, addr, kgo.TransactionalID("a"))
	b := testenv.Client(t, addr, kgo.TransactionalID("b"))
	for _, cl := range []*kgo.Client{a, b} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.ProduceSync(ctx, &kgo.Record{Topic: "tail", Value: []byte("aborted")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := b.ProduceSync(ctx, &kgo.Record{Topic: "tail", Value: []byte("later")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := a.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}

	rd, err := streams.NewReader([]string{addr}, streams.WithTopics("tail"), streams.WithStopAtEnd())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	quick, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var got []string
	for {
		recs, err := rd.Poll(quick)
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
		if errors.Is(err, streams.ErrEndReached) {
			break
		}
		if err != nil {
			t.Fatalf("reader did not finish while another transaction is open: %v (got %v)", err, got)
		}
		if len(got) > 0 && got[len(got)-1] == "plain" {
			// Commit the open transaction now: what it wrote lies after
			// the end the reader started with and must not appear.
			if err := b.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(got) != 1 || got[0] != "plain" {
		t.Fatalf("want only the plain record, got %v", got)
	}
}

// RangeReader returns exactly the committed records of a range, across
// aborted transactions, and nothing at or beyond its end.
func TestRangeReader(t *testing.T) {
	addr := testenv.Kafka(t)
	testenv.Topic(t, addr, "rr", 1)
	ctx := ctxT(t)
	txc := testenv.Client(t, addr, kgo.TransactionalID("rr"))
	p := newPublisher(t, addr)
	write := func(v string, txn, commit bool) {
		t.Helper()
		if !txn {
			if err := p.Publish(ctx, &kgo.Record{Topic: "rr", Value: []byte(v)}); err != nil {
				t.Fatal(err)
			}
			return
		}
		if err := txc.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := txc.ProduceSync(ctx, &kgo.Record{Topic: "rr", Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := txc.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	write("a", false, false)
	write("b", true, true)
	write("x", true, false)
	write("c", false, false)
	rr, err := streams.NewRangeReader([]string{addr})
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Close()
	end, err := rr.Stable(ctx, "rr", 0)
	if err != nil {
		t.Fatal(err)
	}
	write("after", false, false)
	read := func(from, end int64) (got []string) {
		t.Helper()
		if err := rr.Read(ctx, "rr", 0, from, end, func(r *kgo.Record) { got = append(got, string(r.Value)) }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := strings.Join(read(0, end), ","); got != "a,b,c" {
		t.Fatalf("range [0,%d): %s, want a,b,c", end, got)
	}
	if got := strings.Join(read(1, end-1), ","); got != "b" {
		t.Fatalf("range [1,%d): %s, want b (x aborted, c at the end excluded)", end-1, got)
	}
	if got := read(end, end); len(got) != 0 {
		t.Fatalf("empty range returned %v", got)
	}
	if _, err := rr.Stable(ctx, "missing", 0); !errors.Is(err, streams.ErrTopicNotFound) {
		t.Fatalf("stable offset of a missing topic: %v", err)
	}
}
