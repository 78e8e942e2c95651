package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/schema"
)

type orderV1 struct {
	ID     string `avro:"id"`
	Amount int64  `avro:"amount"`
	Status string `avro:"status"`
}

type customer struct {
	Name string `avro:"name"`
	Tier string `avro:"tier"`
}

// orderV2 is shop.OrderPlaced after it gained a customer.
type orderV2 struct {
	ID       string   `avro:"id"`
	Amount   int64    `avro:"amount"`
	Status   string   `avro:"status"`
	Customer customer `avro:"customer"`
}

type payment struct {
	OrderID string  `avro:"order_id"`
	Amount  float64 `avro:"amount"`
}

const (
	orderV1Avsc = `{"type":"record","name":"OrderPlaced","namespace":"shop","fields":[{"name":"id","type":"string"},{"name":"amount","type":"long"},{"name":"status","type":"string"}]}`
	orderV2Avsc = `{"type":"record","name":"OrderPlaced","namespace":"shop","fields":[{"name":"id","type":"string"},{"name":"amount","type":"long"},{"name":"status","type":"string"},` +
		`{"name":"customer","type":{"type":"record","name":"Customer","fields":[{"name":"name","type":"string"},{"name":"tier","type":"string"}]},"default":{"name":"","tier":""}}]}`
	paymentAvsc = `{"type":"record","name":"PaymentReceived","namespace":"shop","fields":[{"name":"order_id","type":"string"},{"name":"amount","type":"double"}]}`
)

var shopT0 = time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)

// shopEvent is one record of the known topic and what replay must write
// for it.
type shopEvent struct {
	minute    int // the record's timestamp: shopT0 plus this many minutes
	partition int32
	key       string
	value     any
	typ       string
	json      string // the payload as replay writes it
	txn       string // "": not transactional; "commit" or "abort"
	offset    int64  // set when produced
}

// shopEvents: two types on three partitions, OrderPlaced gaining a field
// mid-topic, a committed and an aborted transaction at partition tails
// (their markers carry the wall clock, so windows below are kept before
// them).
func shopEvents() []*shopEvent {
	o1 := func(id string, amount int64, status string) orderV1 { return orderV1{id, amount, status} }
	return []*shopEvent{
		{minute: 0, partition: 0, key: "o1", value: o1("o1", 50, "open"), typ: "shop.OrderPlaced", json: `{"id":"o1","amount":50,"status":"open"}`},
		{minute: 1, partition: 1, key: "o2", value: o1("o2", 150, "open"), typ: "shop.OrderPlaced", json: `{"id":"o2","amount":150,"status":"open"}`},
		{minute: 2, partition: 2, key: "o1", value: payment{"o1", 50.5}, typ: "shop.PaymentReceived", json: `{"order_id":"o1","amount":50.5}`},
		{minute: 3, partition: 0, key: "o3", value: o1("o3", 250, "closed"), typ: "shop.OrderPlaced", json: `{"id":"o3","amount":250,"status":"closed"}`},
		{minute: 6, partition: 1, key: "o4", value: orderV2{"o4", 300, "open", customer{"Ann", "gold"}}, typ: "shop.OrderPlaced",
			json: `{"id":"o4","amount":300,"status":"open","customer":{"name":"Ann","tier":"gold"}}`},
		{minute: 7, partition: 2, key: "o2", value: payment{"o2", 150}, typ: "shop.PaymentReceived", json: `{"order_id":"o2","amount":150}`},
		{minute: 8, partition: 0, key: "o5", value: orderV2{"o5", 80, "open", customer{"Bob", "silver"}}, typ: "shop.OrderPlaced",
			json: `{"id":"o5","amount":80,"status":"open","customer":{"name":"Bob","tier":"silver"}}`},
		{minute: 9, partition: 2, key: "o4", value: payment{"o4", 300}, typ: "shop.PaymentReceived", json: `{"order_id":"o4","amount":300}`, txn: "commit"},
		{minute: 10, partition: 1, key: "x1", value: o1("x1", 999, "open"), typ: "shop.OrderPlaced", txn: "abort"},
		{minute: 11, partition: 1, key: "x1", value: payment{"x1", 999}, typ: "shop.PaymentReceived", txn: "abort"},
	}
}

type shopEnv struct {
	addr, registry string
	events         []*shopEvent
}

func startTestRegistry(t testing.TB) (string, *schema.Serde) {
	t.Helper()
	return testenv.Registry(t, schema.WithSchema(orderV1{}, orderV1Avsc),
		schema.WithSchema(orderV2{}, orderV2Avsc), schema.WithSchema(payment{}, paymentAvsc))
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// startShop makes the known topic "shop".
func startShop(t *testing.T) *shopEnv {
	t.Helper()
	env := &shopEnv{addr: testenv.Kafka(t), events: shopEvents()}
	var serde *schema.Serde
	env.registry, serde = startTestRegistry(t)
	testenv.Topic(t, env.addr, "shop", 3)
	ctx := testCtx(t)
	plain := testenv.Client(t, env.addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	txn := testenv.Client(t, env.addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionalID("shop-txn"))
	var open string
	for i, e := range env.events {
		v, typ, err := serde.Encode(ctx, "shop", e.value)
		if err != nil || typ != e.typ {
			t.Fatalf("encode %d: %s, %v", i, typ, err)
		}
		r := &kgo.Record{Topic: "shop", Partition: e.partition, Key: []byte(e.key), Value: v, Timestamp: shopT0.Add(time.Duration(e.minute) * time.Minute),
			Headers: []kgo.RecordHeader{{Key: "recq-type", Value: []byte(typ)}, {Key: "recq-id", Value: []byte(fmt.Sprint("id-", i))},
				{Key: "recq-aggregate-id", Value: []byte(e.key)}, {Key: "region", Value: []byte([]string{"eu", "us"}[i%2])}}}
		cl := plain
		if e.txn != "" {
			cl = txn
			if open == "" {
				if err := txn.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
			}
			open = e.txn
		}
		res := cl.ProduceSync(ctx, r)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		e.offset = res[0].Record.Offset
		if next := i + 1; open != "" && (next == len(env.events) || env.events[next].txn != open) {
			if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(open == "commit")); err != nil {
				t.Fatal(err)
			}
			open = ""
		}
	}
	return env
}

// run runs recq in process against env.
func (env *shopEnv) run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append([]string{"--brokers", env.addr, "--registry", env.registry}, args...))
	err = root.ExecuteContext(testCtx(t))
	return out.String(), errb.String(), err
}

// expected lists the events replay writes, in its order: partition by
// partition, by offset; aborted ones never.
func (env *shopEnv) expected(keep func(*shopEvent) bool) []*shopEvent {
	var out []*shopEvent
	for _, e := range env.events {
		if e.txn != "abort" && (keep == nil || keep(e)) {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b *shopEvent) int { return int(a.partition-b.partition)*1000 + int(a.offset-b.offset) })
	return out
}

func (env *shopEnv) index(e *shopEvent) int { return slices.Index(env.events, e) }

// checkJSONL compares replay's JSON lines with the events, record by record.
func (env *shopEnv) checkJSONL(t *testing.T, got string, want []*shopEvent) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if got == "" {
		lines = nil
	}
	if len(lines) != len(want) {
		t.Fatalf("want %d lines, got %d:\n%s", len(want), len(lines), got)
	}
	for n, e := range want {
		i := env.index(e)
		region := []string{"eu", "us"}[i%2]
		line := fmt.Sprintf(`{"topic":"shop","partition":%d,"offset":%d,"timestamp":"%s","key":%q,"type":%q,"id":"id-%d","aggregate_id":%q,"headers":{"region":%q},"value":%s}`,
			e.partition, e.offset, shopT0.Add(time.Duration(e.minute)*time.Minute).Format("2006-01-02T15:04:05.000Z"), e.key, e.typ, i, e.key, region, e.json)
		if lines[n] != line {
			t.Errorf("line %d:\n got %s\nwant %s", n+1, lines[n], line)
		}
	}
}

func TestReplayJSONLines(t *testing.T) {
	env := startShop(t)
	out, stderr, err := env.run(t, "replay", "shop")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	env.checkJSONL(t, out, env.expected(nil))
	if want := "recq: replay: 8 records read, 8 matched, 8 written to stdout, 0 skipped (undecodable), in "; !strings.HasPrefix(stderr, want) {
		t.Fatalf("summary:\n got %s\nwant %s...", stderr, want)
	}
	// To a file, twice: the same bytes, and the same as stdout.
	dir := t.TempDir()
	for _, name := range []string{"a.jsonl", "b.jsonl"} {
		if _, stderr, err := env.run(t, "replay", "shop", "--out", filepath.Join(dir, name)); err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
	}
	a, _ := os.ReadFile(filepath.Join(dir, "a.jsonl"))
	b, _ := os.ReadFile(filepath.Join(dir, "b.jsonl"))
	if !bytes.Equal(a, b) || string(a) != out {
		t.Fatalf("two replays of a closed range differ:\n%s\n---\n%s\n---\n%s", a, b, out)
	}
	if files, _ := os.ReadDir(dir); len(files) != 2 {
		t.Fatalf("want exactly the two outputs in %s, got %v", dir, files)
	}
}

func TestReplayCSV(t *testing.T) {
	env := startShop(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "shop.csv")
	if _, stderr, err := env.run(t, "replay", "shop", "--out", out); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	meta := "topic,partition,offset,timestamp,key,type,id,correlation_id,causation_id,aggregate_id,aggregate_version"
	for typ, cols := range map[string]string{
		"shop.OrderPlaced":     meta + ",id,amount,status,customer.name,customer.tier",
		"shop.PaymentReceived": meta + ",order_id,amount",
	} {
		f, err := os.Open(filepath.Join(dir, "shop."+typ+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(rows[0], ","); got != cols {
			t.Fatalf("%s header:\n got %s\nwant %s", typ, got, cols)
		}
		want := env.expected(func(e *shopEvent) bool { return e.typ == typ })
		if len(rows)-1 != len(want) {
			t.Fatalf("%s: want %d rows, got %d", typ, len(want), len(rows)-1)
		}
		for n, e := range want {
			var payload map[string]any
			dec := json.NewDecoder(strings.NewReader(e.json))
			dec.UseNumber()
			if err := dec.Decode(&payload); err != nil {
				t.Fatal(err)
			}
			row := []string{"shop", fmt.Sprint(e.partition), fmt.Sprint(e.offset), shopT0.Add(time.Duration(e.minute) * time.Minute).Format("2006-01-02T15:04:05.000Z"),
				e.key, e.typ, fmt.Sprint("id-", env.index(e)), "", "", e.key, ""}
			for _, c := range strings.Split(cols, ",")[len(row):] {
				v := lookup(payload, strings.Split(c, "."))
				if v == nil {
					row = append(row, "") // written before the schema had the field
				} else {
					row = append(row, fmt.Sprint(v))
				}
			}
			if !reflect.DeepEqual(rows[n+1], row) {
				t.Errorf("%s row %d:\n got %q\nwant %q", typ, n+1, rows[n+1], row)
			}
		}
	}
	if files, _ := os.ReadDir(dir); len(files) != 2 {
		t.Fatalf("want the two CSV files and nothing else in %s, got %v", dir, files)
	}
	// One type: the file named by --out.
	one := filepath.Join(dir, "payments.csv")
	if _, stderr, err := env.run(t, "replay", "shop", "--type", "shop.PaymentReceived", "--out", one); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	b, err := os.ReadFile(one)
	if err != nil || strings.Count(string(b), "\n") != 4 {
		t.Fatalf("want a header and 3 rows in %s, got %q (%v)", one, b, err)
	}
}

// The window is from inclusive to exclusive, by time and by offset.
func TestReplayWindow(t *testing.T) {
	env := startShop(t)
	at := func(m int) string { return shopT0.Add(time.Duration(m) * time.Minute).Format(time.RFC3339) }
	for _, tc := range []struct {
		name string
		args []string
		keep func(*shopEvent) bool
	}{
		{"RFC 3339", []string{"--from", at(3), "--to", at(8)}, func(e *shopEvent) bool { return e.minute >= 3 && e.minute < 8 }},
		{"epoch ms", []string{"--from", fmt.Sprint(shopT0.Add(3 * time.Minute).UnixMilli()), "--to", fmt.Sprint(shopT0.Add(7 * time.Minute).UnixMilli())},
			func(e *shopEvent) bool { return e.minute >= 3 && e.minute < 7 }},
		{"date", []string{"--from", "2026-01-02", "--to", "2026-01-03"}, nil},
		{"after the date", []string{"--from", "2026-01-03"}, func(*shopEvent) bool { return false }},
		{"relative", []string{"--from", "-1000000h", "--to", "now"}, nil},
		{"offsets", []string{"--from-offset", "1", "--to-offset", "2"}, func(e *shopEvent) bool { return e.offset == 1 }},
		{"offsets per partition", []string{"--from-offset", "0=1,2=2", "--to-offset", "0=2"},
			func(e *shopEvent) bool {
				return e.partition == 0 && e.offset == 1 || e.partition == 1 || e.partition == 2 && e.offset >= 2
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, err := env.run(t, append([]string{"replay", "shop"}, tc.args...)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			env.checkJSONL(t, out, env.expected(tc.keep))
		})
	}
}

func TestReplayFilters(t *testing.T) {
	env := startShop(t)
	for _, tc := range []struct {
		name string
		args []string
		keep func(*shopEvent) bool
	}{
		{"key", []string{"--key", "o1", "--key", "o4"}, func(e *shopEvent) bool { return e.key == "o1" || e.key == "o4" }},
		{"type", []string{"--type", "shop.PaymentReceived"}, func(e *shopEvent) bool { return e.typ == "shop.PaymentReceived" }},
		{"header", []string{"--header", "region=us"}, func(e *shopEvent) bool { return env.index(e)%2 == 1 }},
		{"where number", []string{"--where", "amount>100"}, func(e *shopEvent) bool {
			return !strings.Contains(e.json, `"amount":50`) && !strings.Contains(e.json, `"amount":80`)
		}},
		{"where string and number", []string{"--where", `status=="open" and amount>=150`},
			func(e *shopEvent) bool { return e.typ == "shop.OrderPlaced" && (e.key == "o2" || e.key == "o4") }},
		{"where nested", []string{"--where", "customer.tier='gold'"}, func(e *shopEvent) bool { return strings.Contains(e.json, "gold") }},
		{"where missing is null", []string{"--where", "customer==null", "--type", "shop.OrderPlaced"},
			func(e *shopEvent) bool { return e.typ == "shop.OrderPlaced" && !strings.Contains(e.json, "customer") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, err := env.run(t, append([]string{"replay", "shop"}, tc.args...)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			env.checkJSONL(t, out, env.expected(tc.keep))
		})
	}
}

// Each mistake is one clear line, and no file is left behind.
func TestReplayBadInput(t *testing.T) {
	env := startShop(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "x.jsonl")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nosuch", "--out", out}, `topic "nosuch" does not exist (create it with: recq topic create nosuch --partitions N)`},
		{[]string{"shop", "--from", "2026-01-03", "--to", "2026-01-02", "--out", out},
			"--from 2026-01-03T00:00:00Z is after --to 2026-01-02T00:00:00Z (the window is from inclusive to exclusive; swap them)"},
		{[]string{"shop", "--from-offset", "5", "--to-offset", "2"}, "--from-offset 5 is after --to-offset 2"},
		{[]string{"shop", "--from", "yesterday"}, `--from "yesterday": want an RFC 3339 time (2026-01-02T15:04:05Z), a date (2026-01-02), epoch milliseconds, now, or a duration from now (-24h, -7d)`},
		{[]string{"shop", "--to-offset", "0=x"}, `--to-offset "0=x": want an offset (120) or partition=offset pairs (0=120,2=300)`},
		{[]string{"shop", "--from-offset", "7=1"}, `topic "shop" has no partition 7 (it has 3)`},
		{[]string{"shop", "--where", "amount>"}, `--where "amount>": at 8: want a value (100, "open", true, null) at the end`},
		{[]string{"shop", "--where", "amount 100"}, `--where "amount 100": at 8: want ==, !=, >, >=, < or <= after "amount", got "100"`},
		{[]string{"shop", "--where", `status=="open" or amount>1`}, `--where "status==\"open\" or amount>1": at 16: want "and" between comparisons, got "or amount>1"`},
		{[]string{"shop", "--out", filepath.Join(dir, "missing", "x.jsonl")}, "cannot write --out " + filepath.Join(dir, "missing", "x.jsonl") + ": no such file or directory"},
		{[]string{"shop", "--out", dir}, "--out " + dir + " is a directory: give a file name"},
		{[]string{"shop", "--out", "x.parquet"}, "--out x.parquet: Parquet output is not built yet; write .jsonl or .csv"},
	} {
		_, _, err := env.run(t, append([]string{"replay"}, tc.args...)...)
		if err == nil || err.Error() != tc.want {
			t.Errorf("replay %s:\n got %v\nwant %s", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Fatalf("failed replays left %v", files)
	}
}

// An undecodable record is skipped and counted, or with --strict stops the
// replay with nothing written.
func TestReplayUndecodable(t *testing.T) {
	env := startShop(t)
	ctx := testCtx(t)
	testenv.Topic(t, env.addr, "mixed", 1)
	cl := testenv.Client(t, env.addr)
	for _, v := range [][]byte{[]byte(`{"n":1}`), {0, 0, 0, 0x27, 0x0f, 1, 2}, []byte(`{"n": 2}`), []byte("not json")} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "mixed", Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "m.jsonl")
	_, stderr, err := env.run(t, "replay", "mixed", "--out", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	b, _ := os.ReadFile(out)
	var values []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r struct{ Value json.RawMessage }
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		values = append(values, string(r.Value))
	}
	if !slices.Equal(values, []string{`{"n":1}`, `{"n":2}`}) {
		t.Fatalf("values: %q", values)
	}
	for _, want := range []string{"4 records read, 2 matched, 2 written to " + out + ", 2 skipped (undecodable)",
		"  skipped mixed/0/1: schema: schema id 9999: ", "  skipped mixed/0/3: the value is neither Confluent-framed Avro nor JSON"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("summary lacks %q:\n%s", want, stderr)
		}
	}
	strict := filepath.Join(dir, "s.jsonl")
	_, _, err = env.run(t, "replay", "mixed", "--strict", "--out", strict)
	if err == nil || !strings.HasPrefix(err.Error(), "replay: mixed/0/1: schema: schema id 9999: ") || !strings.HasSuffix(err.Error(), "; nothing was written (without --strict such records are skipped and counted)") {
		t.Fatalf("--strict: %v", err)
	}
	if _, err := os.Stat(strict); !os.IsNotExist(err) {
		t.Fatalf("--strict left %s behind (%v)", strict, err)
	}
	if files, _ := os.ReadDir(dir); len(files) != 1 {
		t.Fatalf("want only m.jsonl in %s, got %v", dir, files)
	}
}

func TestParseWhere(t *testing.T) {
	p, err := parseWhere(`amount>100 AND status == "o\"pen" and x.y<=-1.5e2 and ok!=true and gone==null`)
	if err != nil {
		t.Fatal(err)
	}
	want := predicate{{[]string{"amount"}, ">", json.Number("100")}, {[]string{"status"}, "==", `o"pen`},
		{[]string{"x", "y"}, "<=", json.Number("-1.5e2")}, {[]string{"ok"}, "!=", true}, {[]string{"gone"}, "==", nil}}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("got %#v", p)
	}
	m := map[string]any{"amount": json.Number("100.5"), "status": `o"pen`, "x": map[string]any{"y": json.Number("-150")}, "ok": false}
	if !p.match(m) {
		t.Fatal("want a match")
	}
	m["amount"] = "lots" // a string is never ordered against a number
	if p.match(m) {
		t.Fatal("want no match")
	}
	if _, err := parseWhere("flag>true"); err == nil {
		t.Fatal("booleans are not ordered")
	}
}
