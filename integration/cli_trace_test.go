package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

// recq trace: a branching flow over two topics, printed as a tree in time
// order and as JSON, without the records of another flow, of the same flow
// before --since, or of an aborted transaction; and its errors.
func TestCLITrace(t *testing.T) {
	dev := testenv.StartDev(t, t.TempDir())
	bin := testenv.Recq(t)
	recq(t, dev.Addr, "", "topic", "create", "shop.orders", "--partitions", "2")
	recq(t, dev.Addr, "", "topic", "create", "shop.payments", "--partitions", "1")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pub, err := streams.NewPublisher([]string{dev.Addr})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(ctx)
	// Every record has its own timestamp, an hour ago and after, so the
	// deltas are known exactly.
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	publish := func(in context.Context, topic, key, typ string, after time.Duration) *kgo.Record {
		t.Helper()
		r := &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte("{}"), Timestamp: base.Add(after),
			Headers: []kgo.RecordHeader{{Key: streams.HeaderType, Value: []byte(typ)}}}
		if err := pub.Publish(in, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	handling := func(r *kgo.Record) context.Context {
		e, err := streams.ReadEnvelope(r)
		if err != nil {
			t.Fatal(err)
		}
		return streams.ContextWithMessage(ctx, e)
	}
	header := func(r *kgo.Record, h string) string { v, _ := streams.Header(r, h); return v }

	// A new flow: its correlation id is the root's id.
	root := publish(ctx, "shop.orders", "order-1", "shop.OrderPlaced", 0)
	flow := header(root, streams.HeaderCorrelationID)
	if flow != header(root, streams.HeaderID) || header(root, streams.HeaderCausationID) != "" {
		t.Fatalf("root not stamped as a new flow: %v", root.Headers)
	}
	// The same flow two days ago, first in its partition: outside the default --since.
	old := publish(streams.ContextWithCorrelationID(ctx, flow), "shop.payments", "order-1", "shop.CartAbandoned", -47*time.Hour)
	other := publish(ctx, "shop.orders", "order-2", "shop.OrderPlaced", 100*time.Millisecond)
	// The later sibling is published first: siblings are shown by time.
	childB := publish(handling(root), "shop.orders", "order-1", "shop.OrderConfirmed", 2*time.Second)
	childA := publish(handling(root), "shop.payments", "order-1", "shop.PaymentRequested", 1500*time.Millisecond)
	publish(handling(other), "shop.payments", "order-2", "shop.PaymentRequested", 2500*time.Millisecond)
	grand := publish(handling(childA), "shop.payments", "order-1", "shop.PaymentReceived", 3250*time.Millisecond)
	// A record of the flow in an aborted transaction, last in its partition.
	txn := testenv.Client(t, dev.Addr, kgo.TransactionalID("trace-test"))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	aborted := &kgo.Record{Topic: "shop.payments", Key: []byte("order-1"), Timestamp: base.Add(4 * time.Second),
		Headers: []kgo.RecordHeader{{Key: streams.HeaderType, Value: []byte("shop.PaymentRefunded")}}}
	streams.Stamp(handling(grand), aborted)
	if err := txn.ProduceSync(ctx, aborted).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}

	at := func(r *kgo.Record) string { return r.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z07:00") }
	where := func(r *kgo.Record) string { return fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset) }
	id := func(r *kgo.Record) string { return header(r, streams.HeaderID) }

	// The tree, cell by cell (columns are aligned with spaces).
	res := testenv.Run(t, "", bin, "--brokers", dev.Addr, "trace", flow)
	if res.Code != 0 {
		t.Fatalf("trace: %+v", res)
	}
	want := []string{
		"flow " + flow + ": 4 records in shop.orders, shop.payments (searched 2 topics), 1 root",
		"TYPE KEY RECORD TIME FROM ROOT FROM PARENT ID",
		"shop.OrderPlaced order-1 " + where(root) + " " + at(root) + " +0s - " + id(root),
		"├─ shop.PaymentRequested order-1 " + where(childA) + " " + at(childA) + " +1.5s +1.5s " + id(childA),
		"│ └─ shop.PaymentReceived order-1 " + where(grand) + " " + at(grand) + " +3.25s +1.75s " + id(grand),
		"└─ shop.OrderConfirmed order-1 " + where(childB) + " " + at(childB) + " +2s +2s " + id(childB),
	}
	if got := fieldLines(res.Stdout); !reflect.DeepEqual(got, want) {
		t.Fatalf("trace printed:\n%s\nwant (spaces squeezed):\n%s", res.Stdout, strings.Join(want, "\n"))
	}

	// The same as JSON, exactly.
	res = testenv.Run(t, "", bin, "--brokers", dev.Addr, "trace", flow, "--topics", "shop.payments,shop.orders", "--since", "2h", "-o", "json")
	if res.Code != 0 {
		t.Fatalf("trace -o json: %+v", res)
	}
	var got any
	if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil {
		t.Fatalf("trace -o json: %v\n%s", err, res.Stdout)
	}
	since := parseSinceOf(t, got)
	if d := time.Since(since); d < 2*time.Hour || d > 3*time.Hour {
		t.Fatalf("since %v is not about 2h ago", since)
	}
	node := func(r *kgo.Record, fromRoot int, fromParent any, children ...any) map[string]any {
		return map[string]any{
			"id": id(r), "causation_id": header(r, streams.HeaderCausationID), "type": header(r, streams.HeaderType),
			"key": string(r.Key), "topic": r.Topic, "partition": float64(r.Partition), "offset": float64(r.Offset),
			"timestamp": r.Timestamp.UTC().Format(time.RFC3339Nano), "from_root_ms": float64(fromRoot), "from_parent_ms": fromParent,
			"copy": false, "cause_missing": false, "children": append([]any{}, children...),
		}
	}
	wantJSON := map[string]any{
		"correlation_id": flow,
		"since":          since.Format(time.RFC3339Nano),
		"topics":         []any{"shop.orders", "shop.payments"},
		"records":        float64(4),
		"roots": []any{node(root, 0, nil,
			node(childA, 1500, float64(1500), node(grand, 3250, float64(1750))),
			node(childB, 2000, float64(2000)))},
	}
	if !reflect.DeepEqual(got, wantJSON) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(wantJSON, "", "  ")
		t.Fatalf("trace -o json:\n%s\nwant:\n%s", g, w)
	}

	// Further back, the old record is a root of its own, first by time.
	res = testenv.Run(t, "", bin, "--brokers", dev.Addr, "trace", flow, "--since", "3d", "-o", "json")
	var wide struct {
		Records int `json:"records"`
		Roots   []struct {
			ID, Type string
		} `json:"roots"`
	}
	if res.Code != 0 || json.Unmarshal([]byte(res.Stdout), &wide) != nil || wide.Records != 5 || len(wide.Roots) != 2 ||
		wide.Roots[0].ID != id(old) || wide.Roots[1].ID != id(root) {
		t.Fatalf("trace --since 3d: %+v", res)
	}

	// Without the root's topic, its children's tree has a missing cause.
	res = testenv.Run(t, "", bin, "--brokers", dev.Addr, "trace", flow, "--topics", "shop.payments")
	want = []string{
		"flow " + flow + ": 2 records in shop.payments (searched 1 topic), 1 root",
		"TYPE KEY RECORD TIME FROM ROOT FROM PARENT ID",
		"shop.PaymentRequested order-1 " + where(childA) + " " + at(childA) + " +0s ? " + id(childA),
		"└─ shop.PaymentReceived order-1 " + where(grand) + " " + at(grand) + " +1.75s +1.75s " + id(grand),
		"?: the record's cause (its recq-causation-id) is not among those found: older than --since, on a topic not searched, or never written",
	}
	if got := fieldLines(res.Stdout); res.Code != 0 || !reflect.DeepEqual(got, want) {
		t.Fatalf("trace --topics shop.payments: %+v\nwant (spaces squeezed):\n%s", res, strings.Join(want, "\n"))
	}

	dead := testenv.FreeAddr(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"not found", []string{"--brokers", dev.Addr, "trace", "no-such-flow"}, 1,
			"no records with correlation id no-such-flow in topics shop.orders, shop.payments since "},
		{"only before --since", []string{"--brokers", dev.Addr, "trace", flow, "--topics", "shop.payments", "--since", "1s"}, 1,
			"no records with correlation id " + flow + " in topic shop.payments since "},
		{"unknown topic", []string{"--brokers", dev.Addr, "trace", flow, "--topics", "shop.orders,nope"}, 1, `topic "nope" does not exist (see: recq topic list)`},
		{"bad since", []string{"--brokers", dev.Addr, "trace", flow, "--since", "yesterday"}, 2, `--since "yesterday": not a duration or a time`},
		{"no id", []string{"--brokers", dev.Addr, "trace"}, 2, "trace: accepts 1 arg(s), received 0 (see 'recq trace --help')"},
		{"unreachable broker", []string{"--brokers", dead, "trace", flow}, 1, "cannot reach Kafka at " + dead},
	} {
		res := testenv.Run(t, "", bin, tc.args...)
		if got := lines(res.Stderr); res.Code != tc.code || len(got) != 1 || !strings.HasPrefix(got[0], "recq: ") || !strings.Contains(got[0], tc.msg) {
			t.Errorf("%s: want exit %d and one line with %q, got %+v", tc.name, tc.code, tc.msg, res)
		}
		if tc.name == "not found" && !strings.HasSuffix(strings.TrimSpace(res.Stderr), "; widen --since or --topics") {
			t.Errorf("not found: no advice in %q", res.Stderr)
		}
	}
}

// fieldLines is each non-empty line of s with its runs of spaces squeezed.
func fieldLines(s string) []string {
	var out []string
	for _, l := range lines(s) {
		out = append(out, strings.Join(strings.Fields(l), " "))
	}
	return out
}

func parseSinceOf(t *testing.T, v any) time.Time {
	t.Helper()
	m, _ := v.(map[string]any)
	s, _ := m["since"].(string)
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("since %q: %v", s, err)
	}
	return at
}
