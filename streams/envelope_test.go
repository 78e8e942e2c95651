package streams

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	in := Envelope{
		Type: "todo.ItemAdded", ID: "id-1", CorrelationID: "corr", CausationID: "cause",
		AggregateID: "list-1", AggregateVersion: 42, ReplyTo: "todo.replies", Context: "tenant-a",
		TraceParent: "00-abc-def-01", TraceState: "k=v", Baggage: "b=1", SentryTrace: "abc-def-1",
	}
	r := &kgo.Record{Headers: []kgo.RecordHeader{{Key: "other", Value: []byte("kept")}}}
	in.Write(r)
	out, err := ReadEnvelope(r)
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
	}
	if v, _ := Header(r, "other"); v != "kept" {
		t.Fatalf("foreign header lost: %q", v)
	}
	if len(r.Headers) != 13 {
		t.Fatalf("want 12 envelope headers + 1 foreign, got %d", len(r.Headers))
	}
	// Writing again replaces instead of duplicating.
	in.Type = "todo.ItemRemoved"
	in.Write(r)
	if len(r.Headers) != 13 {
		t.Fatalf("rewrite duplicated headers: %d", len(r.Headers))
	}
	if out, _ := ReadEnvelope(r); out.Type != "todo.ItemRemoved" {
		t.Fatalf("rewrite did not replace type: %q", out.Type)
	}
}

func TestEnvelopeEmptyFieldsWriteNothing(t *testing.T) {
	r := &kgo.Record{}
	Envelope{Type: "x.Y"}.Write(r)
	if len(r.Headers) != 1 || r.Headers[0].Key != HeaderType {
		t.Fatalf("headers: %+v", r.Headers)
	}
}

func TestEnvelopeBadVersion(t *testing.T) {
	r := &kgo.Record{Headers: []kgo.RecordHeader{{Key: HeaderAggregateVersion, Value: []byte("seven")}, {Key: HeaderID, Value: []byte("m")}}}
	e, err := ReadEnvelope(r)
	if err == nil || !strings.Contains(err.Error(), "recq-aggregate-version") {
		t.Fatalf("want error naming the header, got %v", err)
	}
	if e.ID != "m" {
		t.Fatalf("rest of the envelope lost: %+v", e)
	}
}

func TestNewIDIsUUIDv7AndOrdered(t *testing.T) {
	prev := ""
	for range 1000 {
		id := NewID()
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 7 {
			t.Fatalf("not a UUIDv7: %q (%v)", id, err)
		}
		if id <= prev {
			t.Fatalf("ids not increasing: %s after %s", id, prev)
		}
		prev = id
	}
}

func TestStampStartsAFlow(t *testing.T) {
	r := &kgo.Record{}
	Stamp(context.Background(), r)
	e, _ := ReadEnvelope(r)
	if e.ID == "" || e.CorrelationID != e.ID || e.CausationID != "" {
		t.Fatalf("new flow: want correlation = own id and no causation, got %+v", e)
	}
}

func TestStampContinuesTheHandledFlow(t *testing.T) {
	handled := Envelope{ID: "cmd-1", CorrelationID: "flow-9", Context: "tenant-a"}
	ctx := ContextWithMessage(context.Background(), handled)
	r1, r2 := &kgo.Record{}, &kgo.Record{}
	Stamp(ctx, r1)
	Stamp(ctx, r2)
	e1, _ := ReadEnvelope(r1)
	e2, _ := ReadEnvelope(r2)
	for _, e := range []Envelope{e1, e2} {
		if e.CorrelationID != "flow-9" || e.CausationID != "cmd-1" || e.Context != "tenant-a" {
			t.Fatalf("flow not continued: %+v", e)
		}
	}
	if e1.ID == e2.ID || e1.ID == "cmd-1" {
		t.Fatalf("each record needs its own id: %q %q", e1.ID, e2.ID)
	}
}

func TestStampHandledWithoutCorrelationUsesItsID(t *testing.T) {
	ctx := ContextWithMessage(context.Background(), Envelope{ID: "first"})
	r := &kgo.Record{}
	Stamp(ctx, r)
	e, _ := ReadEnvelope(r)
	if e.CorrelationID != "first" || e.CausationID != "first" {
		t.Fatalf("got %+v", e)
	}
}

func TestStampKeepsExplicitHeaders(t *testing.T) {
	ctx := ContextWithCorrelationID(context.Background(), "http-req-7")
	r := &kgo.Record{}
	Envelope{ID: "mine", CausationID: "explicit"}.Write(r)
	Stamp(ctx, r)
	e, _ := ReadEnvelope(r)
	if e.ID != "mine" || e.CausationID != "explicit" || e.CorrelationID != "http-req-7" {
		t.Fatalf("got %+v", e)
	}
}

func TestParseStartAt(t *testing.T) {
	ts := "2026-01-02T15:04:05Z"
	want, _ := time.Parse(time.RFC3339, ts)
	for in, exp := range map[string]StartAt{
		"beginning": FromBeginning(), "earliest": FromBeginning(), "end": FromEnd(), "latest": FromEnd(),
		"0": FromOffset(0), "17": FromOffset(17), ts: FromTime(want),
	} {
		got, err := ParseStartAt(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got.kind != exp.kind || got.offset != exp.offset || !got.at.Equal(exp.at) {
			t.Fatalf("%q: got %+v want %+v", in, got, exp)
		}
	}
	for _, bad := range []string{"", "-1", "yesterday", "2026-01-02"} {
		if _, err := ParseStartAt(bad); err == nil {
			t.Fatalf("%q: want error", bad)
		}
	}
}

// source is a consumer loop's record in hand.
type source struct{ env Envelope }

func (s *source) HandledEnvelope() Envelope { return s.env }

func TestContextWithMessageSourceFollowsTheRecordInHand(t *testing.T) {
	var cur source
	ctx := ContextWithMessageSource(context.Background(), &cur)
	for _, id := range []string{"evt-1", "evt-2"} {
		cur.env = Envelope{ID: id, CorrelationID: "flow-" + id}
		r := &kgo.Record{}
		Stamp(ctx, r)
		if got, _ := Header(r, HeaderCausationID); got != id {
			t.Fatalf("causation %q, want %q", got, id)
		}
		if got, _ := Header(r, HeaderCorrelationID); got != "flow-"+id {
			t.Fatalf("correlation %q, want flow-%s", got, id)
		}
	}
	if _, ok := MessageFromContext(context.Background()); ok {
		t.Fatal("a message in an empty context")
	}
}
