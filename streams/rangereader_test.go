package streams_test

import (
	"errors"
	"fmt"
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
