package streams_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

// ReadKey reads one key's committed records past a transaction of another
// key left open (which holds the stable offset back), drops aborted ones,
// and waits for the key's own open records, naming them when ctx ends.
func TestRangeReaderReadKey(t *testing.T) {
	addr := testenv.Kafka(t)
	testenv.Topic(t, addr, "rk", 1)
	ctx := ctxT(t)
	txn := func(id string) *kgo.Client {
		cl := testenv.Client(t, addr, kgo.TransactionalID(id), kgo.TransactionTimeout(time.Minute))
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		return cl
	}
	produce := func(cl *kgo.Client, key, v string) {
		t.Helper()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "rk", Key: []byte(key), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	end := func(cl *kgo.Client, commit bool) {
		t.Helper()
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	plain := testenv.Client(t, addr)
	produce(plain, "k", "k1")
	other := txn("other")
	produce(other, "o", "o1") // left open: the stable offset stays here
	produce(plain, "k", "k2")
	for i, commit := range []bool{true, false} {
		c := txn(fmt.Sprint("k", i))
		produce(c, "k", fmt.Sprintf("k-txn-%v", commit))
		produce(c, "o", "o-in-k-txn")
		end(c, commit)
	}
	produce(plain, "o", "o2")
	rr, err := streams.NewRangeReader([]string{addr})
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Close()
	read := func(wait time.Duration, from int64, key string) (string, error) {
		var got []string
		err := rr.ReadKey(ctx, streams.KeyRead{Topic: "rk", From: from, Key: []byte(key), Wait: wait},
			func(r *kgo.Record) { got = append(got, string(r.Value)) })
		return strings.Join(got, ","), err
	}
	if stable, err := rr.Stable(ctx, "rk", 0); err != nil || stable != 1 {
		t.Fatalf("stable offset %d (%v): the open transaction should hold it at 1", stable, err)
	}
	if got, err := read(time.Minute, 0, "k"); err != nil || got != "k1,k2,k-txn-true" {
		t.Fatalf("key k: %q %v, want k1,k2,k-txn-true (past the other key's open transaction)", got, err)
	}
	// The wait bounds the waiting only, not the reading: a key with nothing
	// undecided reads to the end however short it is.
	if got, err := read(time.Nanosecond, 0, "k"); err != nil || got != "k1,k2,k-txn-true" {
		t.Fatalf("key k with a wait of 1ns: %q %v", got, err)
	}
	if got, err := read(time.Minute, 1, "k"); err != nil || got != "k2,k-txn-true" {
		t.Fatalf("key k from 1: %q %v", got, err)
	}
	// The key's own record in an open transaction is waited for.
	if _, err := read(300*time.Millisecond, 0, "o"); !errors.Is(err, streams.ErrUndecided) || !strings.Contains(err.Error(), "offset 1") {
		t.Fatalf("key o with its record undecided: %v, want ErrUndecided naming offset 1", err)
	}
	done := make(chan string, 1)
	go func() {
		got, err := read(time.Minute, 0, "o")
		if err != nil {
			got = err.Error()
		}
		done <- got
	}()
	time.Sleep(200 * time.Millisecond)
	end(other, true)
	if got := <-done; got != "o1,o-in-k-txn,o2" {
		t.Fatalf("key o once decided: %q, want o1,o-in-k-txn,o2", got)
	}
	tail, err := rr.Tail(ctx, "rk", 0, 3)
	if err != nil || len(tail) != 3 || !tail[2].Attrs.IsControl() {
		t.Fatalf("tail: %d records (%v), want the last 3 offsets ending with the commit marker", len(tail), err)
	}
}

// KeyPartition is where franz-go's default partitioner puts a key.
func TestKeyPartitionIsTheDefaultPartitioners(t *testing.T) {
	addr := testenv.Kafka(t)
	testenv.Topic(t, addr, "kp", 7)
	cl := testenv.Client(t, addr)
	ctx := ctxT(t)
	for i := range 50 {
		key := []byte(fmt.Sprintf("aggregate-%d", i))
		r := &kgo.Record{Topic: "kp", Key: key}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if p := streams.KeyPartition(key, 7); p != r.Partition {
			t.Fatalf("%s: KeyPartition %d, produced to %d", key, p, r.Partition)
		}
	}
}

// values returns the records' partition/value pairs, in order.
func values(recs []*kgo.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = fmt.Sprintf("%d:%s", r.Partition, r.Value)
	}
	return out
}

// A bounded read gives the committed records of [from, to) in each
// partition, by offset or by time, for all partitions or for one, and in
// partition order when asked.
func TestReaderRanges(t *testing.T) {
	addr := testenv.Kafka(t)
	testenv.Topic(t, addr, "r", 2)
	ctx := ctxT(t)
	t0 := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	cl := testenv.Client(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	txc := testenv.Client(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionalID("r-txn"))
	for i := range 6 {
		for p := range int32(2) {
			r := &kgo.Record{Topic: "r", Partition: p, Value: []byte(fmt.Sprint(i)), Timestamp: t0.Add(time.Duration(i) * time.Second)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Partition 1 then holds an aborted transaction (offsets 6, 7 and its
	// marker at 8) and one more record (9).
	if err := txc.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := txc.ProduceSync(ctx, &kgo.Record{Topic: "r", Partition: 1, Value: []byte("aborted")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := txc.EndTransaction(ctx, kgo.TransactionEndTry(false)); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "r", Partition: 1, Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	at := func(s int) streams.StartAt { return streams.FromTime(t0.Add(time.Duration(s) * time.Second)) }
	for _, tc := range []struct {
		name   string
		opts   []streams.ReaderOption
		want   []string
		ranges []streams.PartitionRange
	}{
		{"offsets", []streams.ReaderOption{streams.WithFrom(streams.FromOffset(2)), streams.WithTo(streams.FromOffset(4))},
			[]string{"0:2", "0:3", "1:2", "1:3"}, []streams.PartitionRange{{"r", 0, 2, 4}, {"r", 1, 2, 4}}},
		{"times: from inclusive, to exclusive", []streams.ReaderOption{streams.WithFrom(at(3)), streams.WithTo(at(5))},
			[]string{"0:3", "0:4", "1:3", "1:4"}, []streams.PartitionRange{{"r", 0, 3, 5}, {"r", 1, 3, 5}}},
		{"across the aborted transaction to the end", []streams.ReaderOption{streams.WithFrom(streams.FromOffset(5)), streams.WithStopAtEnd()},
			[]string{"0:5", "1:5", "1:after"}, []streams.PartitionRange{{"r", 0, 5, 6}, {"r", 1, 5, 10}}},
		{"per partition", []streams.ReaderOption{streams.WithPartitionFrom("r", 1, streams.FromOffset(4)), streams.WithPartitionTo("r", 0, streams.FromOffset(1))},
			[]string{"0:0", "1:4", "1:5", "1:after"}, []streams.PartitionRange{{"r", 0, 0, 1}, {"r", 1, 4, 10}}},
		{"an end before the start is empty", []streams.ReaderOption{streams.WithFrom(streams.FromOffset(4)), streams.WithTo(at(2))},
			nil, []streams.PartitionRange{{"r", 0, 4, 4}, {"r", 1, 4, 4}}},
		{"ends beyond the partition stop at its end", []streams.ReaderOption{streams.WithFrom(at(5)), streams.WithTo(streams.FromOffset(100))},
			[]string{"0:5", "1:5", "1:after"}, []streams.PartitionRange{{"r", 0, 5, 6}, {"r", 1, 5, 10}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd, err := streams.NewReader([]string{addr}, append(tc.opts, streams.WithTopics("r"), streams.WithPartitionOrder())...)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			ranges, err := rd.Ranges(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ranges, tc.ranges) {
				t.Fatalf("ranges: got %v, want %v", ranges, tc.ranges)
			}
			got, err := rd.ReadAll(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(values(got), tc.want) { // partition order: the whole of 0, then 1
				t.Fatalf("got %v, want %v", values(got), tc.want)
			}
		})
	}
	// Followed, a per-partition start still applies, and new records come.
	rd, err := streams.NewReader([]string{addr}, streams.WithTopics("r"), streams.WithFrom(streams.FromEnd()), streams.WithPartitionFrom("r", 0, streams.FromOffset(5)))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if got := values(readN(t, rd, 1)); !slices.Equal(got, []string{"0:5"}) {
		t.Fatalf("followed: got %v", got)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "r", Partition: 1, Value: []byte("new")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := values(readN(t, rd, 1)); !slices.Equal(got, []string{"1:new"}) {
		t.Fatalf("followed: got %v", got)
	}
	if _, err := streams.NewReader([]string{addr}, streams.WithTopics("r"), streams.WithPartitionOrder()); err == nil {
		t.Fatal("partition order without an end must be refused")
	}
	if _, err := streams.NewReader([]string{addr}, streams.WithTopics("r"), streams.WithGroup("g"), streams.WithPartitionFrom("r", 0, streams.FromOffset(1))); err == nil {
		t.Fatal("a per-partition start in a group must be refused")
	}
}

type added struct {
	Item string `avro:"item"`
}

type removed struct {
	Item   string `avro:"item"`
	Reason string `avro:"reason"`
}

// Records decodes each record into the Go type its recq-type names, with
// its envelope and position; one it cannot decode is reported and reading
// goes on.
func TestRecordsByType(t *testing.T) {
	addr := testenv.Kafka(t)
	testenv.Topic(t, addr, "items", 1)
	ctx := ctxT(t)
	serde := testenv.Serde(t)
	p := newPublisher(t, addr, streams.WithCodec(serde))
	for _, v := range []any{added{"a"}, removed{"a", "sold"}, added{"b"}} {
		if err := p.PublishValue(ctx, "items", "list-1", v); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Publish(ctx, &kgo.Record{Topic: "items", Value: []byte("?"), Headers: []kgo.RecordHeader{{Key: streams.HeaderType, Value: []byte("x.Unknown")}}}); err != nil {
		t.Fatal(err)
	}
	if err := p.PublishValue(ctx, "items", "list-1", added{"c"}); err != nil {
		t.Fatal(err)
	}
	rd, err := streams.NewReader([]string{addr}, streams.WithTopics("items"), streams.WithStopAtEnd())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	dec, err := streams.ByType(serde, added{}, &removed{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for r, err := range streams.Records(ctx, rd, dec) {
		var de *streams.DecodeError
		switch {
		case errors.As(err, &de):
			if !errors.Is(err, streams.ErrUnknownType) || de.Offset != 3 || r.Offset != 3 || r.Type != "x.Unknown" {
				t.Fatalf("want offset 3's unknown type reported, got %v (record %+v)", err, r)
			}
			got = append(got, "undecodable")
			continue
		case err != nil:
			t.Fatal(err)
		}
		if r.ID == "" || string(r.Key) != "list-1" || r.Topic != "items" || r.Timestamp.IsZero() {
			t.Fatalf("envelope or position missing: %+v", r)
		}
		got = append(got, fmt.Sprintf("%d %s %+v", r.Offset, r.Type, r.Value))
	}
	want := []string{"0 streams_test.added &{Item:a}", "1 streams_test.removed &{Item:a Reason:sold}", "2 streams_test.added &{Item:b}", "undecodable", "4 streams_test.added &{Item:c}"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

// Into decodes a one-type topic into values of a Go type, each with its
// envelope and position.
func TestRecordsInto(t *testing.T) {
	addr := testenv.Kafka(t)
	testenv.Topic(t, addr, "adds", 1)
	ctx := ctxT(t)
	serde := testenv.Serde(t)
	p := newPublisher(t, addr, streams.WithCodec(serde))
	for _, item := range []string{"a", "b"} {
		if err := p.PublishValue(ctx, "adds", "list-1", added{item}); err != nil {
			t.Fatal(err)
		}
	}
	rd, err := streams.NewReader([]string{addr}, streams.WithTopics("adds"), streams.WithStopAtEnd())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var got []string
	for r, err := range streams.Records(ctx, rd, streams.Into[added](serde)) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %s %s %+v", r.Offset, r.Type, r.Key, r.Value))
	}
	want := []string{"0 streams_test.added list-1 {Item:a}", "1 streams_test.added list-1 {Item:b}"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

// A range larger than memory would hold is read in bounded memory: the
// live heap, sampled after a GC while reading, stays far below the data.
func TestRecordsBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("produces 64 MiB")
	}
	addr := testenv.Kafka(t)
	testenv.Topic(t, addr, "big", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const n, size = 64 << 10, 1 << 10 // 64 MiB of values
	cl := testenv.Client(t, addr, kgo.ProducerBatchCompression(kgo.NoCompression()))
	value := []byte(strings.Repeat("v", size))
	batch := make([]*kgo.Record, 0, 1024)
	for i := range n {
		batch = append(batch, &kgo.Record{Topic: "big", Value: value})
		if len(batch) == cap(batch) || i == n-1 {
			if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	live := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	base := live() // the broker's copy of the data is in this process too
	rd, err := streams.NewReader([]string{addr}, streams.WithTopics("big"), streams.WithStopAtEnd(), streams.WithPartitionOrder())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	length := func(_ context.Context, r *kgo.Record) (int, error) { return len(r.Value), nil }
	var read, bytes int
	var peak uint64
	for r, err := range streams.Records(ctx, rd, length) {
		if err != nil {
			t.Fatal(err)
		}
		read++
		bytes += r.Value
		if read%4096 == 0 {
			peak = max(peak, live())
		}
	}
	if read != n || bytes != n*size {
		t.Fatalf("read %d records, %d bytes; want %d, %d", read, bytes, n, n*size)
	}
	grew := int64(peak) - int64(base)
	t.Logf("read %d MiB; live heap grew by at most %.1f MiB while reading", n*size>>20, float64(grew)/(1<<20))
	if grew > 24<<20 {
		t.Fatalf("live heap grew by %d MiB while reading %d MiB: records are held", grew>>20, n*size>>20)
	}
}
