package deadletter

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Route is the one question a consumer asks: each kind of record gets its
// answer, in the order the consumer used to ask them one by one.
func TestRoute(t *testing.T) {
	q := &Queue{group: "g.v1", idx: newIndex()}
	head := ID("t", 0, 10)
	q.idx.addEntry(Entry{ID: head, Topic: "t", Offset: 10, Key: []byte("k"), Generation: 1, Reason: ReasonHandler})
	rec := func(offset int64, key string) *kgo.Record {
		return &kgo.Record{Topic: "t", Offset: offset, Key: []byte(key)}
	}
	ctx := context.Background()
	for _, c := range []struct {
		name     string
		rec      *kgo.Record
		h        Handling
		parking  bool
		want     Step
		behind   string
		redriven string
	}{
		{"already dead", rec(10, "k"), Handled, true, Skip, "", ""},
		{"untyped", rec(11, "k"), Untyped, true, DeadUntyped, "", ""},
		{"unhandled, even behind a dead key", rec(11, "k"), Unhandled, true, Skip, "", ""},
		{"behind its key's dead event", rec(11, "k"), Handled, true, Park, head, ""},
		{"the same without parking", rec(11, "k"), Handled, false, Handle, "", ""},
		{"before the dead event (read again)", rec(9, "k"), Handled, true, Handle, "", ""},
		{"another key", rec(11, "j"), Handled, true, Handle, "", ""},
	} {
		v, err := q.Route(ctx, c.rec, c.h, c.parking)
		if err != nil || v.Do != c.want || v.Behind != c.behind || v.Redriven.ID != c.redriven {
			t.Errorf("%s: %+v %v, want step %d behind %q", c.name, v, err, c.want, c.behind)
		}
	}
	// A redrive of the head, recorded at retry offset 7: handled, with
	// where it was first written; at another offset, not its redrive.
	e, _ := q.idx.Get(head)
	q.idx.addAction(Action{ID: head, Action: ActionRedrive, Generation: 1, RetryPartition: 0, RetryOffset: 7})
	retry := e.Entry.retryRecord(RetryTopic("g.v1"))
	retry.Offset = 7
	v, err := q.Route(ctx, retry, Handled, true)
	if err != nil || v.Do != Handle || v.Redriven.ID != head || v.Redriven.Topic != "t" || v.Redriven.Offset != 10 || v.Replay {
		t.Fatalf("the head's redrive: %+v %v", v, err)
	}
	malformed := &kgo.Record{Topic: RetryTopic("g.v1"), Offset: 8}
	if v, err := q.Route(ctx, malformed, Handled, true); err != nil || v.Do != Skip || v.Why == "" {
		t.Fatalf("a retry record naming no dead event: %+v %v", v, err)
	}
}

// NewEntry is the one way entries are made: a first death, and a redrive
// that dies again and keeps its id, counts and first failure.
func TestNewEntry(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	rec := &kgo.Record{Topic: "t", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte("v"),
		Headers: []kgo.RecordHeader{{Key: "recq-type", Value: []byte("x.Y")}, {Key: HeaderID, Value: []byte("stale")}}}
	e := NewEntry(rec, "g.v1", Failure{Handler: "x.Y", Reason: ReasonPanic, Err: &PanicError{Value: "boom", Stack: "stack"}, Attempts: 3}, now)
	if e.ID != "t/3/42" || e.Topic != "t" || e.Partition != 3 || e.Offset != 42 || e.Group != "g.v1" || e.Attempts != 3 || e.Generation != 1 ||
		!e.FirstFailure.Equal(now) || e.Kind != KindPermanent || e.Stack != "stack" || len(e.Headers) != 1 || e.Headers[0].Key != "recq-type" {
		t.Fatalf("first death: %+v", e)
	}
	d := Redriven{ID: "t/3/42", Topic: "t", Partition: 3, Offset: 42, Attempts: 3, Generation: 1, FirstFailure: now.Add(-time.Hour)}
	again := NewEntry(&kgo.Record{Topic: RetryTopic("g.v1"), Partition: 0, Offset: 5}, "g.v1", Failure{Reason: ReasonHandler, Err: errors.New("no"), Attempts: 2, Redriven: d}, now)
	if again.ID != d.ID || again.Topic != "t" || again.Offset != 42 || again.Attempts != 5 || again.Generation != 2 || !again.FirstFailure.Equal(d.FirstFailure) {
		t.Fatalf("redrive dead again: %+v", again)
	}
}
