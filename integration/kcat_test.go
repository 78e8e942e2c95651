package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/recq/recq/internal/testenv"
)

// recq produce → kcat consume: values, keys and headers arrive as sent, and
// kcat sees recq's envelope headers.
func TestRecqProduceKcatConsume(t *testing.T) {
	kc := kcat(t)
	dev := testenv.StartDev(t, t.TempDir())
	recq(t, dev.Addr, "", "topic", "create", "events", "--partitions", "3")
	var in []string
	for i := range 50 {
		in = append(in, fmt.Sprintf(`{"n":%d}`, i))
	}
	recq(t, dev.Addr, strings.Join(in, "\n")+"\n", "produce", "events", "--key", "agg-1", "--header", "source=it", "--format", "json")

	res := testenv.Run(t, "", kc, "-b", dev.Addr, "-C", "-t", "events", "-e", "-q", "-f", "%k|%p|%h|%s\n")
	if res.Code != 0 {
		t.Fatalf("kcat: %d %s", res.Code, res.Stderr)
	}
	got := lines(res.Stdout)
	if len(got) != 50 {
		t.Fatalf("kcat read %d records, want 50:\n%s", len(got), res.Stdout)
	}
	for i, l := range got {
		f := strings.SplitN(l, "|", 4)
		if f[0] != "agg-1" || f[3] != in[i] || f[1] != strings.SplitN(got[0], "|", 4)[1] {
			t.Fatalf("record %d: %q (want key agg-1, value %s, one partition, in order)", i, l, in[i])
		}
		for _, h := range []string{"source=it", "recq-id=", "recq-correlation-id="} {
			if !strings.Contains(f[2], h) {
				t.Fatalf("record %d headers %q lack %q", i, f[2], h)
			}
		}
	}
}

// kcat produce → recq consume: recq reads a foreign client's records, keys
// and headers.
func TestKcatProduceRecqConsume(t *testing.T) {
	kc := kcat(t)
	dev := testenv.StartDev(t, t.TempDir())
	recq(t, dev.Addr, "", "topic", "create", "from-kcat", "--partitions", "2")
	var in strings.Builder
	for i := range 20 {
		fmt.Fprintf(&in, "key-%d:{\"i\":%d}\n", i%4, i)
	}
	res := testenv.Run(t, in.String(), kc, "-b", dev.Addr, "-P", "-t", "from-kcat", "-K:", "-H", "origin=kcat")
	if res.Code != 0 {
		t.Fatalf("kcat produce: %d %s", res.Code, res.Stderr)
	}
	out := recq(t, dev.Addr, "", "consume", "from-kcat", "--from", "beginning")
	got := lines(out.Stdout)
	if len(got) != 20 {
		t.Fatalf("recq consume read %d records, want 20:\n%s", len(got), out.Stdout)
	}
	next := map[string]int{}
	for _, l := range got {
		var r struct {
			Key     string            `json:"key"`
			Headers map[string]string `json:"headers"`
			Value   struct{ I int }   `json:"value"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if r.Headers["origin"] != "kcat" {
			t.Fatalf("header lost: %q", l)
		}
		// Per key, values arrive in the order kcat sent them.
		if want := fmt.Sprintf("key-%d", r.Value.I%4); r.Key != want || r.Value.I < next[r.Key] {
			t.Fatalf("record %q out of place (key want %s, min value %d)", l, want, next[r.Key])
		}
		next[r.Key] = r.Value.I + 1
	}
}

// startDev starts recq dev with extra flags (testenv.StartDev takes none).
func startDev(t *testing.T, flags ...string) string {
	t.Helper()
	addr := testenv.FreeAddr(t)
	testenv.Start(t, "recq dev: ready", testenv.Recq(t), append([]string{"dev", "--broker-addr", addr,
		"--registry-addr", testenv.FreeAddr(t), "--data-dir", t.TempDir()}, flags...)...)
	return addr
}

// kcatPartitions is the partition count kcat's metadata listing shows for
// topic, or -1 when it does not list it. kcat's metadata request allows
// auto-creation: on a broker that auto-creates, asking creates the topic.
func kcatPartitions(t *testing.T, kc, addr, topic string) int {
	t.Helper()
	res := testenv.Run(t, "", kc, "-b", addr, "-L", "-t", topic, "-J")
	var md struct {
		Topics []struct {
			Topic      string     `json:"topic"`
			Error      string     `json:"error"`
			Partitions []struct{} `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &md); err != nil {
		t.Fatalf("kcat -L -J: %v\n%s%s", err, res.Stdout, res.Stderr)
	}
	for _, tp := range md.Topics {
		if tp.Topic == topic && tp.Error == "" {
			return len(tp.Partitions)
		}
	}
	return -1
}

// topicExists asks recq, whose requests never create topics.
func topicExists(t *testing.T, addr, topic string) bool {
	t.Helper()
	res := testenv.Run(t, "", testenv.Recq(t), "--brokers", addr, "topic", "describe", topic)
	if res.Code != 0 && !strings.Contains(res.Stderr, "does not exist") {
		t.Fatalf("recq topic describe %s: exit %d %s", topic, res.Code, res.Stderr)
	}
	return res.Code == 0
}

// kcat produces to a topic nobody created, as it may against Kafka's
// defaults: recq dev creates it with one partition (num.partitions=1), says
// so, keeps it across a kill -9 with its records, and kcat reads it back.
func TestKcatProducesToMissingTopic(t *testing.T) {
	kc := kcat(t)
	dev := testenv.StartDev(t, t.TempDir())
	res := testenv.Run(t, "k1:one\nk2:two\nk1:three\n", kc, "-b", dev.Addr, "-P", "-t", "fresh", "-K:")
	if res.Code != 0 {
		t.Fatalf("kcat produce to a missing topic: exit %d\n%s", res.Code, res.Stderr)
	}
	if n := kcatPartitions(t, kc, dev.Addr, "fresh"); n != 1 {
		t.Fatalf("auto-created topic has %d partitions, want 1 (Kafka's num.partitions default)", n)
	}
	if !strings.Contains(dev.Output(), `created topic "fresh"`) {
		t.Errorf("recq dev did not say it created the topic:\n%s", dev.Output())
	}
	// The topic is saved when it is created, not at a clean shutdown.
	dev.Kill9()
	dev.Restart(t)
	res = testenv.Run(t, "", kc, "-b", dev.Addr, "-C", "-t", "fresh", "-e", "-q", "-f", "%k=%s\n")
	if got := strings.Join(lines(res.Stdout), ","); res.Code != 0 || got != "k1=one,k2=two,k1=three" {
		t.Fatalf("kcat consume after kill -9: exit %d, %q, want k1=one,k2=two,k1=three\n%s", res.Code, got, res.Stderr)
	}
	// recq's own commands never create topics.
	if out := testenv.Run(t, "x\n", testenv.Recq(t), "--brokers", dev.Addr, "produce", "typo"); out.Code != 1 || !strings.Contains(out.Stderr, `topic "typo" does not exist`) {
		t.Fatalf("recq produce to a missing topic: exit %d %s; want the does-not-exist refusal", out.Code, out.Stderr)
	}
	if topicExists(t, dev.Addr, "typo") {
		t.Fatal("recq produce created topic typo")
	}
}

// --auto-create-partitions sets the partition count of auto-created topics;
// explicitly created topics keep their own.
func TestKcatAutoCreatePartitions(t *testing.T) {
	kc := kcat(t)
	addr := startDev(t, "--auto-create-partitions", "3")
	recq(t, addr, "", "topic", "create", "explicit", "--partitions", "2")
	for _, topic := range []string{"fresh", "explicit"} {
		if res := testenv.Run(t, "v\n", kc, "-b", addr, "-P", "-t", topic); res.Code != 0 {
			t.Fatalf("kcat produce to %s: exit %d\n%s", topic, res.Code, res.Stderr)
		}
	}
	if n := kcatPartitions(t, kc, addr, "fresh"); n != 3 {
		t.Fatalf("auto-created topic has %d partitions, want 3", n)
	}
	if n := kcatPartitions(t, kc, addr, "explicit"); n != 2 {
		t.Fatalf("explicitly created topic has %d partitions, want its own 2", n)
	}
}

// With --auto-create-topics=false a missing topic is an error for every
// client: kcat's produce fails with Kafka's UNKNOWN_TOPIC_OR_PARTITION and
// nothing is created.
func TestKcatProduceRefusedWithoutAutoCreate(t *testing.T) {
	kc := kcat(t)
	addr := startDev(t, "--auto-create-topics=false")
	// librdkafka waits topic.metadata.propagation.max.ms (30 s) for a
	// missing topic to appear before it fails the messages.
	res := testenv.Run(t, "v\n", kc, "-b", addr, "-P", "-t", "nope", "-X", "topic.metadata.propagation.max.ms=1000")
	if res.Code == 0 || !strings.Contains(res.Stderr, "Unknown topic or partition") {
		t.Fatalf("kcat produce to a missing topic: exit %d, stderr %q; want a failure naming Unknown topic or partition", res.Code, res.Stderr)
	}
	if topicExists(t, addr, "nope") {
		t.Fatal("topic nope exists though auto-creation is off")
	}
}

func TestDevRefusesZeroAutoCreatePartitions(t *testing.T) {
	res := testenv.Run(t, "", testenv.Recq(t), "dev", "--auto-create-partitions", "0", "--data-dir", t.TempDir())
	if res.Code != 2 || !strings.Contains(res.Stderr, "--auto-create-partitions must be at least 1") {
		t.Fatalf("recq dev --auto-create-partitions 0: exit %d, %q; want a usage error", res.Code, res.Stderr)
	}
}
