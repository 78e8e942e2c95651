package integration

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/recq/recq/internal/testenv"
)

// kcat returns the path of kcat, the librdkafka command-line client, failing
// (not skipping) when it is missing: the interop tests are part of the suite.
func kcat(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat not found: install it with 'apt-get install kcat' (make test does this when run as root)")
	}
	return p
}

// recq runs the built binary against the broker at addr and fails the test
// unless it exits 0.
func recq(t *testing.T, addr, stdin string, args ...string) testenv.Result {
	t.Helper()
	res := testenv.Run(t, stdin, testenv.Recq(t), append([]string{"--brokers", addr}, args...)...)
	if res.Code != 0 {
		t.Fatalf("recq %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Code, res.Stdout, res.Stderr)
	}
	return res
}

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}
