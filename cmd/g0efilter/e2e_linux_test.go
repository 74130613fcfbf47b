package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requirePrivileges skips a privileged test, or fails it under CI=true, where
// privileged tests must run, when the process is not root or ip and nft are
// missing.
func requirePrivileges(t *testing.T) {
	t.Helper()
	var missing string
	switch {
	case os.Geteuid() != 0:
		missing = "needs root"
	default:
		for _, tool := range []string{"ip", "nft"} {
			if _, err := exec.LookPath(tool); err != nil {
				missing = "needs " + tool
			}
		}
	}
	if missing == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("privileged test: %s, and must run under CI=true", missing)
	}
	t.Skipf("privileged test: %s", missing)
}

// buildBinary builds this command into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "g0efilter")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// newNetNS adds a named network namespace, deleted when the test ends.
func newNetNS(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "g0e-test-" + hex.EncodeToString(b)
	out, err := exec.Command("ip", "netns", "add", name).CombinedOutput()
	require.NoError(t, err, "ip netns add: %s", out)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return name
}

// nft runs nft in the namespace and returns its output; failures are
// returned, not fatal, so that polling can retry.
func nft(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "nft"}, args...)...).CombinedOutput()
	if err != nil {
		return "", errors.New(strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// setBlock returns the "set NAME { ... }" block of an nft listing.
func setBlock(listing, name string) string {
	i := strings.Index(listing, "set "+name+" {")
	if i < 0 {
		return ""
	}
	rest := listing[i:]
	if j := strings.Index(rest, "\n\t}"); j >= 0 {
		return rest[:j]
	}
	return rest
}

// syncBuffer is a bytes.Buffer safe for a process's writes and the test's
// reads at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// filterProc is a running "g0efilter run" in a namespace.
type filterProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	err    error // valid after done is closed
}

func startFilter(t *testing.T, ns, bin string, environ []string) *filterProc {
	t.Helper()
	p := &filterProc{stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command("ip", "netns", "exec", ns, bin, "run")
	p.cmd.Env = environ
	p.cmd.Stderr = p.stderr
	require.NoError(t, p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("g0efilter stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

func (p *filterProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and returns the exit code.
func (p *filterProc) stop(t *testing.T) int {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("g0efilter did not exit after SIGTERM")
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	require.NoError(t, p.err)
	return 0
}

// waitFor polls cond until it holds, the process exits or the deadline
// passes; what is the last state, for the failure message.
func waitFor(t *testing.T, p *filterProc, desc string, cond func() (ok bool, what string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var what string
	for {
		var ok bool
		if ok, what = cond(); ok {
			return
		}
		if p != nil && !p.running() {
			t.Fatalf("waiting for %s: g0efilter exited (%v); last state: %s", desc, p.err, what)
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out; last state: %s", desc, what)
		}
		<-tick.C
	}
}

// allow4Has returns a condition: the namespace's allow4 set holds every addr.
func allow4Has(ns string, addrs ...string) func() (bool, string) {
	return func() (bool, string) {
		listing, err := nft(ns, "list", "table", "inet", "g0efilter")
		if err != nil {
			return false, err.Error()
		}
		set := setBlock(listing, "allow4")
		for _, a := range addrs {
			if !strings.Contains(set, a) {
				return false, listing
			}
		}
		return true, listing
	}
}

func TestRunInNetNS(t *testing.T) {
	requirePrivileges(t)
	bin := buildBinary(t)
	ns := newNetNS(t)

	path := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(text string) { require.NoError(t, os.WriteFile(path, []byte(text), 0o644)) }
	const one = "allowlist:\n  ips:\n    - \"198.18.0.1\"\n  domains:\n    - \"github.com\"\n"
	const two = "allowlist:\n  ips:\n    - \"198.18.0.1\"\n    - \"198.18.0.2\"\n  domains:\n    - \"github.com\"\n"
	write(one)
	environ := []string{"PATH=" + os.Getenv("PATH"), "POLICY_PATH=" + path, "LOG_LEVEL=DEBUG", "HOSTNAME=e2e"}

	// First run: the table appears with the policy's address.
	p := startFilter(t, ns, bin, environ)
	waitFor(t, p, "198.18.0.1 in allow4", allow4Has(ns, "198.18.0.1"))
	listing, err := nft(ns, "list", "table", "inet", "g0efilter")
	require.NoError(t, err)

	// The kernel's listing is what dry-run prints for the same policy.
	dry := exec.Command(bin, "dry-run")
	dry.Env = environ
	want, err := dry.Output()
	require.NoError(t, err)
	assert.Equal(t, string(want), listing)

	// A reload adds 198.18.0.2 to the set.
	write(two)
	waitFor(t, p, "198.18.0.2 in allow4", allow4Has(ns, "198.18.0.1", "198.18.0.2"))
	reloaded, err := nft(ns, "list", "table", "inet", "g0efilter")
	require.NoError(t, err)
	waitFor(t, p, "reload logged", func() (bool, string) {
		s := p.stderr.String()
		return strings.Contains(s, "policy reloaded"), s
	})

	// A broken policy is reported; the sets stay and the filter runs on.
	write("allowlist:\n  ips:\n    - \"300.0.0.1\"\n")
	waitFor(t, p, "broken policy reported", func() (bool, string) {
		s := p.stderr.String()
		return strings.Contains(s, "policy not reloaded"), s
	})
	after, err := nft(ns, "list", "table", "inet", "g0efilter")
	require.NoError(t, err)
	assert.Equal(t, reloaded, after, "a broken policy must not change the rules")
	assert.True(t, p.running(), "g0efilter must survive a broken policy")

	// SIGTERM: a clean exit, and the rules stay installed (fail closed).
	assert.Equal(t, 0, p.stop(t))
	assert.Contains(t, p.stderr.String(), "the rules stay installed")
	after, err = nft(ns, "list", "table", "inet", "g0efilter")
	require.NoError(t, err, "the table must stay after exit")
	assert.Equal(t, reloaded, after)

	// A second run replaces the table: one table, the same rules.
	write(two)
	p2 := startFilter(t, ns, bin, environ)
	waitFor(t, p2, "second run installed", func() (bool, string) {
		s := p2.stderr.String()
		return strings.Contains(s, "ruleset installed"), s
	})
	tables, err := nft(ns, "list", "tables")
	require.NoError(t, err)
	assert.Equal(t, "table inet g0efilter\n", tables)
	after, err = nft(ns, "list", "table", "inet", "g0efilter")
	require.NoError(t, err)
	assert.Equal(t, reloaded, after)
	assert.Equal(t, 0, p2.stop(t))
}
