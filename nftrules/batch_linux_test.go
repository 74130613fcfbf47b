package nftrules

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/g0lab/g0efilter/internal/netnstest"
)

// setElems reads the elements of the named set of the namespace fd.
func setElems(t *testing.T, fd int, name string) []string {
	t.Helper()
	nc, err := nftables.New(nftables.WithNetNSFd(fd))
	require.NoError(t, err)
	table := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
	s, err := nc.GetSetByName(table, name)
	require.NoError(t, err)
	elems, err := nc.GetSetElements(s)
	require.NoError(t, err)
	return elementKeys(elems)
}

// checkChains checks that the inet table has the chains of r, with their
// rules.
func checkChains(t *testing.T, fd int, r *Ruleset) {
	t.Helper()
	nc, err := nftables.New(nftables.WithNetNSFd(fd))
	require.NoError(t, err)
	table := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
	chains, err := nc.ListChainsOfTableFamily(nftables.TableFamilyINet)
	require.NoError(t, err)
	require.Len(t, chains, len(r.chains))
	for _, ch := range r.chains {
		rules, err := nc.GetRules(table, &nftables.Chain{Name: ch.Name, Table: table})
		require.NoError(t, err)
		assert.Len(t, rules, len(ch.Rules), "rules of %s", ch.Name)
	}
}

// TestFailedBatchIsNotSentLater fails each method's batch after its
// messages are queued and before they are sent, then pins an address (the
// DNS server's frequent call, whose Flush would send whatever was left
// queued): the kernel must have the pin and nothing of the failed batch.
func TestFailedBatchIsNotSentLater(t *testing.T) {
	r, err := Build(goldenConfigs()["dns"])
	require.NoError(t, err)
	other, err := Build(Config{Mode: ModeDNS, Allow4: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}})
	require.NoError(t, err)
	pinned := netip.MustParseAddr("192.0.2.10")
	injected := errors.New("injected between queueing and Flush")

	tests := []struct {
		name string
		fail func(c *Conn) error
	}{
		{"Apply", func(c *Conn) error { return c.Apply(other) }},
		{"UpdateSets", func(c *Conn) error {
			return c.UpdateSets([]netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}, nil)
		}},
		{"UpdateSets full replace", func(c *Conn) error {
			v4, v6 := manyPrefixes(50, 0)
			return c.UpdateSets(v4, v6)
		}},
		{"Pin", func(c *Conn) error {
			return c.Pin([]Pin{{Addr: netip.MustParseAddr("192.0.2.66"), Timeout: time.Hour}})
		}},
		{"AddEgress", func(c *Conn) error { return c.AddEgress("lo") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fd := netnstest.New(t)
			c := openIn(t, fd)
			require.NoError(t, c.Apply(r))

			c.beforeFlush = func() error { return injected }
			require.ErrorIs(t, tt.fail(c), injected)
			c.beforeFlush = nil
			assert.Same(t, r, c.Applied(), "a failed batch changes nothing")

			require.NoError(t, c.Pin([]Pin{{Addr: pinned, Timeout: time.Hour}}))
			assert.Equal(t, []string{pinned.String() + " end=false"}, setElems(t, fd, setPinned4), "only the pin was sent")
			assert.Equal(t, elementKeys(setElements(r.set(SetAllow4).Elements, true)), setElems(t, fd, SetAllow4))
			assert.Equal(t, elementKeys(setElements(r.set(SetAllow6).Elements, true)), setElems(t, fd, SetAllow6))
			assert.Equal(t, "table inet "+TableName+"\n", nftRun(t, fd, "list", "tables"), "no netdev table")
			checkChains(t, fd, r)
		})
	}
}

// TestFailedFlushLeavesConnUsable makes the kernel refuse a batch: the
// next call goes through on a fresh connection.
func TestFailedFlushLeavesConnUsable(t *testing.T) {
	fd := netnstest.New(t)
	c := openIn(t, fd)
	r, err := Build(goldenConfigs()["dns"])
	require.NoError(t, err)
	require.NoError(t, c.Apply(r))

	// Behind the Conn's back: without the table, every batch that names
	// it is refused.
	nftRun(t, fd, "delete", "table", "inet", TableName)
	require.Error(t, c.Pin([]Pin{{Addr: netip.MustParseAddr("192.0.2.10"), Timeout: time.Hour}}))

	require.NoError(t, c.Apply(r))
	require.NoError(t, c.Pin([]Pin{{Addr: netip.MustParseAddr("192.0.2.11"), Timeout: time.Hour}}))
	assert.Equal(t, []string{"192.0.2.11 end=false"}, setElems(t, fd, setPinned4))
	require.NoError(t, c.Installed())
}

// TestOpenDuplicatesNetNS closes the caller's descriptor after Open: a
// failed batch opens the connection again, in the same namespace.
func TestOpenDuplicatesNetNS(t *testing.T) {
	fd := netnstest.New(t)
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	require.NoError(t, err)
	c, err := Open(ConnConfig{NetNS: dup})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, unix.Close(dup))

	r, err := Build(goldenConfigs()["dns"])
	require.NoError(t, err)
	c.beforeFlush = func() error { return errors.New("injected") }
	require.Error(t, c.Apply(r))
	c.beforeFlush = nil
	require.NoError(t, c.Apply(r))
	require.NoError(t, c.Installed())
	assert.Equal(t, elementKeys(setElements(r.set(SetAllow4).Elements, true)), setElems(t, fd, SetAllow4))

	require.NoError(t, c.Close())
	assert.ErrorIs(t, c.Pin([]Pin{{Addr: netip.MustParseAddr("192.0.2.10"), Timeout: time.Hour}}), errClosed)
	assert.NoError(t, c.Close(), "twice")
}
