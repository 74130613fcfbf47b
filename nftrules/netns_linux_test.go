package nftrules

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/internal/netnstest"
)

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
	netnstest.Run(tb, fd, func() {
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
