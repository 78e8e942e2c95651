package testenv

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Proc is a started subprocess whose output is captured.
type Proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

// Start runs bin with args and returns once a line of its output contains
// ready (or at once if ready is empty). The process is killed at cleanup if
// it is still running.
func Start(t testing.TB, ready, bin string, args ...string) *Proc {
	t.Helper()
	return StartEnv(t, nil, ready, bin, args...)
}

// StartEnv is Start with env (KEY=value) added to the test's environment.
func StartEnv(t testing.TB, env []string, ready, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	// Killed with the test binary (a timeout, an interrupted run): a
	// leftover broker or frozen member would confuse the next run.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("testenv: start %s: %v", bin, err)
	}
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		// Keep draining whatever happens, or a child blocked on a full pipe
		// would never exit.
		defer io.Copy(io.Discard, pr)
		var once sync.Once
		for sc.Scan() {
			p.mu.Lock()
			p.out.Write(sc.Bytes())
			p.out.WriteByte('\n')
			p.mu.Unlock()
			if ready == "" || strings.Contains(sc.Text(), ready) {
				once.Do(func() { close(seen) })
			}
		}
	}()
	go func() {
		p.err = p.cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	if ready == "" {
		return p
	}
	select {
	case <-seen:
	case <-p.done:
		t.Fatalf("testenv: %s exited before %q: %v\n%s", bin, ready, p.err, p.Output())
	case <-time.After(30 * time.Second):
		t.Fatalf("testenv: %s not %q after 30s:\n%s", bin, ready, p.Output())
	}
	return p
}

// Output is everything the process printed so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Signal sends sig (SIGSTOP, SIGCONT, ...) without waiting for anything.
func (p *Proc) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Pid is the process's id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Kill9 kills the process with SIGKILL, as a crash would, and waits for it.
func (p *Proc) Kill9() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Wait waits up to timeout for the process to exit by itself and returns
// its exit error.
func (p *Proc) Wait(timeout time.Duration) error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.t.Fatalf("testenv: process still running after %v:\n%s", timeout, p.Output())
		return nil
	}
}

// Stop sends sig and waits up to timeout for the process to exit, returning
// its exit error (nil for status 0).
func (p *Proc) Stop(sig syscall.Signal, timeout time.Duration) error {
	p.t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.t.Fatalf("testenv: process still running %v after %v:\n%s", sig, timeout, p.Output())
		return nil
	}
}

// Result is the outcome of a command run to completion.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Run runs bin with args and stdin to completion (at most a minute).
func Run(t testing.TB, stdin, bin string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	res := Result{Stdout: so.String(), Stderr: se.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("testenv: run %s %v: %v", bin, args, err)
	}
	return res
}

// Dev is a `recq dev` subprocess.
type Dev struct {
	*Proc
	Addr     string // the broker
	Registry string // the schema registry's URL
	DataDir  string
	extra    []string // more flags, again on Restart
}

// StartDev starts the built recq binary's dev command on a free port with
// dataDir (and extra flags) and waits until it is ready.
func StartDev(t testing.TB, dataDir string, extra ...string) *Dev {
	t.Helper()
	return RestartDev(t, FreeAddr(t), dataDir, extra...)
}

// Restart starts recq dev again (after Kill9 or Stop) on the same broker and
// registry addresses and data dir, so clients that knew it reconnect.
func (d *Dev) Restart(t testing.TB) {
	t.Helper()
	d.Proc = d.start(t)
}

func (d *Dev) start(t testing.TB) *Proc {
	t.Helper()
	args := []string{"dev", "--broker-addr", d.Addr, "--registry-addr", strings.TrimPrefix(d.Registry, "http://"), "--data-dir", d.DataDir}
	return Start(t, "recq dev: ready", Recq(t), append(args, d.extra...)...)
}

// RestartDev starts recq dev on a given address, e.g. the one a killed
// instance used, so clients that knew it reconnect.
func RestartDev(t testing.TB, addr, dataDir string, extra ...string) *Dev {
	t.Helper()
	d := &Dev{Addr: addr, Registry: "http://" + FreeAddr(t), DataDir: dataDir, extra: extra}
	d.Proc = d.start(t)
	return d
}

// SilentAddr is the address of a listener that accepts connections and
// never answers, until the test ends: a port where something other than
// Kafka listens.
func SilentAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return ln.Addr().String()
}
