package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

// kafkajsVersion is the kafkajs that scripts/deps.sh installs.
const kafkajsVersion = "2.2.4"

// kafkajsScript is a kafkajs client the test drives. Modes:
//
//	consume TOPIC N  reads N messages from the beginning in a new group and
//	                 prints each as a JSON line, then exits 0
//	stall TOPIC      reads from the beginning until kafkajs reports an
//	                 error (printed as {"error": ...}) and exits 3
//	produce TOPIC N  produces N gzip-compressed messages, keys k0..k2
//
// It exits 2 after DEADLINE_MS without the outcome it waits for.
const kafkajsScript = `
const { Kafka, logLevel, CompressionTypes } = require('kafkajs')
const [mode, topic, n] = process.argv.slice(2)
const out = o => process.stdout.write(JSON.stringify(o) + '\n')
let stalled = false
const kafka = new Kafka({
  clientId: 'recq-foreign-test',
  brokers: [process.env.BROKER],
  logLevel: logLevel.ERROR,
  logCreator: () => ({ log }) => {
    if (mode === 'stall' && !stalled) { stalled = true; out({ error: JSON.stringify(log) }); process.exit(3) }
    process.stderr.write('kafkajs: ' + JSON.stringify(log) + '\n')
  },
})
setTimeout(() => { process.stderr.write('deadline passed\n'); process.exit(2) }, Number(process.env.DEADLINE_MS))
async function main() {
  if (mode === 'produce') {
    const p = kafka.producer()
    await p.connect()
    const messages = []
    for (let i = 0; i < Number(n); i++) {
      messages.push({ key: 'k' + (i % 3), value: JSON.stringify({ i, pad: 'kafkajs '.repeat(50) }), headers: { origin: 'kafkajs' } })
    }
    await p.send({ topic, compression: CompressionTypes.GZIP, messages })
    await p.disconnect()
    process.exit(0)
  }
  const c = kafka.consumer({ groupId: 'kafkajs-' + topic + '-' + process.pid })
  await c.connect()
  await c.subscribe({ topics: [topic], fromBeginning: true })
  let seen = 0
  await c.run({
    eachMessage: async ({ partition, message }) => {
      const headers = {}
      for (const [k, v] of Object.entries(message.headers || {})) headers[k] = v.toString()
      out({ partition, offset: message.offset, key: message.key && message.key.toString(), value: message.value.toString(), headers })
      if (mode === 'consume' && ++seen === Number(n)) process.exit(0)
    },
  })
}
main().catch(e => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1) })
`

// kafkajsNode returns node and the NODE_PATH holding kafkajs, skipping the
// test with what to install when either is missing.
func kafkajsNode(t *testing.T) (node, nodePath string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found: the kafkajs interop test needs Node.js and npm (apt-get install nodejs npm), then scripts/deps.sh installs kafkajs")
	}
	dir := os.Getenv("RECQ_NODE_DIR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Skipf("no cache dir for kafkajs (%v): set RECQ_NODE_DIR and run scripts/deps.sh", err)
		}
		dir = filepath.Join(cache, "recq", "node")
	}
	pkg, err := os.ReadFile(filepath.Join(dir, "node_modules", "kafkajs", "package.json"))
	var meta struct{ Version string }
	if err != nil || json.Unmarshal(pkg, &meta) != nil || meta.Version != kafkajsVersion {
		t.Skipf("kafkajs %s is not installed in %s (found %q): run scripts/deps.sh (make test does), or npm install --prefix %s kafkajs@%s",
			kafkajsVersion, dir, meta.Version, dir, kafkajsVersion)
	}
	return node, filepath.Join(dir, "node_modules")
}

// runKafkajs runs the script in mode against addr and returns its exit code,
// stdout and stderr.
func runKafkajs(t *testing.T, node, nodePath, addr string, deadline time.Duration, args ...string) (int, string, string) {
	t.Helper()
	script := filepath.Join(t.TempDir(), "kafkajs.js")
	if err := os.WriteFile(script, []byte(kafkajsScript), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+nodePath, "BROKER="+addr,
		fmt.Sprintf("DEADLINE_MS=%d", deadline.Milliseconds()), "KAFKAJS_NO_PARTITIONER_WARNING=1")
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("node %v: %v", args, err)
	}
	return code, so.String(), se.String()
}

// publish publishes n compressible JSON records keyed k0..k4 to topic with
// codec, and checks through franz-go that their batches really are
// compressed with it (franz-go sends a batch that would not shrink
// uncompressed).
func publish(t *testing.T, addr, topic, codec string, n int) []*kgo.Record {
	t.Helper()
	cc, err := streams.ParseCompression(codec)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := streams.NewPublisher([]string{addr}, streams.WithCompression(cc))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(context.Background())
	var recs []*kgo.Record
	for i := range n {
		r := &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i%5), Value: fmt.Appendf(nil, `{"i":%d,"pad":"%s"}`, i, strings.Repeat("recq ", 50))}
		streams.Envelope{Type: "shop.OrderPlaced"}.Write(r)
		recs = append(recs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pub.Publish(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint8{"gzip": 1, "snappy": 2}[codec]
	for _, r := range testenv.ReadTopic(t, addr, topic) {
		if got := r.Attrs.CompressionType(); got != want {
			t.Fatalf("record %d/%d is in a batch with codec %d, want %d (%s)", r.Partition, r.Offset, got, want, codec)
		}
	}
	return recs
}

type kafkajsMessage struct {
	Partition int32             `json:"partition"`
	Offset    string            `json:"offset"`
	Key       string            `json:"key"`
	Value     string            `json:"value"`
	Headers   map[string]string `json:"headers"`
	Error     string            `json:"error"`
}

func kafkajsMessages(t *testing.T, stdout string) []kafkajsMessage {
	t.Helper()
	var msgs []kafkajsMessage
	for _, l := range lines(stdout) {
		var m kafkajsMessage
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("kafkajs printed %q: %v", l, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// A kafkajs consumer (no codec packages) reads what recq published with
// gzip: values, keys and recq's headers. The same consumer on franz-go's
// default snappy fails to decode the batch and reads nothing, which is why
// recq publishes with gzip for kafkajs.
func TestForeignKafkajsConsumesGzip(t *testing.T) {
	node, nodePath := kafkajsNode(t)
	dev := testenv.StartDev(t, t.TempDir())
	recq(t, dev.Addr, "", "topic", "create", "orders", "--partitions", "3")
	sent := publish(t, dev.Addr, "orders", "gzip", 30)

	start := time.Now()
	code, out, errOut := runKafkajs(t, node, nodePath, dev.Addr, 60*time.Second, "consume", "orders", fmt.Sprint(len(sent)))
	if code != 0 {
		t.Fatalf("kafkajs consume: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	t.Logf("kafkajs read %d gzip records in %v", len(sent), time.Since(start).Round(time.Millisecond))
	want := map[string]*kgo.Record{}
	for _, r := range sent {
		env, err := streams.ReadEnvelope(r)
		if err != nil {
			t.Fatal(err)
		}
		want[env.ID] = r
	}
	for _, m := range kafkajsMessages(t, out) {
		r := want[m.Headers[streams.HeaderID]]
		if r == nil {
			t.Fatalf("kafkajs read a record recq did not send, or twice: %+v", m)
		}
		delete(want, m.Headers[streams.HeaderID])
		if m.Key != string(r.Key) || m.Value != string(r.Value) || m.Headers[streams.HeaderType] != "shop.OrderPlaced" || m.Partition != r.Partition {
			t.Fatalf("kafkajs read %+v, want key %s, the value sent, partition %d, recq-type shop.OrderPlaced", m, r.Key, r.Partition)
		}
	}
	if len(want) > 0 {
		t.Fatalf("kafkajs did not read %d records", len(want))
	}

	recq(t, dev.Addr, "", "topic", "create", "orders-snappy", "--partitions", "1")
	publish(t, dev.Addr, "orders-snappy", "snappy", 5)
	start = time.Now()
	code, out, errOut = runKafkajs(t, node, nodePath, dev.Addr, 30*time.Second, "stall", "orders-snappy")
	msgs := kafkajsMessages(t, out)
	if code != 3 || len(msgs) != 1 || !strings.Contains(msgs[0].Error, "Snappy compression not implemented") {
		t.Fatalf("kafkajs on snappy: exit %d, %+v; want no record and its 'Snappy compression not implemented' error\nstderr: %s", code, msgs, errOut)
	}
	t.Logf("kafkajs on snappy failed after %v: %.200s", time.Since(start).Round(time.Millisecond), msgs[0].Error)
}

// A kafkajs producer sends gzip to a topic nobody created, as it may against
// Kafka's defaults: recq dev creates it, and recq consume reads the records.
func TestForeignKafkajsProducesToMissingTopic(t *testing.T) {
	node, nodePath := kafkajsNode(t)
	dev := testenv.StartDev(t, t.TempDir())
	code, out, errOut := runKafkajs(t, node, nodePath, dev.Addr, 30*time.Second, "produce", "from-kafkajs", "12")
	if code != 0 {
		t.Fatalf("kafkajs produce: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	got := lines(recq(t, dev.Addr, "", "consume", "from-kafkajs", "--from", "beginning").Stdout)
	if len(got) != 12 {
		t.Fatalf("recq consume read %d records, want 12:\n%s", len(got), strings.Join(got, "\n"))
	}
	for _, l := range got {
		var r struct {
			Key     string            `json:"key"`
			Headers map[string]string `json:"headers"`
			Value   struct{ I int }   `json:"value"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Headers["origin"] != "kafkajs" || r.Key != fmt.Sprintf("k%d", r.Value.I%3) {
			t.Fatalf("recq consume printed %q (%v); want kafkajs's key, value and origin header", l, err)
		}
	}
}
