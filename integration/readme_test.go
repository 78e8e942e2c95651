package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/recq/recq/internal/testenv"
)

// readmeBlocks returns the shell blocks of README.md marked
// <!-- readme-test -->.
func readmeBlocks(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- readme-test -->\\s*```sh\\n(.*?)```")
	var blocks []string
	for _, m := range re.FindAllStringSubmatch(string(data), -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) < 2 {
		t.Fatalf("README.md has %d blocks marked readme-test, want the TodoList quick start and the CLI tour", len(blocks))
	}
	return blocks
}

// The README's quick start runs as written, against what `make run` starts
// (recq dev and the TodoList service, here on free ports), so it cannot
// drift from the code: every curl (with -f: an HTTP error fails it) and
// every recq line must succeed.
func TestReadmeQuickStart(t *testing.T) {
	e := newTodoEnv(t, nil)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(testenv.Recq(t), filepath.Join(dir, "bin", "recq")); err != nil {
		t.Fatal(err)
	}
	addrs := strings.NewReplacer(
		"http://127.0.0.1:8081", e.dev.Registry,
		"127.0.0.1:8081", strings.TrimPrefix(e.dev.Registry, "http://"),
		"127.0.0.1:9092", e.dev.Addr,
		"127.0.0.1:8080", e.http,
	)
	var all strings.Builder
	for i, block := range readmeBlocks(t) {
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", addrs.Replace(block))
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("README block %d failed: %v\n--- block ---\n%s\n--- output ---\n%s", i+1, err, block, out)
		}
		all.Write(out)
	}
	for _, want := range []string{`"title":"groceries"`, `"text":"milk","done":true`, `"title":"food"`, `"total":30`, "shop.OrderPlaced"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("the quick start's output does not show %s:\n%s", want, all.String())
		}
	}
}
