package deadletter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/schema"
)

// saysTransient is a dependency's error that says what it is.
type saysTransient struct{}

func (saysTransient) Error() string   { return "quota service: try later" }
func (saysTransient) Permanent() bool { return false }

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want Kind
	}{
		{"unmarked", errors.New("account closed"), KindPermanent},
		{"marked transient", Transient(errors.New("account service says try later")), KindTransient},
		{"marked permanent over a network error", Permanent(fmt.Errorf("x: %w", syscall.ECONNREFUSED)), KindPermanent},
		{"outermost mark wins", Transient(Permanent(errors.New("x"))), KindTransient},
		{"deadline", fmt.Errorf("call: %w", context.DeadlineExceeded), KindTransient},
		{"refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), KindTransient},
		{"reset", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, KindTransient},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), KindTransient},
		{"panic", &PanicError{Value: "boom"}, KindPermanent},
		{"not framed", fmt.Errorf("decode: %w", schema.ErrNotFramed), KindPermanent},
		{"unknown schema id", fmt.Errorf("decode: %w", schema.ErrUnknownSchemaID), KindPermanent},
		{"an error that says it is transient", fmt.Errorf("call: %w", saysTransient{}), KindTransient},
		{"a mark outside an error that says otherwise", Permanent(saysTransient{}), KindPermanent},
		{"registry unavailable (a 500)", fmt.Errorf("decode: %w: %w", schema.ErrRegistryUnavailable, errors.New("500 Internal Server Error")), KindTransient},
	} {
		if got := Classify(c.err); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if Permanent(nil) != nil || Transient(nil) != nil {
		t.Error("marking nil must stay nil")
	}
	if !errors.Is(Transient(io.EOF), io.EOF) {
		t.Error("a mark must keep the cause for errors.Is")
	}
	if !Undecodable(fmt.Errorf("x: %w", schema.ErrIncompatible)) || Undecodable(errors.New("x")) {
		t.Error("Undecodable")
	}
}

func TestPolicy(t *testing.T) {
	var p Policy
	if err := p.Validate(); err != nil {
		t.Fatalf("zero policy: %v", err)
	}
	permanent, transient := Permanent(errors.New("refused")), context.DeadlineExceeded
	if p.Dead(permanent, 2) || !p.Dead(permanent, 3) {
		t.Error("default: dead after the third permanent failure")
	}
	if p.Dead(transient, 1_000_000) {
		t.Error("default: transient failures never die")
	}
	if !(Policy{TransientAttempts: 5}).Dead(transient, 5) {
		t.Error("a transient limit makes the event dead")
	}
	if !p.Dead(fmt.Errorf("x: %w", schema.ErrUnknownSchemaID), 1) {
		t.Error("an undecodable event is dead at its first failure")
	}
	for err, want := range map[error]Reason{
		errors.New("x"):                             ReasonHandler,
		&PanicError{Value: 1}:                       ReasonPanic,
		fmt.Errorf("x: %w", schema.ErrIncompatible): ReasonUndecodable,
	} {
		if got := ReasonFor(err); got != want {
			t.Errorf("ReasonFor(%v) = %s, want %s", err, got, want)
		}
	}
	for attempt := 1; attempt < 40; attempt++ {
		d := Policy{Backoff: 10 * time.Millisecond, MaxBackoff: time.Second}.Delay(attempt)
		full := min(10*time.Millisecond<<min(attempt-1, 20), time.Second)
		if d < full/2 || d > full {
			t.Fatalf("attempt %d: delay %v outside [%v, %v]", attempt, d, full/2, full)
		}
	}
	for _, bad := range []Policy{{Attempts: -1}, {TransientAttempts: -1}, {Backoff: -1}, {Backoff: time.Second, MaxBackoff: time.Millisecond}} {
		if bad.Validate() == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestID(t *testing.T) {
	id := ID("todo.events", 3, 1207)
	topic, p, o, err := ParseID(id)
	if err != nil || topic != "todo.events" || p != 3 || o != 1207 {
		t.Fatalf("ParseID(%q) = %q %d %d %v", id, topic, p, o, err)
	}
	for _, bad := range []string{"", "x", "t/1", "/1/2", "t/x/2", "t/1/y"} {
		if _, _, _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q): no error", bad)
		}
	}
}

func TestEntryRecordRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 28, 6, 0, 0, 123, time.UTC)
	e := Entry{ID: ID("t", 1, 2), Group: "g.v1", Handler: "todo.ItemAdded", Topic: "t", Partition: 1, Offset: 2,
		Reason: ReasonPanic, Kind: KindPermanent, Error: "boom", Stack: "goroutine 1", Attempts: 4, Generation: 2,
		FirstFailure: now, LastFailure: now.Add(time.Second), Key: []byte("k"), Value: []byte{0, 1, 2},
		Headers: []kgo.RecordHeader{{Key: "recq-type", Value: []byte("todo.ItemAdded")}}}
	r := e.Record(Topic("g.v1"))
	r.Partition, r.Offset = 5, 9
	got, err := ParseEntry(r)
	if err != nil {
		t.Fatal(err)
	}
	e.QueuePartition, e.QueueOffset = 5, 9
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", e) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, e)
	}
	if _, err := ParseEntry(&kgo.Record{Headers: []kgo.RecordHeader{{Key: headerAttempts, Value: []byte("x")}}}); err == nil ||
		!strings.Contains(err.Error(), "recq-dlq-attempts") || !strings.Contains(err.Error(), "no recq-dlq-id") {
		t.Fatalf("a foreign record: %v", err)
	}
	d, ok := ParseRedriven(e.retryRecord(RetryTopic("g.v1")))
	if !ok || d.ID != e.ID || d.Attempts != 4 || d.Generation != 2 || !d.FirstFailure.Equal(now) {
		t.Fatalf("retry record: %+v", d)
	}
}

// The index derives each event's status from its latest generation and
// the actions on it, and which events hold a key back.
func TestIndexStatusAndBlockers(t *testing.T) {
	x := newIndex()
	entry := func(offset int64, gen int, reason Reason, queueOffset int64) Entry {
		return Entry{ID: ID("t", 0, offset), Topic: "t", Offset: offset, Key: []byte("k"), Generation: gen, Reason: reason, QueueOffset: queueOffset}
	}
	x.addEntry(entry(10, 1, ReasonHandler, 0))
	x.addEntry(entry(11, 1, ReasonParked, 1))
	head, next := ID("t", 0, 10), ID("t", 0, 11)
	status := func(id string) Status { it, _ := x.Get(id); return it.Status }

	if b := x.blocker([]byte("k"), "t", 0, 12); b != head {
		t.Fatalf("a later event is held back by %q, want %s", b, head)
	}
	if b := x.blocker([]byte("k"), "t", 0, 9); b != "" {
		t.Fatalf("an earlier event (read again after a restart) is held back by %s", b)
	}
	if b := x.blocker(nil, "t", 0, 12); b != "" {
		t.Fatal("an event without a key has no order to keep")
	}
	x.addAction(Action{ID: head, Action: ActionRedrive, Generation: 1, RetryPartition: 0, RetryOffset: 7})
	x.addAction(Action{ID: next, Action: ActionRedrive, Generation: 1, RetryPartition: 0, RetryOffset: 8})
	if status(head) != StatusRedriving || x.blocker([]byte("k"), "t", 0, 12) != head {
		t.Fatal("a redriving event still holds its key back")
	}
	if b := x.blockerOfRedriven([]byte("k"), next); b != "" {
		t.Fatalf("a redriven event waits for %s, which is redriven before it", b)
	}
	if got := x.HandledRedrives(0, 8); len(got) != 1 || got[0].ID != head {
		t.Fatalf("handled redrives below 8: %+v", got)
	}
	// The head fails again: pending in generation 2, and holds the next
	// one back even on the retry topic.
	x.addEntry(entry(10, 2, ReasonHandler, 2))
	if status(head) != StatusPending || x.blockerOfRedriven([]byte("k"), next) != head {
		t.Fatal("a head that failed again holds its key back")
	}
	x.addEntry(entry(10, 1, ReasonHandler, 3)) // a late older copy changes nothing
	if it, _ := x.Get(head); it.Entry.Generation != 2 {
		t.Fatal("an older generation replaced a newer one")
	}
	x.addAction(Action{ID: head, Action: ActionDiscard, Generation: 2})
	x.addAction(Action{ID: next, Action: ActionDone, Generation: 1})
	if status(head) != StatusDiscarded || status(next) != StatusRedriven || x.blocker([]byte("k"), "t", 0, 12) != "" {
		t.Fatalf("statuses %s %s; the key should flow", status(head), status(next))
	}
	if n := len(x.List(Filter{Status: StatusPending})); n != 0 {
		t.Fatalf("%d pending", n)
	}
	if got := x.List(Filter{}); len(got) != 2 || got[0].Entry.ID != head {
		t.Fatalf("list in queue order: %v", got)
	}
	// The queue and the actions are read concurrently: an action may come
	// before its entry.
	late := ID("t", 0, 20)
	x.addAction(Action{ID: late, Action: ActionDiscard, Generation: 1})
	x.addEntry(entry(20, 1, ReasonHandler, 4))
	if status(late) != StatusDiscarded {
		t.Fatalf("an action read before its entry was lost: %s", status(late))
	}
}

// Parked events are releasable once nothing holds their key back, and only
// the first redrive of a generation counts: two consumers releasing the
// same event get it handled once.
func TestIndexReleaseAndFirstRedriveWins(t *testing.T) {
	x := newIndex()
	for i, r := range []Reason{ReasonHandler, ReasonParked, ReasonParked} {
		x.addEntry(Entry{ID: ID("t", 0, int64(i)), Topic: "t", Offset: int64(i), Key: []byte("k"), Generation: 1, Reason: r, QueueOffset: int64(i)})
	}
	if got := x.Releasable([]byte("k")); got != nil {
		t.Fatalf("releasable behind a pending dead event: %v", ids(got))
	}
	x.addAction(Action{ID: ID("t", 0, 0), Action: ActionDiscard, Generation: 1})
	if got := ids(x.Releasable([]byte("k"))); strings.Join(got, ",") != "t/0/1,t/0/2" {
		t.Fatalf("after the discard: releasable %v, want t/0/1,t/0/2 in order", got)
	}
	p1 := ID("t", 0, 1)
	x.addAction(Action{ID: p1, Action: ActionRedrive, Generation: 1, RetryOffset: 5})
	x.addAction(Action{ID: p1, Action: ActionRedrive, Generation: 1, RetryOffset: 9}) // a second consumer's release
	if st, ok := x.redriveAt(p1, 1, 0, 5); !ok || st != StatusRedriving {
		t.Fatalf("the first redrive: %s %v", st, ok)
	}
	if _, ok := x.redriveAt(p1, 1, 0, 9); ok {
		t.Fatal("a second redrive of the same generation counts")
	}
	if got := x.Releasable([]byte("k")); got != nil {
		t.Fatalf("releasable while one is redriving: %v", ids(got))
	}
	x.addAction(Action{ID: p1, Action: ActionDone, Generation: 1})
	x.addAction(Action{ID: p1, Action: ActionRedrive, Generation: 1, RetryOffset: 12}) // late
	if it, _ := x.Get(p1); it.Status != StatusRedriven {
		t.Fatalf("a late redrive after done: %s", it.Status)
	}
	if keys := x.parkedKeys(); len(keys) != 1 || string(keys[0]) != "k" {
		t.Fatalf("parked keys %q", keys)
	}
}

func ids(items []Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Entry.ID)
	}
	return out
}

func TestSelection(t *testing.T) {
	x := newIndex()
	for i, k := range []string{"a", "b", "a"} {
		x.addEntry(Entry{ID: ID("t", 0, int64(i)), Topic: "t", Offset: int64(i), Key: []byte(k), Generation: 1, Reason: ReasonHandler, QueueOffset: int64(i)})
	}
	x.addAction(Action{ID: ID("t", 0, 1), Action: ActionDiscard, Generation: 1})
	for _, c := range []struct {
		sel  Selection
		want string // ids, or the error's text
	}{
		{Selection{All: true}, "t/0/0,t/0/2"},
		{Selection{Key: "a"}, "t/0/0,t/0/2"},
		{Selection{Key: "b"}, "no pending dead events (key b)"},
		{Selection{IDs: []string{"t/0/2", "t/0/0"}}, "t/0/0,t/0/2"},
		{Selection{IDs: []string{"t/0/1"}}, "t/0/1 is discarded, not pending"},
		{Selection{IDs: []string{"t/0/9"}}, "t/0/9: no such dead event"},
		{Selection{}, "select events: ids, a key, or all"},
	} {
		items, err := c.sel.pending(x)
		got := strings.Join(ids(items), ",")
		if err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("%+v: %q, want %q", c.sel, got, c.want)
		}
	}
}
