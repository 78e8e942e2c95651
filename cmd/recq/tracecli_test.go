package main

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/streams"
)

var traceT0 = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

func rec(id, cause, typ, topic string, offset int64, after time.Duration) traceRecord {
	return traceRecord{ID: id, CausationID: cause, Type: typ, Key: []byte("k"), Topic: topic, Offset: offset, Timestamp: traceT0.Add(after)}
}

// shape is a tree as "id(child child)" for comparing.
func shape(ns []*traceNode) string {
	var parts []string
	for _, n := range ns {
		s := n.ID
		if s == "" {
			s = "<" + n.Type + ">"
		}
		if n.copy {
			s += "=copy"
		}
		if n.causeMissing {
			s += "?"
		}
		if len(n.children) > 0 {
			s += "(" + shape(n.children) + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func TestBuildTrace(t *testing.T) {
	for _, tc := range []struct {
		name string
		recs []traceRecord
		want string
	}{
		{"branching, siblings by time whatever the input order", []traceRecord{
			rec("c2", "r", "B", "orders", 5, 2*time.Second),
			rec("g", "c1", "C", "payments", 1, 3*time.Second),
			rec("r", "", "A", "orders", 4, 0),
			rec("c1", "r", "B", "payments", 0, time.Second),
		}, "r(c1(g) c2)"},
		{"same time: ordered by topic, partition, offset", []traceRecord{
			rec("b", "r", "B", "orders", 9, time.Second),
			rec("a", "r", "B", "orders", 2, time.Second),
			rec("r", "", "A", "orders", 1, 0),
		}, "r(a b)"},
		{"unknown cause makes a root, roots by time", []traceRecord{
			rec("x", "gone", "X", "orders", 3, 2*time.Second),
			rec("r", "", "A", "orders", 1, time.Second),
			rec("y", "x", "Y", "orders", 4, 3*time.Second),
		}, "r x?(y)"},
		{"a copy of an id goes under the earliest record with it", []traceRecord{
			rec("e", "r", "E", "app.dlq", 0, 5*time.Second),
			rec("r", "", "A", "orders", 1, 0),
			rec("e", "r", "E", "orders", 2, time.Second),
			rec("f", "e", "F", "orders", 3, 7*time.Second),
		}, "r(e(e=copy f))"},
		{"records without an id are leaves", []traceRecord{
			rec("", "r", "B", "orders", 2, time.Second),
			rec("r", "", "A", "orders", 1, 0),
			rec("", "", "C", "orders", 3, 2*time.Second),
		}, "r(<B>) <C>"},
		{"a cycle is cut at its earliest record", []traceRecord{
			rec("b", "a", "B", "orders", 2, 2*time.Second),
			rec("a", "b", "A", "orders", 1, time.Second),
			rec("c", "b", "C", "orders", 3, 3*time.Second),
			rec("s", "s", "S", "orders", 4, 0),
		}, "s a(b(c))"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := shape(buildTrace(tc.recs)); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPrintTrace(t *testing.T) {
	roots := buildTrace([]traceRecord{
		rec("r", "", "shop.OrderPlaced", "orders", 4, 0),
		rec("c1", "r", "shop.PaymentRequested", "payments", 0, 1500*time.Millisecond),
		rec("g", "c1", "shop.PaymentReceived", "payments", 1, 3250*time.Millisecond),
		rec("c2", "r", "shop.OrderConfirmed", "orders", 5, 2*time.Second),
		rec("c2", "r", "shop.OrderConfirmed", "app.dlq", 0, 2100*time.Millisecond),
		rec("o", "gone", "", "orders", 9, -20*time.Millisecond),
	})
	roots[0].Key = nil
	roots[1].children[0].Key = []byte{0xff, 0x01}
	var b strings.Builder
	if err := render(&b, "table", nil, func(w io.Writer) { printTrace(w, "flow-1", []string{"app.dlq", "orders", "payments"}, roots, 6) }); err != nil {
		t.Fatal(err)
	}
	want := `flow flow-1: 6 records in app.dlq, orders, payments (searched 3 topics), 2 roots
TYPE                              KEY          RECORD        TIME                      FROM ROOT  FROM PARENT  ID
-                                 -            orders/0/9    2026-01-02T15:04:04.980Z  +0s        ?            o
shop.OrderPlaced                  k            orders/0/4    2026-01-02T15:04:05.000Z  +0s        -            r
├─ shop.PaymentRequested          base64:/wE=  payments/0/0  2026-01-02T15:04:06.500Z  +1.5s      +1.5s        c1
│  └─ shop.PaymentReceived        k            payments/0/1  2026-01-02T15:04:08.250Z  +3.25s     +1.75s       g
└─ shop.OrderConfirmed            k            orders/0/5    2026-01-02T15:04:07.000Z  +2s        +2s          c2
   └─ shop.OrderConfirmed (copy)  k            app.dlq/0/0   2026-01-02T15:04:07.100Z  +2.1s      +100ms       c2
?: the record's cause (its recq-causation-id) is not among those found: older than --since, on a topic not searched, or never written
(copy): the record has the recq-id of the one above it (a dead event, a redrive or a saga's routed copy)
`
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}

	js, err := json.Marshal(nodesJSON(roots[1].children[1].children))
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"id":"c2","causation_id":"r","type":"shop.OrderConfirmed","key":"k","topic":"app.dlq","partition":0,"offset":0,` +
		`"timestamp":"2026-01-02T15:04:07.1Z","from_root_ms":2100,"from_parent_ms":100,"copy":true,"cause_missing":false,"children":[]}]`; string(js) != want {
		t.Fatalf("json:\n%s\nwant:\n%s", js, want)
	}
	js, _ = json.Marshal(nodesJSON(roots[:1]))
	if !strings.Contains(string(js), `"key":null,"topic":"orders"`) || !strings.Contains(string(js), `"from_parent_ms":null,"copy":false,"cause_missing":true`) {
		t.Fatalf("json of the orphan root: %s", js)
	}
	js, _ = json.Marshal(nodesJSON(roots[1].children[:1]))
	if !strings.Contains(string(js), `"key":"/wE=","key_encoding":"base64"`) {
		t.Fatalf("json of a binary key: %s", js)
	}
}

func TestFlowRecord(t *testing.T) {
	r := &kgo.Record{Topic: "orders", Partition: 2, Offset: 7, Key: []byte("k"), Timestamp: traceT0, Headers: []kgo.RecordHeader{
		{Key: streams.HeaderType, Value: []byte("shop.OrderPlaced")},
		{Key: streams.HeaderID, Value: []byte("id-1")},
		{Key: streams.HeaderCorrelationID, Value: []byte("flow-1")},
		{Key: streams.HeaderCausationID, Value: []byte("id-0")},
		{Key: streams.HeaderCorrelationID, Value: []byte("other")}, // the first wins
	}}
	got, ok := flowRecord(r, "flow-1")
	want := traceRecord{ID: "id-1", CausationID: "id-0", Type: "shop.OrderPlaced", Key: []byte("k"), Topic: "orders", Partition: 2, Offset: 7, Timestamp: traceT0}
	if !ok || got.ID != want.ID || got.CausationID != want.CausationID || got.Type != want.Type || string(got.Key) != "k" ||
		got.Topic != want.Topic || got.Partition != 2 || got.Offset != 7 || !got.Timestamp.Equal(traceT0) {
		t.Fatalf("got %+v, %v", got, ok)
	}
	if _, ok := flowRecord(r, "other"); ok {
		t.Fatal("matched the second correlation header")
	}
	if _, ok := flowRecord(&kgo.Record{}, "flow-1"); ok {
		t.Fatal("matched a record without headers")
	}
}

func TestParseSince(t *testing.T) {
	now := traceT0
	for in, want := range map[string]time.Time{
		"24h":                  now.Add(-24 * time.Hour),
		"90m":                  now.Add(-90 * time.Minute),
		"7d":                   now.Add(-7 * 24 * time.Hour),
		"2026-01-01T10:00:00Z": time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC),
	} {
		if got, err := parseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("%s: got %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yesterday", "0s", "-1h", "d", "1.5d", "2027-01-01T00:00:00Z"} {
		var ue usageError
		if _, err := parseSince(in, now); !errors.As(err, &ue) {
			t.Errorf("%q: want a usage error, got %v", in, err)
		}
	}
}
