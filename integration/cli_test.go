package integration

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recq/recq/internal/testenv"
)

// Every failure is one clear line on stderr and a non-zero exit code: 1 for
// a failure doing the work, 2 for a wrong call.
func TestCLIErrors(t *testing.T) {
	dev := testenv.StartDev(t, t.TempDir())
	bin := testenv.Recq(t)
	recq(t, dev.Addr, "", "topic", "create", "exists", "--partitions", "2")
	deadAddr := testenv.FreeAddr(t)

	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		msg   string
	}{
		{"consume unknown topic", "", []string{"--brokers", dev.Addr, "consume", "nope"}, 1, `topic "nope" does not exist (create it with: recq topic create nope --partitions N)`},
		{"produce unknown topic", "x\n", []string{"--brokers", dev.Addr, "produce", "nope"}, 1, `topic "nope" does not exist`},
		{"describe unknown topic", "", []string{"--brokers", dev.Addr, "topic", "describe", "nope"}, 1, `topic "nope" does not exist (see: recq topic list)`},
		{"delete unknown topic", "", []string{"--brokers", dev.Addr, "topic", "delete", "nope"}, 1, `topic "nope" does not exist`},
		{"create existing topic", "", []string{"--brokers", dev.Addr, "topic", "create", "exists"}, 1, `topic "exists" already exists`},
		{"describe unknown group", "", []string{"--brokers", dev.Addr, "groups", "describe", "nobody"}, 1, `consumer group "nobody" does not exist`},
		{"unreachable broker", "", []string{"--brokers", deadAddr, "topic", "list"}, 1, "cannot reach Kafka at " + deadAddr},
		{"unreachable broker via env", "", []string{"groups", "list"}, 1, "cannot reach Kafka at " + deadAddr},
		{"unknown flag", "", []string{"topic", "list", "--bogus"}, 2, "unknown flag: --bogus"},
		{"missing argument", "", []string{"topic", "create"}, 2, "topic create: accepts 1 arg(s), received 0 (see 'recq topic create --help')"},
		{"bad partitions", "", []string{"--brokers", dev.Addr, "topic", "create", "t", "--partitions", "0"}, 2, "--partitions must be at least 1"},
		{"bad config", "", []string{"--brokers", dev.Addr, "topic", "create", "t", "--config", "novalue"}, 2, `--config "novalue": want key=value`},
		{"bad --from", "", []string{"--brokers", dev.Addr, "consume", "exists", "--from", "yesterday"}, 2, `--from: "yesterday" is not beginning, end, an offset or an RFC 3339 time`},
		{"bad format", "", []string{"--brokers", dev.Addr, "consume", "exists", "--format", "xml"}, 2, `--format: want json or raw, got "xml"`},
		{"bad output", "", []string{"topic", "list", "-o", "yaml"}, 2, `want table or json, got "yaml"`},
		{"bad JSON line", "{\"ok\":1}\n{\"ok\":2}\nnot json\n{}\n", []string{"--brokers", dev.Addr, "produce", "exists", "--format", "json"}, 1, `line 3 is not valid JSON (nothing was produced): "not json"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("RECQ_BROKERS", deadAddr)
			start := time.Now()
			res := testenv.Run(t, tc.stdin, bin, tc.args...)
			if res.Code != tc.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", res.Code, tc.code, res.Stderr)
			}
			if got := lines(res.Stderr); len(got) != 1 || !strings.HasPrefix(got[0], "recq: ") || !strings.Contains(got[0], tc.msg) {
				t.Fatalf("stderr must be one line containing %q, got:\n%s", tc.msg, res.Stderr)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Fatalf("took %v: errors must come fast, not after a hang", d)
			}
		})
	}

	// The bad JSON line produced nothing, not even the good lines before it.
	out := recq(t, dev.Addr, "", "topic", "describe", "exists", "-o", "json")
	var info struct {
		Partitions []struct {
			EndOffset int64 `json:"end_offset"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal([]byte(out.Stdout), &info); err != nil || len(info.Partitions) != 2 {
		t.Fatalf("topic describe: %v\n%s", err, out.Stdout)
	}
	for _, p := range info.Partitions {
		if p.EndOffset != 0 {
			t.Fatalf("records were produced despite the bad line:\n%s", out.Stdout)
		}
	}
}

func TestDevErrors(t *testing.T) {
	bin := testenv.Recq(t)
	t.Run("port taken", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addr := ln.Addr().String()
		res := testenv.Run(t, "", bin, "dev", "--broker-addr", addr, "--data-dir", t.TempDir())
		want := "broker address " + addr + " is already in use (another recq dev or Kafka?); choose another with --broker-addr"
		if res.Code != 1 || strings.TrimSpace(res.Stderr) != "recq: "+want {
			t.Fatalf("exit %d, stderr %q; want %q", res.Code, res.Stderr, want)
		}
	})
	t.Run("data dir in use", func(t *testing.T) {
		dir := t.TempDir()
		testenv.StartDev(t, dir)
		res := testenv.Run(t, "", bin, "dev", "--broker-addr", testenv.FreeAddr(t), "--data-dir", dir)
		if res.Code != 1 || !strings.Contains(res.Stderr, "data dir "+dir+" is in use by another recq dev (pid ") {
			t.Fatalf("exit %d, stderr %q", res.Code, res.Stderr)
		}
	})
	t.Run("data dir not writable", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		res := testenv.Run(t, "", bin, "dev", "--broker-addr", testenv.FreeAddr(t), "--data-dir", filepath.Join(file, "sub"))
		if res.Code != 1 || !strings.Contains(res.Stderr, "recq: data dir "+filepath.Join(file, "sub")) {
			t.Fatalf("exit %d, stderr %q", res.Code, res.Stderr)
		}
	})
}

// SIGTERM stops recq dev cleanly: exit 0, state saved, and the next start
// serves the same topics and records.
func TestDevGracefulShutdownAndRestart(t *testing.T) {
	dir := t.TempDir()
	dev := testenv.StartDev(t, dir)
	recq(t, dev.Addr, "", "topic", "create", "kept", "--partitions", "2")
	recq(t, dev.Addr, "a\nb\nc\n", "produce", "kept", "--key", "k")
	recq(t, dev.Addr, "", "consume", "kept", "--group", "reader", "--max", "2")
	if err := dev.Stop(sigterm, 30*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, dev.Output())
	}
	if !strings.Contains(dev.Output(), "recq dev: stopped") {
		t.Fatalf("no clean stop message:\n%s", dev.Output())
	}
	dev = testenv.RestartDev(t, dev.Addr, dir)
	if got := lines(recq(t, dev.Addr, "", "consume", "kept", "--format", "raw").Stdout); strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("after restart: %v", got)
	}
	if got := lines(recq(t, dev.Addr, "", "consume", "kept", "--group", "reader", "--format", "raw").Stdout); strings.Join(got, ",") != "c" {
		t.Fatalf("group did not resume after its commit: %v", got)
	}
}
