package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

// Where a newcomer tripped over the CLI (issue 14): each case here failed
// before it was fixed.

// A mistyped command is a wrong call: exit 2 and one line saying so, at
// every level, with no broker needed.
func TestCLIUnknownCommands(t *testing.T) {
	bin := testenv.Recq(t)
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"topic", "craete"}, `unknown command "craete" for "recq topic" (see recq topic --help); did you mean "create"?`},
		{[]string{"consum"}, `unknown command "consum" for "recq" (see recq --help); did you mean "consume"?`},
		{[]string{"topic", "craete", "orders", "--partitions", "3"}, `unknown command "craete" for "recq topic" (see recq topic --help)`},
		{[]string{"groups", "lst"}, `unknown command "lst" for "recq groups" (see recq groups --help); did you mean "list"?`},
		{[]string{"schema", "regster", "x"}, `unknown command "regster" for "recq schema"`},
		{[]string{"dlq", "nope"}, `unknown command "nope" for "recq dlq" (see recq dlq --help)`},
		{[]string{"topic", "list", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"topic", "describe"}, "topic describe: accepts 1 arg(s), received 0"},
	} {
		res := testenv.Run(t, "", bin, tc.args...)
		if res.Code != 2 || !strings.HasPrefix(res.Stderr, "recq: "+tc.msg) {
			t.Errorf("recq %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(tc.args, " "), res.Code, res.Stderr, tc.msg)
		}
		if len(lines(res.Stderr)) != 1 || res.Stdout != "" {
			t.Errorf("recq %s: want one line on stderr and nothing on stdout, got\nstdout: %s\nstderr: %s", strings.Join(tc.args, " "), res.Stdout, res.Stderr)
		}
	}
	// A group alone still shows its help.
	if res := testenv.Run(t, "", bin, "topic"); res.Code != 0 || !strings.Contains(res.Stdout, "Available Commands:") {
		t.Errorf("recq topic: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	// The commands the newcomer looked at have examples (the unit test
	// TestEveryLeafHasExample walks the whole tree).
	for _, c := range [][]string{{"topic", "list"}, {"topic", "describe"}, {"topic", "delete"}, {"groups", "list"},
		{"groups", "describe"}, {"schema", "get"}, {"schema", "list"}, {"schema", "delete"}, {"dlq", "show"}, {"send"}} {
		if res := testenv.Run(t, "", bin, append(c, "--help")...); res.Code != 0 || !strings.Contains(res.Stdout, "\nExamples:\n  recq "+strings.Join(c, " ")) {
			t.Errorf("recq %s --help has no examples:\n%s", strings.Join(c, " "), res.Stdout)
		}
	}
}

// Names and configs Kafka refuses are refused before anything is created
// or changed: exit 2, saying what Kafka allows.
func TestCLITopicRules(t *testing.T) {
	dev := testenv.StartDev(t, t.TempDir())
	bin := testenv.Recq(t)
	recq(t, dev.Addr, "", "topic", "create", "kept", "--config", "retention.ms=86400000")
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"topic", "create", "bad/name"}, `topic name "bad/name" has '/' at position 4: Kafka allows only ASCII letters, digits, '.', '_' and '-'`},
		{[]string{"topic", "create", ".."}, `topic name ".." is not allowed by Kafka`},
		{[]string{"topic", "create", strings.Repeat("t", 250)}, "topic name is 250 characters long; Kafka allows at most 249"},
		{[]string{"topic", "create", "t", "--config", "retention.ms=abc"}, "--config retention.ms=abc: want a whole number"},
		{[]string{"topic", "create", "t", "--config", "retention.time=1"}, "--config retention.time: not a Kafka topic config; known ones: cleanup.policy, compression.gzip.level,"},
		{[]string{"topic", "create", "t", "--config", "cleanup.policy=forever"}, "--config cleanup.policy=forever: want delete or compact, or both separated by a comma"},
		{[]string{"topic", "alter", "kept", "--config", "retention.ms=abc"}, "--config retention.ms=abc: want a whole number"},
		{[]string{"topic", "alter", "kept", "--config", "retention.ms=1", "--config", "colour=blue"}, "--config colour: not a Kafka topic config"},
	} {
		res := testenv.Run(t, "", bin, append([]string{"--brokers", dev.Addr}, tc.args...)...)
		if got := lines(res.Stderr); res.Code != 2 || len(got) != 1 || !strings.Contains(got[0], tc.msg) {
			t.Errorf("recq %.60s: exit %d, stderr %q; want exit 2 and %q", strings.Join(tc.args, " "), res.Code, res.Stderr, tc.msg)
		}
	}
	if out := recq(t, dev.Addr, "", "topic", "list").Stdout; strings.Contains(out, "bad") || strings.Contains(out, "\nt ") {
		t.Errorf("a refused topic was created:\n%s", out)
	}
	if out := recq(t, dev.Addr, "", "topic", "describe", "kept").Stdout; !strings.Contains(out, "retention: time 24h0m0s") {
		t.Errorf("a refused alter changed the topic:\n%s", out)
	}
	recq(t, dev.Addr, "", "topic", "alter", "kept", "--config", "retention.ms=-1", "--config", "cleanup.policy=compact,delete")
}

// -o json speaks snake_case; tables print partitions readably and count in
// the singular where there is one.
func TestCLIOutput(t *testing.T) {
	dev := testenv.StartDev(t, t.TempDir())
	if out := recq(t, dev.Addr, "", "topic", "create", "one", "--partitions", "1").Stdout; out != "created topic one with 1 partition\n" {
		t.Errorf("create: %q", out)
	}
	recq(t, dev.Addr, "", "topic", "create", "three", "--partitions", "3")
	if res := recq(t, dev.Addr, `{"n":1}`+"\n", "produce", "three"); res.Stderr != "produced 1 record to three\n" {
		t.Errorf("produce: %q", res.Stderr)
	}
	if out := recq(t, dev.Addr, "", "topic", "describe", "one").Stdout; !strings.Contains(out, "), 1 partition\n") {
		t.Errorf("describe:\n%s", out)
	}
	desc := recq(t, dev.Addr, "", "topic", "describe", "three", "-o", "json").Stdout
	var info struct {
		Name       string `json:"name"`
		Partitions []struct {
			Partition   int32 `json:"partition"`
			StartOffset int64 `json:"start_offset"`
			EndOffset   int64 `json:"end_offset"`
			Records     int64 `json:"records"`
		} `json:"partitions"`
		Retention struct {
			Ms     int64  `json:"ms"`
			Policy string `json:"cleanup_policy"`
		} `json:"retention"`
	}
	if err := json.Unmarshal([]byte(desc), &info); err != nil || info.Name != "three" || len(info.Partitions) != 3 || info.Retention.Policy != "delete" {
		t.Fatalf("describe -o json: %v\n%s", err, desc)
	}
	var records int64
	for _, p := range info.Partitions {
		records += p.Records
	}
	if records != 1 {
		t.Errorf("describe -o json counts %d records, want 1:\n%s", records, desc)
	}

	// A member holding all three partitions.
	bin := testenv.Recq(t)
	testenv.Start(t, `"value":{"n":1}`, bin, "--brokers", dev.Addr, "consume", "three", "--group", "billing", "--follow")
	var table string
	testenv.Eventually(t, "the member shows in groups describe", 30*time.Second, func() error {
		table = recq(t, dev.Addr, "", "groups", "describe", "billing").Stdout
		if !strings.Contains(table, "three: 0,1,2") {
			return fmt.Errorf("no assignment yet:\n%s", table)
		}
		return nil
	})
	if !strings.Contains(table, "group billing: state Stable, 1 member\n") || strings.Contains(table, "map[") {
		t.Errorf("groups describe:\n%s", table)
	}
	for _, args := range [][]string{
		{"topic", "list", "-o", "json"}, {"topic", "describe", "three", "-o", "json"},
		{"groups", "list", "-o", "json"}, {"groups", "describe", "billing", "-o", "json"},
	} {
		out := recq(t, dev.Addr, "", args...).Stdout
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		if bad := upperKeys(v); bad != "" {
			t.Errorf("recq %s prints the Go field name %q:\n%s", strings.Join(args, " "), bad, out)
		}
	}
	grp := recq(t, dev.Addr, "", "groups", "describe", "billing", "-o", "json").Stdout
	if !strings.Contains(grp, `"member_id"`) || !strings.Contains(grp, `"assigned": {`) {
		t.Errorf("groups describe -o json:\n%s", grp)
	}
}

// upperKeys returns a key of v (at any depth) that is not snake_case,
// skipping maps keyed by data (topic names, configs).
func upperKeys(v any) string {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if strings.ToLower(k) != k {
				return k
			}
			if k == "assigned" || k == "configs" {
				continue
			}
			if bad := upperKeys(x); bad != "" {
				return bad
			}
		}
	case []any:
		for _, x := range v {
			if bad := upperKeys(x); bad != "" {
				return bad
			}
		}
	}
	return ""
}

// With Confluent's default subject naming (<topic>-value) the record's
// type is the schema's full name, not "value".
func TestCLIProduceTypeFromSchema(t *testing.T) {
	dev := testenv.StartDev(t, t.TempDir())
	avsc := filepath.Join(t.TempDir(), "order.avsc")
	if err := os.WriteFile(avsc, []byte(`{"type":"record","name":"OrderPlaced","namespace":"shop","fields":[{"name":"id","type":"string"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := func(args ...string) []string { return append([]string{"--registry", dev.Registry}, args...) }
	recq(t, dev.Addr, "", "topic", "create", "orders")
	for _, subject := range []string{"orders-value", "orders-shop.OrderPlaced"} {
		recq(t, dev.Addr, "", reg("schema", "register", subject, "--file", avsc)...)
		recq(t, dev.Addr, `{"id":"o-1"}`+"\n", reg("produce", "orders", "--subject", subject)...)
	}
	recs := testenv.ReadTopic(t, dev.Addr, "orders")
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	for i, r := range recs {
		if env, _ := streams.ReadEnvelope(r); env.Type != "shop.OrderPlaced" {
			t.Errorf("record %d: recq-type %q, want shop.OrderPlaced", i, env.Type)
		}
	}
}

// --compression picks the batch codec (snappy unless told), and says what
// kafkajs needs.
func TestCLIProduceCompression(t *testing.T) {
	dev := testenv.StartDev(t, t.TempDir())
	recq(t, dev.Addr, "", "topic", "create", "zipped")
	value := strings.Repeat("compress me ", 20) + "\n"
	recq(t, dev.Addr, value, "produce", "zipped")
	for _, c := range []string{"gzip", "none", "lz4", "zstd"} {
		recq(t, dev.Addr, value, "produce", "zipped", "--compression", c)
	}
	var got []uint8
	for _, r := range testenv.ReadTopic(t, dev.Addr, "zipped") {
		got = append(got, r.Attrs.CompressionType())
	}
	// Kafka's codes: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
	if fmt.Sprint(got) != "[2 1 0 3 4]" {
		t.Errorf("compression codes %v, want [2 1 0 3 4] (default snappy, then gzip, none, lz4, zstd)", got)
	}
	res := testenv.Run(t, "x\n", testenv.Recq(t), "--brokers", dev.Addr, "produce", "zipped", "--compression", "brotli")
	if res.Code != 2 || !strings.Contains(res.Stderr, `--compression: want one of none, gzip, snappy, lz4, zstd, got "brotli"`) {
		t.Errorf("bad compression: exit %d, %s", res.Code, res.Stderr)
	}
	if help := testenv.Run(t, "", testenv.Recq(t), "produce", "--help").Stdout; !strings.Contains(help, "kafkajs reads only gzip and none") {
		t.Errorf("produce --help does not say what kafkajs needs:\n%s", help)
	}
}

// A subject without schemas gets the global level, and says so.
func TestCLISchemaConfigOfUnknownSubject(t *testing.T) {
	dev := testenv.StartDev(t, t.TempDir())
	avsc := filepath.Join(t.TempDir(), "a.avsc")
	if err := os.WriteFile(avsc, []byte(`{"type":"record","name":"A","fields":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := func(args ...string) string {
		return recq(t, dev.Addr, "", append([]string{"--registry", dev.Registry, "schema"}, args...)...).Stdout
	}
	if out := reg("config", "nosuchsubject"); out != "nosuchsubject: BACKWARD (subject nosuchsubject has no schemas; the global level applies)\n" {
		t.Errorf("unknown subject: %q", out)
	}
	reg("register", "t-A", "--file", avsc)
	if out := reg("config", "t-A"); out != "t-A: BACKWARD (no level of its own; the global level applies)\n" {
		t.Errorf("subject without a level: %q", out)
	}
	reg("config", "t-A", "--level", "full")
	if out := reg("config", "t-A"); out != "t-A: FULL\n" {
		t.Errorf("subject with a level: %q", out)
	}
	if out := reg("config"); out != "global: BACKWARD\n" {
		t.Errorf("global: %q", out)
	}
}

// A port that accepts connections but never speaks Kafka is given up on
// within the 5 s the message names, not after franz-go's 10 s.
func TestCLIUnreachableBrokerWithinBound(t *testing.T) {
	addr := testenv.SilentAddr(t)
	start := time.Now()
	res := testenv.Run(t, "", testenv.Recq(t), "--brokers", addr, "topic", "list")
	took := time.Since(start)
	if res.Code != 1 || !strings.Contains(res.Stderr, "cannot reach Kafka at "+addr+" within 5s") ||
		!strings.Contains(res.Stderr, "nothing answered in Kafka's protocol") {
		t.Fatalf("exit %d, stderr %q", res.Code, res.Stderr)
	}
	if took > 7*time.Second {
		t.Fatalf("took %v; the message says within 5s", took)
	}
}

// recq consume --follow --group rides out a broker restart (kill -9, then
// the same data dir and port): it says so on stderr and prints what is
// produced after, as it does without a group.
func TestCLIConsumeFollowGroupSurvivesBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	dev := testenv.StartDev(t, dir)
	recq(t, dev.Addr, "", "topic", "create", "live", "--partitions", "2")
	recq(t, dev.Addr, "before\n", "produce", "live", "--key", "k")
	bin := testenv.Recq(t)
	grouped := testenv.Start(t, `"value":"before"`, bin, "--brokers", dev.Addr, "consume", "live", "--group", "tail", "--follow")
	direct := testenv.Start(t, `"value":"before"`, bin, "--brokers", dev.Addr, "consume", "live", "--follow")
	dev.Kill9()
	time.Sleep(time.Second) // the consumers see the broker gone
	dev = testenv.RestartDev(t, dev.Addr, dir)
	recq(t, dev.Addr, "after\n", "produce", "live", "--key", "k")
	for name, p := range map[string]*testenv.Proc{"--group": grouped, "direct": direct} {
		testenv.WaitFor(t, "consume "+name+" prints the record produced after the restart", time.Minute, func() bool {
			select {
			case <-p.Done():
				t.Fatalf("consume %s exited:\n%s", name, p.Output())
			default:
			}
			return strings.Contains(p.Output(), `"value":"after"`)
		})
	}
	if out := grouped.Output(); !strings.Contains(out, "(waiting and retrying; Ctrl-C to stop)") || !strings.Contains(out, "recq: consume: reading again") {
		t.Errorf("the group consumer did not say it waited:\n%s", out)
	}
	// It still commits: stopped, its group has read both records.
	if err := grouped.Stop(sigterm, 30*time.Second); err != nil {
		t.Fatalf("consume after SIGTERM: %v\n%s", err, grouped.Output())
	}
	if out := recq(t, dev.Addr, "", "consume", "live", "--group", "tail").Stdout; out != "" {
		t.Errorf("the group reads again what it printed:\n%s", out)
	}
}
