package netnstest

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Require skips a test that needs root and the named tools, or fails it
// under CI=true, where privileged tests must run.
func Require(tb testing.TB, tools ...string) {
	tb.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "privileged test: needs " + strings.Join(missing, ", ")
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg + ", and must run under CI=true")
	}
	tb.Skip(msg)
}

// New creates an empty network namespace and returns an open file
// descriptor for it, closed when the test ends; the namespace goes with its
// last reference. Nothing in the test process's own namespace is touched.
// It calls Require first.
func New(tb testing.TB) int {
	tb.Helper()
	Require(tb)
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result)
	go func() {
		// The thread is never unlocked: it ends with this goroutine
		// instead of going back to the pool in the new namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{-1, err}
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		ch <- result{fd, err}
	}()
	r := <-ch
	require.NoError(tb, r.err, "create network namespace")
	tb.Cleanup(func() { _ = unix.Close(r.fd) })
	return r.fd
}

// Run runs f on a thread in the namespace fd (and so do processes that f
// starts). The thread is discarded afterwards.
func Run(tb testing.TB, fd int, f func()) {
	tb.Helper()
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		f()
		done <- nil
	}()
	require.NoError(tb, <-done, "enter network namespace")
}
