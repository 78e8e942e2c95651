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
