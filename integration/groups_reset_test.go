package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/recq/recq/internal/testenv"
)

// recq groups reset against the built binary: it moves a stopped group,
// refuses one with a live member, and reports wrong calls with exit code 2.
func TestGroupsResetCLI(t *testing.T) {
	addr := testenv.Kafka(t)
	bin := testenv.Recq(t)
	recq(t, addr, "", "topic", "create", "orders", "--partitions", "2")
	recq(t, addr, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n", "produce", "orders", "--format", "json")
	recq(t, addr, "", "consume", "orders", "--group", "billing")

	describe := recq(t, addr, "", "groups", "describe", "billing").Stdout
	if !strings.Contains(describe, "total lag\t0") && !strings.Contains(describe, "total lag  0") {
		t.Fatalf("after consuming everything the lag should be 0:\n%s", describe)
	}
	out := recq(t, addr, "", "groups", "reset", "billing", "--to", "earliest", "--dry-run").Stdout
	if !strings.Contains(out, "dry run: nothing committed") {
		t.Fatalf("dry run output:\n%s", out)
	}
	if d := recq(t, addr, "", "groups", "describe", "billing").Stdout; d != describe {
		t.Fatalf("a dry run changed the group:\n%s\nwas\n%s", d, describe)
	}
	out = recq(t, addr, "", "groups", "reset", "billing", "--to", "earliest").Stdout
	if !strings.Contains(out, "TOPIC") || strings.Count(out, "orders") != 2 {
		t.Fatalf("reset output:\n%s", out)
	}
	// The group now reads everything again.
	again := recq(t, addr, "", "consume", "orders", "--group", "billing", "--format", "raw")
	if got := len(lines(again.Stdout)); got != 4 {
		t.Fatalf("after a reset to earliest the group read %d records, want 4:\n%s", got, again.Stdout)
	}

	// A live member makes the reset refuse.
	member := testenv.Start(t, "", bin, "--brokers", addr, "consume", "orders", "--group", "billing", "--follow")
	deadline := time.Now().Add(30 * time.Second)
	for {
		res := testenv.Run(t, "", bin, "--brokers", addr, "groups", "reset", "billing", "--to", "latest")
		if res.Code == 1 && strings.Contains(res.Stderr, "has active members: stop its consumers") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reset with a live member: exit %d, stderr %q", res.Code, res.Stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	member.Kill9()

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"groups", "reset", "billing"}, "--to is required"},
		{[]string{"groups", "reset", "billing", "--to", "yesterday"}, "not beginning, end, an offset or an RFC 3339 time"},
		{[]string{"groups", "reset"}, "accepts 1 arg"},
	} {
		res := testenv.Run(t, "", bin, append([]string{"--brokers", addr}, tc.args...)...)
		if res.Code != 2 || !strings.Contains(res.Stderr, tc.want) {
			t.Errorf("recq %s: exit %d, stderr %q; want 2 and %q", strings.Join(tc.args, " "), res.Code, res.Stderr, tc.want)
		}
	}
	res := testenv.Run(t, "", bin, "--brokers", addr, "groups", "reset", "nobody", "--to", "earliest")
	if res.Code != 1 || !strings.Contains(res.Stderr, "no committed offsets: name the topics") {
		t.Errorf("unknown group: exit %d, stderr %q", res.Code, res.Stderr)
	}
}
