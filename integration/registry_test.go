package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/recq/recq/internal/testenv"
)

func srClient(t *testing.T, url string) *sr.Client {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs(url), sr.HTTPClient(&http.Client{Timeout: 2 * time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func startRegistry(t *testing.T, brokers string) (*testenv.Proc, string) {
	t.Helper()
	addr := testenv.FreeAddr(t)
	p := testenv.Start(t, "recq registry: ready", testenv.Recq(t), "registry", "--brokers", brokers, "--addr", addr)
	return p, "http://" + addr
}

func avsc(name string, fields ...string) string {
	var fs []string
	for _, f := range fields {
		fs = append(fs, fmt.Sprintf(`{"name":%q,"type":"long","default":0}`, f))
	}
	return fmt.Sprintf(`{"type":"record","name":%q,"namespace":"it","fields":[%s]}`, name, strings.Join(fs, ","))
}

// The registry keeps its data on Kafka: a registry process killed with
// SIGKILL and started again serves the same ids and versions.
func TestRegistryRestartKeepsIDsAndVersions(t *testing.T) {
	dev := testenv.StartDev(t, t.TempDir())
	reg, url := startRegistry(t, dev.Addr)
	ctx := context.Background()
	cl := srClient(t, url)
	want := map[string]sr.SubjectSchema{}
	for i := range 5 {
		for v := range 3 {
			subj := fmt.Sprintf("topic-it.R%d", i)
			ss, err := cl.CreateSchema(ctx, subj, sr.Schema{Schema: avsc(fmt.Sprintf("R%d", i), fieldsUpTo(v)...)})
			if err != nil {
				t.Fatal(err)
			}
			want[fmt.Sprintf("%s/%d", subj, ss.Version)] = ss
		}
	}
	reg.Kill9()
	_, url2 := startRegistry(t, dev.Addr)
	cl2 := srClient(t, url2)
	for key, w := range want {
		subj, _, _ := strings.Cut(key, "/")
		got, err := cl2.SchemaByVersion(ctx, subj, w.Version)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != w.ID || got.Version != w.Version || got.Schema.Schema != w.Schema.Schema {
			t.Fatalf("%s after restart: id %d version %d, want id %d version %d", key, got.ID, got.Version, w.ID, w.Version)
		}
	}
	// Registering the same schema again gives the same id, not a new one.
	again, err := cl2.CreateSchema(ctx, "topic-it.R0", sr.Schema{Schema: avsc("R0", fieldsUpTo(0)...)})
	if err != nil || again.ID != want["topic-it.R0/1"].ID {
		t.Fatalf("re-register after restart: id %d err %v, want id %d", again.ID, err, want["topic-it.R0/1"].ID)
	}
}

func fieldsUpTo(v int) []string {
	var fs []string
	for i := range v {
		fs = append(fs, fmt.Sprintf("f%d", i))
	}
	return fs
}

// Two registry processes on one Kafka topic, 200 schemas registered
// concurrently through both: no id is handed out twice, every schema has one
// id everywhere, and both instances agree.
func TestTwoRegistryProcessesConcurrentRegistrations(t *testing.T) {
	dev := testenv.StartDev(t, t.TempDir())
	_, urlA := startRegistry(t, dev.Addr)
	_, urlB := startRegistry(t, dev.Addr)
	clients := []*sr.Client{srClient(t, urlA), srClient(t, urlB)}
	ctx := context.Background()

	const n = 200
	ids := make([]int, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			// Every schema is registered under two subjects, one through each
			// instance: the same schema must get the same id.
			s := sr.Schema{Schema: avsc(fmt.Sprintf("S%d", i))}
			a, err := clients[i%2].CreateSchema(ctx, fmt.Sprintf("a-it.S%d", i), s)
			if err != nil {
				errs <- err
				return
			}
			b, err := clients[(i+1)%2].CreateSchema(ctx, fmt.Sprintf("b-it.S%d", i), s)
			if err != nil {
				errs <- err
				return
			}
			if a.ID != b.ID {
				errs <- fmt.Errorf("schema %d got ids %d and %d", i, a.ID, b.ID)
			}
			ids[i] = a.ID
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int]int{}
	for i, id := range ids {
		if j, dup := seen[id]; dup {
			t.Fatalf("id %d handed out to schemas %d and %d", id, j, i)
		}
		seen[id] = i
	}
	for _, cl := range clients {
		subjects, err := cl.Subjects(ctx)
		if err != nil || len(subjects) != 2*n {
			t.Fatalf("an instance lists %d subjects (%v), want %d", len(subjects), err, 2*n)
		}
	}
}

// The schema CLI end to end: register, list, get, check, config, delete;
// produce --subject encodes JSON lines as Avro (refusing a bad line before
// producing anything), consume decodes them back to JSON, and kcat sees
// Confluent-framed bytes.
func TestSchemaCLIAndAvroProduceConsume(t *testing.T) {
	dev := testenv.StartDev(t, t.TempDir())
	t.Setenv("RECQ_REGISTRY", dev.Registry)
	dir := t.TempDir()
	v1 := filepath.Join(dir, "v1.avsc")
	v2bad := filepath.Join(dir, "v2bad.avsc")
	v2 := filepath.Join(dir, "v2.avsc")
	os.WriteFile(v1, []byte(`{"type":"record","name":"OrderPlaced","namespace":"shop","fields":[{"name":"id","type":"string"},{"name":"total","type":"long"}]}`), 0o644)
	os.WriteFile(v2bad, []byte(`{"type":"record","name":"OrderPlaced","namespace":"shop","fields":[{"name":"id","type":"string"},{"name":"total","type":"long"},{"name":"note","type":"string"}]}`), 0o644)
	os.WriteFile(v2, []byte(`{"type":"record","name":"OrderPlaced","namespace":"shop","fields":[{"name":"id","type":"string"},{"name":"total","type":"long"},{"name":"note","type":"string","default":""}]}`), 0o644)
	const subj = "orders-shop.OrderPlaced"
	bin := testenv.Recq(t)

	recq(t, dev.Addr, "", "topic", "create", "orders", "--partitions", "2")
	if out := recq(t, dev.Addr, "", "schema", "register", subj, "--file", v1).Stdout; !strings.Contains(out, "version 1 (schema id 1)") {
		t.Fatalf("register: %s", out)
	}
	res := testenv.Run(t, "", bin, "schema", "check", subj, "--file", v2bad)
	if res.Code != 1 || !strings.Contains(res.Stderr, "NOT compatible") || !strings.Contains(res.Stderr, "note") {
		t.Fatalf("check of an incompatible schema: exit %d %s", res.Code, res.Stderr)
	}
	res = testenv.Run(t, "", bin, "schema", "register", subj, "--file", v2bad)
	if res.Code != 1 || !strings.Contains(res.Stderr, "error 409") {
		t.Fatalf("register of an incompatible schema: exit %d %s", res.Code, res.Stderr)
	}
	recq(t, dev.Addr, "", "schema", "check", subj, "--file", v2)
	recq(t, dev.Addr, "", "schema", "register", subj, "--file", v2)
	if out := recq(t, dev.Addr, "", "schema", "list").Stdout; !strings.Contains(out, subj) || !strings.Contains(out, "2") {
		t.Fatalf("list: %s", out)
	}
	var got struct {
		Version int
		ID      int
		Schema  struct{ Fields []struct{ Name string } }
	}
	json.Unmarshal([]byte(recq(t, dev.Addr, "", "schema", "get", subj, "--version", "1").Stdout), &got)
	if got.Version != 1 || got.ID != 1 || len(got.Schema.Fields) != 2 {
		t.Fatalf("get version 1: %+v", got)
	}
	if out := recq(t, dev.Addr, "", "schema", "config", subj, "--level", "FULL_TRANSITIVE").Stdout; !strings.Contains(out, "FULL_TRANSITIVE") {
		t.Fatalf("config set: %s", out)
	}
	if out := recq(t, dev.Addr, "", "schema", "config").Stdout; !strings.Contains(out, "global: BACKWARD") {
		t.Fatalf("config global: %s", out)
	}

	// A line that does not fit the schema: nothing is produced at all.
	res = testenv.Run(t, `{"id":"o1","total":1}`+"\n"+`{"id":"o2","total":"lots"}`+"\n", bin, "--brokers", dev.Addr, "produce", "orders", "--subject", subj)
	if res.Code != 1 || !strings.Contains(res.Stderr, `line 2 does not fit subject `+subj+` (nothing was produced)`) || !strings.Contains(res.Stderr, `"total"`) {
		t.Fatalf("bad line: exit %d %s", res.Code, res.Stderr)
	}
	if out := recq(t, dev.Addr, "", "consume", "orders").Stdout; out != "" {
		t.Fatalf("records were produced despite the bad line: %s", out)
	}

	recq(t, dev.Addr, `{"id":"o1","total":12,"note":"hi"}`+"\n", "produce", "orders", "--subject", subj, "--key", "o1")
	var rec struct {
		Headers map[string]string
		Value   map[string]any
	}
	out := recq(t, dev.Addr, "", "consume", "orders").Stdout
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if rec.Value["id"] != "o1" || rec.Value["total"] != float64(12) || rec.Value["note"] != "hi" || rec.Headers["recq-type"] != "shop.OrderPlaced" {
		t.Fatalf("decoded record: %s", out)
	}
	// A foreign client sees the Confluent wire format: magic 0, id 2 (v2).
	kres := testenv.Run(t, "", kcat(t), "-b", dev.Addr, "-C", "-t", "orders", "-e", "-q", "-f", "%s")
	if b := []byte(kres.Stdout); len(b) < 5 || b[0] != 0 || b[1] != 0 || b[2] != 0 || b[3] != 0 || b[4] != 2 {
		t.Fatalf("kcat sees %q, want Confluent framing with schema id 2", kres.Stdout)
	}

	recq(t, dev.Addr, "", "schema", "delete", subj)
	res = testenv.Run(t, "", bin, "schema", "get", subj)
	if res.Code != 1 || !strings.Contains(res.Stderr, "40401") {
		t.Fatalf("get after delete: exit %d %s", res.Code, res.Stderr)
	}
	recq(t, dev.Addr, "", "schema", "delete", subj, "--permanent")

	res = testenv.Run(t, "", bin, "--registry", "http://"+testenv.FreeAddr(t), "schema", "list")
	if res.Code != 1 || !strings.Contains(res.Stderr, "cannot reach the schema registry at") {
		t.Fatalf("unreachable registry: exit %d %s", res.Code, res.Stderr)
	}
}

// A registry started with --auth-file refuses requests without the right
// credentials (Confluent's 40101), and the CLI authenticates with
// RECQ_REGISTRY_AUTH.
func TestRegistryBasicAuth(t *testing.T) {
	dev := testenv.StartDev(t, t.TempDir())
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("# operators\nalice:s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	testenv.Start(t, "recq registry: ready", testenv.Recq(t), "registry", "--brokers", dev.Addr, "--addr", addr, "--auth-file", users, "--schemas-topic", "_auth_schemas")
	bin := testenv.Recq(t)
	t.Setenv("RECQ_REGISTRY", "http://"+addr)

	t.Setenv("RECQ_REGISTRY_AUTH", "")
	if res := testenv.Run(t, "", bin, "schema", "list"); res.Code != 1 || !strings.Contains(res.Stderr, "Unauthorized") {
		t.Fatalf("without credentials: exit %d %s", res.Code, res.Stderr)
	}
	t.Setenv("RECQ_REGISTRY_AUTH", "alice:wrong")
	if res := testenv.Run(t, "", bin, "schema", "list"); res.Code != 1 || !strings.Contains(res.Stderr, "Unauthorized") {
		t.Fatalf("wrong password: exit %d %s", res.Code, res.Stderr)
	}
	t.Setenv("RECQ_REGISTRY_AUTH", "alice:s3cret")
	if res := testenv.Run(t, "", bin, "schema", "list"); res.Code != 0 {
		t.Fatalf("with credentials: exit %d %s", res.Code, res.Stderr)
	}
}
