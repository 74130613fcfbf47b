package nftrules

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// requireRoot skips a test that needs root, or fails it under CI=true,
// where privileged tests must run.
func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		tb.Fatal("privileged test: must run as root under CI=true")
	}
	tb.Skip("privileged test: needs root")
}

// requireNft returns the path of the nft binary, skipping the test when it
// is missing, or failing it under CI=true.
func requireNft(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("nft")
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		tb.Fatal("nft not installed (apt-get install nftables): needed under CI=true")
	}
	tb.Skip("nft not installed")
	return ""
}

// newNetNS creates a fresh network namespace and returns an open file
// descriptor for it, closed when the test ends. Nothing in the test
// process's own namespace is touched.
func newNetNS(tb testing.TB) int {
	tb.Helper()
	requireRoot(tb)
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

// inNetNS runs f on a thread in the namespace fd (and so do processes that
// f starts). The thread is discarded afterwards.
func inNetNS(tb testing.TB, fd int, f func()) {
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

// nftList runs "nft list table inet g0efilter" in the namespace fd.
func nftList(tb testing.TB, fd int) string {
	tb.Helper()
	return nftRun(tb, fd, "list", "table", "inet", TableName)
}

// nftListSet runs "nft list set inet g0efilter NAME" in the namespace fd.
func nftListSet(tb testing.TB, fd int, name string) string {
	tb.Helper()
	return nftRun(tb, fd, "list", "set", "inet", TableName, name)
}

// nftRun runs nft with args in the namespace fd and returns its output.
func nftRun(tb testing.TB, fd int, args ...string) string {
	tb.Helper()
	nft := requireNft(tb)
	var out, stderr bytes.Buffer
	var err error
	inNetNS(tb, fd, func() {
		cmd := exec.Command(nft, args...)
		cmd.Stdout, cmd.Stderr = &out, &stderr
		err = cmd.Run()
	})
	require.NoError(tb, err, "nft %v: %s", args, stderr.String())
	return out.String()
}

// openIn opens a Conn on the namespace fd, closed when the test ends.
func openIn(tb testing.TB, fd int) *Conn {
	tb.Helper()
	c, err := Open(ConnConfig{NetNS: fd})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}
