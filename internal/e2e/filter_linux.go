//go:build linux

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/g0lab/g0efilter/internal/testbed"
	"github.com/g0lab/g0efilter/nftrules"
)

// Timeouts of the harness's waits; each wait polls every pollInterval.
const (
	buildTimeout = 5 * time.Minute
	waitTimeout  = 20 * time.Second
	stopTimeout  = 15 * time.Second
	pollInterval = 50 * time.Millisecond
)

// Packages that the harness builds, once per test binary.
const (
	binaryPackage  = "github.com/g0lab/g0efilter/cmd/g0efilter"
	hostilePackage = "github.com/g0lab/g0efilter/internal/e2e/hostile"
)

// The binaries are built into buildDir, which [Main] removes.
var (
	buildDirOnce sync.Once
	buildDir     string
	buildDirErr  error

	filterBuild  = &build{pkg: binaryPackage, name: "g0efilter"}
	hostileBuild = &build{pkg: hostilePackage, name: "hostile"}
)

// build is a binary built on first use.
type build struct {
	pkg, name string

	once sync.Once
	path string
	err  error
}

// Main runs the tests of m and then removes the binaries built for them;
// call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(e2e.Main(m)) }
//
// Without it the tests work the same, but the binaries stay in the
// temporary directory.
func Main(m *testing.M) int {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	return code
}

// Binary returns the path of the g0efilter binary, building it on the
// first call.
func Binary(tb testing.TB) string {
	tb.Helper()
	return filterBuild.get(tb)
}

// HostileBinary returns the path of the hostile workload program
// (internal/e2e/hostile), building it on the first call. [Env.Hostile]
// runs it in the box.
func HostileBinary(tb testing.TB) string {
	tb.Helper()
	return hostileBuild.get(tb)
}

func (b *build) get(tb testing.TB) string {
	tb.Helper()
	b.once.Do(func() {
		buildDirOnce.Do(func() {
			buildDir, buildDirErr = os.MkdirTemp("", "g0efilter-e2e-")
			if buildDirErr == nil {
				// Readable by all: the hostile program runs as nobody too.
				buildDirErr = os.Chmod(buildDir, 0o755)
			}
		})
		if b.err = buildDirErr; b.err != nil {
			return
		}
		bin := filepath.Join(buildDir, b.name)
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		if b.err = testbed.GoBuild(ctx, bin, b.pkg); b.err != nil {
			return
		}
		b.path = bin
	})
	if b.err != nil {
		tb.Fatalf("e2e: %v", b.err)
	}
	return b.path
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

// Filter is a "g0efilter run" process in the box namespace and a cgroup
// of its own.
type Filter struct {
	t          testing.TB
	ns         string
	cgroup     cgroup
	policyPath string
	proc       *testbed.Process
	output     *syncBuffer
}

// StartFilter runs "g0efilter run" in the box with policyYAML as its
// policy file and returns once the kernel has the g0efilter table. The
// process's environment is PATH, POLICY_PATH, HOSTNAME=e2e and
// LOG_LEVEL=DEBUG, then env, which may override them. The process is killed
// when the test ends, if still running, and its output logged if the test
// failed.
//
// The process runs in a new cgroup v2 of its own ([Filter.CgroupPath]),
// from birth, so that every socket it makes belongs to that cgroup. The
// cgroup is removed when the test ends. Without a writable cgroup2 mount
// the test is skipped (failed under CI=true).
func (e *Env) StartFilter(tb testing.TB, policyYAML string, env map[string]string) *Filter {
	tb.Helper()
	bin := Binary(tb)
	f := &Filter{
		t:          tb,
		ns:         e.Box,
		cgroup:     e.cgroup(tb, "filter"),
		policyPath: filepath.Join(tb.TempDir(), "policy.yaml"),
		output:     &syncBuffer{},
	}
	f.SetPolicy(policyYAML)

	vars := map[string]string{
		"PATH":        os.Getenv("PATH"),
		"POLICY_PATH": f.policyPath,
		"HOSTNAME":    "e2e",
		"LOG_LEVEL":   "DEBUG",
	}
	maps.Copy(vars, env)
	environ := make([]string, 0, len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		environ = append(environ, k+"="+vars[k])
	}

	// nsenter, unlike "ip netns exec", leaves the mount namespace alone,
	// so the filter sees the cgroup2 mount; it execs the binary, which
	// keeps its pid and cgroup.
	cmd := exec.Command("nsenter", "--net="+testbed.NetnsPath(e.Box), "--", bin, "run")
	cmd.Env = environ
	cmd.Stdout, cmd.Stderr = f.output, f.output
	var err error
	if f.proc, err = f.cgroup.Run(cmd); err != nil {
		tb.Fatalf("e2e: start g0efilter: %v", err)
	}
	tb.Cleanup(func() {
		if f.Running() {
			_ = cmd.Process.Kill()
			<-f.proc.Done()
		}
		if tb.Failed() {
			tb.Logf("g0efilter output:\n%s", f.output.String())
		}
	})

	f.waitFor("the g0efilter table", func() (bool, string) {
		listing, err := f.Listing()
		if err != nil {
			return false, err.Error()
		}
		return true, listing
	})
	return f
}

// Pid returns the process id of the filter.
func (f *Filter) Pid() int { return f.proc.Cmd.Process.Pid }

// CgroupPath returns the absolute path of the filter's cgroup directory,
// under the cgroup2 mount.
func (f *Filter) CgroupPath() string { return f.cgroup.Path }

// CgroupID returns the id of the filter's cgroup, the inode number of its
// directory: what nftables' "socket cgroupv2" compares.
func (f *Filter) CgroupID() uint64 { return f.cgroup.ID }

// Output returns what the process has written to stdout and stderr so far.
func (f *Filter) Output() string { return f.output.String() }

// Running reports whether the process has not exited.
func (f *Filter) Running() bool { return f.proc.Running() }

// SetPolicy replaces the policy file with policyYAML, atomically (write
// and rename), as a deployment tool would.
func (f *Filter) SetPolicy(policyYAML string) {
	f.t.Helper()
	tmp := f.policyPath + ".new"
	if err := os.WriteFile(tmp, []byte(policyYAML), 0o644); err != nil {
		f.t.Fatalf("e2e: write policy: %v", err)
	}
	if err := os.Rename(tmp, f.policyPath); err != nil {
		f.t.Fatalf("e2e: replace policy: %v", err)
	}
}

// Listing returns "nft list table inet g0efilter" run in the box.
func (f *Filter) Listing() (string, error) {
	return nftIn(f.ns, "list", "table", "inet", nftrules.TableName)
}

// Tables returns "nft list tables" run in the box.
func (e *Env) Tables() (string, error) {
	return nftIn(e.Box, "list", "tables")
}

// nftIn runs nft with args in namespace ns and returns its output.
func nftIn(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "nft"}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("nft %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// PolicyPath returns the policy file the process reads.
func (f *Filter) PolicyPath() string { return f.policyPath }

// WaitForOutput waits until the process's output contains substr.
func (f *Filter) WaitForOutput(substr string) {
	f.t.Helper()
	f.waitFor(fmt.Sprintf("%q in the output", substr), func() (bool, string) {
		out := f.Output()
		return strings.Contains(out, substr), out
	})
}

// SetElements returns the elements of the kernel's set name as nft lists
// them ("198.18.0.3", "198.18.0.0/24", ...).
func (f *Filter) SetElements(name string) ([]string, error) {
	listing, err := f.Listing()
	if err != nil {
		return nil, err
	}
	return setElements(listing, name)
}

// WaitForSet waits until the kernel's allowlist set for elem's family
// (allow4 or allow6) holds elem, an address or prefix as nft lists it.
// A set is replaced in one batch, so other changes of the same reload are
// there too once it returns.
func (f *Filter) WaitForSet(elem string) {
	f.t.Helper()
	set := nftrules.SetAllow4
	if strings.Contains(elem, ":") {
		set = nftrules.SetAllow6
	}
	if _, err := netip.ParsePrefix(elem); err != nil {
		if _, err := netip.ParseAddr(elem); err != nil {
			f.t.Fatalf("e2e: WaitForSet(%q): not an address or prefix", elem)
		}
	}
	f.waitFor(elem+" in "+set, func() (bool, string) {
		elems, err := f.SetElements(set)
		if err != nil {
			return false, err.Error()
		}
		return slices.Contains(elems, elem), fmt.Sprint(elems)
	})
}

// Kill ends the process with SIGKILL and waits for it: no shutdown code
// runs.
func (f *Filter) Kill() {
	f.t.Helper()
	f.signal(syscall.SIGKILL)
}

// Stop sends SIGTERM, waits for the process to exit and returns its exit
// code.
func (f *Filter) Stop() int {
	f.t.Helper()
	f.signal(syscall.SIGTERM)
	var ee *exec.ExitError
	if errors.As(f.proc.Err(), &ee) {
		return ee.ExitCode()
	}
	if err := f.proc.Err(); err != nil {
		f.t.Fatalf("e2e: g0efilter: %v", err)
	}
	return 0
}

// signal sends sig to the process, which is nsenter until it execs the
// binary and the binary after (StartFilter returns after that); both die
// of SIGKILL and the binary handles SIGTERM.
func (f *Filter) signal(sig syscall.Signal) {
	f.t.Helper()
	if !f.Running() {
		f.t.Fatalf("e2e: g0efilter already exited: %v", f.proc.Err())
	}
	if err := f.proc.Signal(sig, stopTimeout); err != nil {
		f.t.Fatalf("e2e: signal g0efilter: %v", err)
	}
}

// waitFor polls cond until it holds, the process exits or waitTimeout
// passes; cond's second result, the last state seen, goes in the failure
// message.
func (f *Filter) waitFor(desc string, cond func() (bool, string)) {
	f.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		ok, last := cond()
		if ok {
			return
		}
		if !f.Running() {
			f.t.Fatalf("e2e: waiting for %s: g0efilter exited (%v); last state: %s\n%s",
				desc, f.proc.Err(), last, f.output.String())
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("e2e: waiting for %s: timed out after %v; last state: %s", desc, waitTimeout, last)
		}
		<-tick.C
	}
}

// setElements parses the elements of set name out of an nft listing; a
// set without elements gives none.
func setElements(listing, name string) ([]string, error) {
	i := strings.Index(listing, "\tset "+name+" {")
	if i < 0 {
		return nil, fmt.Errorf("no set %s in the listing", name)
	}
	block := listing[i:]
	if j := strings.Index(block, "\n\t}"); j >= 0 {
		block = block[:j]
	}
	k := strings.Index(block, "elements = {")
	if k < 0 {
		return nil, nil
	}
	body := block[k+len("elements = {"):]
	if j := strings.Index(body, "}"); j >= 0 {
		body = body[:j]
	}
	var elems []string
	for field := range strings.FieldsFuncSeq(body, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n'
	}) {
		elems = append(elems, field)
	}
	return elems, nil
}
