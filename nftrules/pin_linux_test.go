package nftrules

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gonflog "github.com/florianl/go-nflog/v2"
	"github.com/google/nftables"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/internal/netnstest"
)

// Addresses of the peer namespace (see peerNS).
var (
	peerA4 = netip.MustParseAddr("198.19.0.2")
	peerB4 = netip.MustParseAddr("198.19.0.3")
	peerA6 = netip.MustParseAddr("fd01::2")
	peerB6 = netip.MustParseAddr("fd01::3")
)

const peerPort = 7000

// peerNS returns a namespace (the box) joined by a veth pair to a peer
// namespace that has the addresses peerA4, peerB4, peerA6 and peerB6 and a
// TCP echo server on peerPort of each: a connection that the rules let
// through succeeds. It returns once the box reaches the peer.
func peerNS(t *testing.T) int {
	box, _ := peerNSPair(t)
	return box
}

// peerNSPair is peerNS, and returns the peer namespace too.
func peerNSPair(t *testing.T) (box, peer int) {
	box, peer = netnstest.New(t), netnstest.New(t)
	ipCmd(t, box, "link", "set", "lo", "up")
	ipCmd(t, peer, "link", "set", "lo", "up")
	ipCmd(t, box, "link", "add", "p0", "type", "veth", "peer", "name", "p1",
		"netns", fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), peer))
	ipCmd(t, box, "addr", "add", "198.19.0.1/24", "dev", "p0")
	ipCmd(t, box, "addr", "add", "fd01::1/64", "dev", "p0", "nodad")
	for _, a := range []netip.Addr{peerA4, peerB4} {
		ipCmd(t, peer, "addr", "add", a.String()+"/24", "dev", "p1")
	}
	for _, a := range []netip.Addr{peerA6, peerB6} {
		ipCmd(t, peer, "addr", "add", a.String()+"/64", "dev", "p1", "nodad")
	}
	ipCmd(t, box, "link", "set", "p0", "up")
	ipCmd(t, peer, "link", "set", "p1", "up")

	ln := listenIn(t, peer, "tcp", fmt.Sprintf(":%d", peerPort))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(c, c) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})

	// No rules yet: wait for the link to carry traffic.
	for _, a := range []netip.Addr{peerA4, peerA6} {
		require.Eventually(t, func() bool {
			return dialIn(t, box, "tcp", peerAddr(a), 0) == nil
		}, 5*time.Second, 20*time.Millisecond, "peer %v reachable", a)
	}
	return box, peer
}

func peerAddr(a netip.Addr) string {
	return netip.AddrPortFrom(a, peerPort).String()
}

// holdIn opens a TCP connection from the namespace fd, closed when the test
// ends.
func holdIn(t *testing.T, fd int, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	var err error
	netnstest.Run(t, fd, func() { c, err = net.DialTimeout("tcp", addr, time.Second) })
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// echoes reports whether a message sent on c comes back.
func echoes(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "ping" {
		return fmt.Errorf("echo %q", buf)
	}
	return nil
}

// pinnedElems reads the elements of the pinned sets of the namespace fd.
func pinnedElems(t *testing.T, fd int) map[netip.Addr]nftables.SetElement {
	t.Helper()
	nc, err := nftables.New(nftables.WithNetNSFd(fd))
	require.NoError(t, err)
	table := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
	out := map[netip.Addr]nftables.SetElement{}
	for _, name := range []string{setPinned4, setPinned6} {
		s, err := nc.GetSetByName(table, name)
		require.NoError(t, err)
		elems, err := nc.GetSetElements(s)
		require.NoError(t, err)
		for _, e := range elems {
			a, ok := netip.AddrFromSlice(e.Key)
			require.True(t, ok)
			out[a] = e
		}
	}
	return out
}

// logRecorder records the packets logged to an nflog group: their prefix
// and destination.
type logRecorder struct {
	mu  sync.Mutex
	got map[string]int // "prefix daddr" -> packets
}

func recordLog(t *testing.T, fd int, group uint16) *logRecorder {
	t.Helper()
	nf, err := gonflog.Open(&gonflog.Config{NetNS: fd, Group: group, Copymode: gonflog.CopyPacket, Bufsize: 64, QThresh: 1})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		_ = nf.Close()
	})
	r := &logRecorder{got: map[string]int{}}
	err = nf.RegisterWithErrorFunc(ctx, func(a gonflog.Attribute) int {
		var prefix string
		var dst netip.Addr
		if a.Prefix != nil {
			prefix = *a.Prefix
		}
		if a.Payload != nil {
			p := *a.Payload
			switch {
			case len(p) >= 20 && p[0]>>4 == 4:
				dst = netip.AddrFrom4([4]byte(p[16:20]))
			case len(p) >= 40 && p[0]>>4 == 6:
				dst = netip.AddrFrom16([16]byte(p[24:40]))
			}
		}
		r.mu.Lock()
		r.got[prefix+dst.String()]++
		r.mu.Unlock()
		return 0
	}, func(error) int { return 0 })
	require.NoError(t, err)
	return r
}

// count returns how many packets to dst were logged with prefix.
func (r *logRecorder) count(prefix string, dst netip.Addr) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[prefix+dst.String()]
}

// countPrefix returns how many packets were logged with prefix.
func (r *logRecorder) countPrefix(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for k, v := range r.got {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

// total returns how many packets were logged.
func (r *logRecorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, v := range r.got {
		n += v
	}
	return n
}

// waitCount waits for want packets to dst logged with prefix, and fails
// the test on more.
func (r *logRecorder) waitCount(t *testing.T, prefix string, dst netip.Addr, want int) {
	t.Helper()
	require.Eventually(t, func() bool { return r.count(prefix, dst) >= want },
		2*time.Second, 10*time.Millisecond, "%q %v logged %d times", prefix, dst, want)
	assert.Equal(t, want, r.count(prefix, dst), "%q %v", prefix, dst)
}

// TestPin pins addresses in dns mode and checks the pinned sets, the
// traffic they let through, the log and expiry.
func TestPin(t *testing.T) {
	fd := peerNS(t)
	c := openIn(t, fd)
	pin2s := func(as ...netip.Addr) []Pin {
		out := make([]Pin, len(as))
		for i, a := range as {
			out[i] = Pin{Addr: a, Timeout: 2 * time.Second}
		}
		return out
	}
	require.ErrorIs(t, c.Pin(pin2s(peerA4)), ErrNotApplied)
	https, err := Build(Config{})
	require.NoError(t, err)
	require.NoError(t, c.Apply(https))
	require.ErrorIs(t, c.Pin(pin2s(peerA4)), ErrNoPinnedSets)

	dns, err := Build(Config{Mode: ModeDNS})
	require.NoError(t, err)
	require.NoError(t, c.Apply(dns))
	log := recordLog(t, fd, DefaultNflogGroup)
	assert.ErrorIs(t, dialIn(t, fd, "tcp", peerAddr(peerA4), 0), syscall.ECONNREFUSED, "not pinned yet")
	require.ErrorIs(t, c.Pin([]Pin{{Addr: peerA4, Timeout: time.Second}, {}}), ErrConfig)
	assert.Empty(t, pinnedElems(t, fd), "a bad pin pins nothing")
	require.NoError(t, c.Pin(nil))

	mapped := netip.MustParseAddr("::ffff:198.19.0.9")
	require.NoError(t, c.Pin(pin2s(peerA4, peerA6, peerB6, mapped)))
	elems := pinnedElems(t, fd)
	require.Len(t, elems, 4)
	for _, a := range []netip.Addr{peerA4, peerA6, peerB6, mapped.Unmap()} {
		e, ok := elems[a]
		require.True(t, ok, "%v pinned", a)
		assert.Equal(t, 2*time.Second, e.Timeout, "%v", a)
		assert.Greater(t, e.Expires, time.Second, "%v", a)
		assert.LessOrEqual(t, e.Expires, 2*time.Second, "%v", a)
	}
	set4 := nftListSet(t, fd, setPinned4)
	assert.Contains(t, set4, "198.19.0.2 timeout 2s expires")
	assert.Contains(t, set4, "198.19.0.9 timeout 2s expires")
	assert.Contains(t, nftListSet(t, fd, setPinned6), "fd01::2 timeout 2s expires")

	// Pinned addresses are reachable, others are not, and each new
	// connection is logged once.
	require.NoError(t, dialIn(t, fd, "tcp", peerAddr(peerA4), 0))
	require.NoError(t, dialIn(t, fd, "tcp", peerAddr(peerA6), 0))
	held := holdIn(t, fd, peerAddr(peerA4))
	require.NoError(t, echoes(held))
	assert.ErrorIs(t, dialIn(t, fd, "tcp", peerAddr(peerB4), 0), syscall.ECONNREFUSED, "unpinned address")
	assert.ErrorIs(t, dialIn(t, fd, "tcp", peerAddr(netip.MustParseAddr("fd01::4")), 0), syscall.ECONNREFUSED, "unpinned address")
	assert.ErrorIs(t, dialIn(t, fd, "udp", peerAddr(peerB4), 0), syscall.EPERM)
	assert.NoError(t, dialIn(t, fd, "udp", peerAddr(peerA4), 0))
	log.waitCount(t, DefaultPinnedLogPrefix, peerA4, 3) // tcp, held, udp
	log.waitCount(t, DefaultPinnedLogPrefix, peerA6, 1)
	log.waitCount(t, DefaultLogPrefix, peerB4, 2) // tcp, udp

	// Pinning again with the same timeout refreshes the expiry (the kernel
	// alone would not); a longer timeout extends it, a shorter one leaves
	// it.
	require.Eventually(t, func() bool { return pinnedElems(t, fd)[peerB6].Expires <= time.Second },
		3*time.Second, 20*time.Millisecond)
	require.NoError(t, c.Pin(pin2s(peerB6)))
	assert.Greater(t, pinnedElems(t, fd)[peerB6].Expires, 1500*time.Millisecond, "refreshed")
	require.NoError(t, c.Pin([]Pin{{Addr: peerA6, Timeout: 10 * time.Second}}))
	assert.Greater(t, pinnedElems(t, fd)[peerA6].Expires, 9*time.Second, "extended")
	require.NoError(t, c.Pin([]Pin{{Addr: peerA6, Timeout: time.Second}}))
	assert.Greater(t, pinnedElems(t, fd)[peerA6].Expires, 8*time.Second, "not shortened")

	// The first pins expire; connections made meanwhile survive.
	require.Eventually(t, func() bool {
		elems := pinnedElems(t, fd)
		_, a4 := elems[peerA4]
		_, m4 := elems[mapped.Unmap()]
		return !a4 && !m4
	}, 4*time.Second, 20*time.Millisecond, "pins expire")
	assert.Contains(t, pinnedElems(t, fd), peerB6, "refreshed pin still there")
	require.NoError(t, dialIn(t, fd, "tcp", peerAddr(peerA6), 0), "extended pin")
	assert.ErrorIs(t, dialIn(t, fd, "tcp", peerAddr(peerA4), 0), syscall.ECONNREFUSED, "expired pin")
	assert.NoError(t, echoes(held), "established connection survives expiry")
	log.waitCount(t, DefaultPinnedLogPrefix, peerA4, 3)
	log.waitCount(t, DefaultLogPrefix, peerA4, 2) // before the pin and after
	log.waitCount(t, DefaultPinnedLogPrefix, peerA6, 2)
	require.Eventually(t, func() bool { return len(pinnedElems(t, fd)) == 1 },
		3*time.Second, 20*time.Millisecond, "refreshed pin expires")

	// Apply empties the pinned sets and forgets the deadlines.
	require.NoError(t, c.Apply(dns))
	assert.Empty(t, pinnedElems(t, fd))
	require.NoError(t, c.Pin([]Pin{{Addr: peerA6, Timeout: time.Second}}))
	assert.LessOrEqual(t, pinnedElems(t, fd)[peerA6].Expires, time.Second)
	assert.Equal(t, 0, log.count(DefaultAllowLogPrefix, peerA4)+log.count(DefaultAllowLogPrefix, peerA6))
}

// TestPinConcurrent pins from several goroutines while the allowlist is
// being updated.
func TestPinConcurrent(t *testing.T) {
	fd := netnstest.New(t)
	c := openIn(t, fd)
	r, err := Build(Config{Mode: ModeDNS})
	require.NoError(t, err)
	require.NoError(t, c.Apply(r))
	v4, v6 := manyPrefixes(100, 0)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 25 {
				a := netip.AddrFrom4([4]byte{192, 0, byte(g), byte(i)})
				assert.NoError(t, c.Pin([]Pin{{Addr: a, Timeout: time.Minute}}))
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			if i%2 == 0 {
				assert.NoError(t, c.UpdateSets(v4, v6))
			} else {
				assert.NoError(t, c.UpdateSets(nil, nil))
			}
		}
	})
	wg.Wait()
	assert.Len(t, pinnedElems(t, fd), 100)
	// The allowlist sets hold what the last update sent.
	nc, err := nftables.New(nftables.WithNetNSFd(fd))
	require.NoError(t, err)
	table := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
	for _, name := range []string{SetAllow4, SetAllow6} {
		s, err := nc.GetSetByName(table, name)
		require.NoError(t, err)
		got, err := nc.GetSetElements(s)
		require.NoError(t, err)
		want := c.Applied().set(name)
		assert.Equal(t, elementKeys(setElements(want.Elements, true)), elementKeys(got), name)
	}
}

// TestTrafficLogsAllowed checks what https mode logs: each new connection
// to an allowlisted address once, as allowed, and blocked ones, as
// blocked; QuietAllowed logs only the latter.
func TestTrafficLogsAllowed(t *testing.T) {
	fd := peerNS(t)
	c := openIn(t, fd)
	cfg := Config{
		Allow4: []netip.Prefix{netip.PrefixFrom(peerA4, 32)},
		Allow6: []netip.Prefix{netip.PrefixFrom(peerA6, 128)},
	}
	r, err := Build(cfg)
	require.NoError(t, err)
	require.NoError(t, c.Apply(r))
	log := recordLog(t, fd, DefaultNflogGroup)

	held := holdIn(t, fd, peerAddr(peerA4))
	for range 3 {
		require.NoError(t, echoes(held))
	}
	require.NoError(t, dialIn(t, fd, "tcp", peerAddr(peerA6), 0))
	assert.ErrorIs(t, dialIn(t, fd, "tcp", peerAddr(peerB4), 0), syscall.ECONNREFUSED)
	assert.ErrorIs(t, dialIn(t, fd, "tcp", peerAddr(peerB6), 0), syscall.ECONNREFUSED)
	// Redirected to the (absent) local proxy: not the kernel's to log.
	assert.ErrorIs(t, dialIn(t, fd, "tcp", netip.AddrPortFrom(peerB4, 80).String(), 0), syscall.ECONNREFUSED)
	log.waitCount(t, DefaultAllowLogPrefix, peerA4, 1)
	log.waitCount(t, DefaultAllowLogPrefix, peerA6, 1)
	log.waitCount(t, DefaultLogPrefix, peerB4, 1)
	log.waitCount(t, DefaultLogPrefix, peerB6, 1)
	assert.Equal(t, 4, log.total(), "nothing else logged")

	cfg.QuietAllowed = true
	r, err = Build(cfg)
	require.NoError(t, err)
	require.NoError(t, c.Apply(r))
	require.NoError(t, dialIn(t, fd, "tcp", peerAddr(peerA4), 0))
	assert.ErrorIs(t, dialIn(t, fd, "tcp", peerAddr(peerB4), 0), syscall.ECONNREFUSED)
	log.waitCount(t, DefaultLogPrefix, peerB4, 2)
	assert.Equal(t, 1, log.count(DefaultAllowLogPrefix, peerA4), "quiet")
	require.NoError(t, echoes(held), "established connection survives Apply")
}

// BenchmarkPin100 pins 100 addresses in one call, again and again: each
// call adds, deletes and re-adds every element in one batch.
func BenchmarkPin100(b *testing.B) {
	for _, bc := range []struct {
		name string
		v6   int // how many of the 100 are IPv6
	}{{"v4", 0}, {"v4+v6", 50}} {
		b.Run(bc.name, func(b *testing.B) {
			fd := netnstest.New(b)
			c := openIn(b, fd)
			r, err := Build(Config{Mode: ModeDNS})
			require.NoError(b, err)
			require.NoError(b, c.Apply(r))
			pins := make([]Pin, 100)
			for i := range pins {
				a := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
				if i < bc.v6 {
					a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)})
				}
				pins[i] = Pin{Addr: a, Timeout: time.Minute}
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Pin(pins); err != nil {
					b.Fatal(err)
				}
			}
			msPerOp(b)
		})
	}
}

// TestPinSkipsWhatIsPinnedLongEnough: an address pinned until at least its
// Need from now is left as it is in the kernel (its timeout unchanged);
// one that is not gets the new timeout.
func TestPinSkipsWhatIsPinnedLongEnough(t *testing.T) {
	fd := trafficNS(t)
	c := openIn(t, fd)
	r, err := Build(Config{Mode: ModeDNS})
	require.NoError(t, err)
	require.NoError(t, c.Apply(r))
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	require.NoError(t, c.Pin([]Pin{{Addr: a, Timeout: time.Minute}, {Addr: b, Timeout: time.Minute}}))
	require.NoError(t, c.Pin([]Pin{
		{Addr: a, Timeout: 2 * time.Minute, Need: 30 * time.Second}, // pinned for a minute: long enough
		{Addr: b, Timeout: 2 * time.Minute, Need: 90 * time.Second}, // not
	}))
	set := nftListSet(t, fd, setPinned4)
	assert.Contains(t, set, "192.0.2.1 timeout 1m", set)
	assert.Contains(t, set, "192.0.2.2 timeout 2m", set)
}
