package nftrules

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/g0lab/g0efilter/internal/cgroupv2"
	"github.com/g0lab/g0efilter/internal/netnstest"
	"github.com/g0lab/g0efilter/internal/rawframe"
)

// testCgroups makes cgroups below a fresh one in the cgroup2 mount and
// moves the test process between them; when the test ends the process is
// back where it was and the cgroups are gone. Sockets keep the cgroup of
// the process that made them, so a socket made after moveTo belongs to
// that cgroup.
type testCgroups struct {
	t     *testing.T
	mount string // the cgroup2 mount point
	base  string // directory of the test's cgroup
	home  string // directory of the process's cgroup before the test
}

func newTestCgroups(t *testing.T) *testCgroups {
	t.Helper()
	netnstest.Require(t)
	path, mount, err := cgroupv2.Self()
	if errors.Is(err, cgroupv2.ErrNoMount) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cgroup v2 needed under CI=true: %v", err)
		}
		t.Skipf("cgroup v2: %v", err)
	}
	require.NoError(t, err)
	home, err := mount.Dir(path)
	require.NoError(t, err)
	c := &testCgroups{t: t, mount: mount.Point, home: home}
	c.base = filepath.Join(mount.Point, fmt.Sprintf("g0e-nft-%d-%d", os.Getpid(), time.Now().UnixNano()))
	require.NoError(t, os.Mkdir(c.base, 0o755))
	t.Cleanup(func() {
		c.moveTo(c.home)
		// Deepest first.
		dirs, _ := filepath.Glob(filepath.Join(c.base, "*", "*"))
		more, _ := filepath.Glob(filepath.Join(c.base, "*"))
		for _, d := range append(append(dirs, more...), c.base) {
			if fi, err := os.Stat(d); err == nil && fi.IsDir() {
				if err := os.Remove(d); err != nil {
					t.Errorf("remove cgroup %s: %v", d, err)
				}
			}
		}
	})
	return c
}

// make creates the cgroup rel below the test's and returns its directory
// and id.
func (c *testCgroups) make(rel string) (string, uint64) {
	c.t.Helper()
	dir := filepath.Join(c.base, rel)
	require.NoError(c.t, os.MkdirAll(dir, 0o755))
	var st syscall.Stat_t
	require.NoError(c.t, syscall.Stat(dir, &st))
	return dir, st.Ino
}

// moveTo moves the whole test process into the cgroup dir.
func (c *testCgroups) moveTo(dir string) {
	c.t.Helper()
	err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644)
	require.NoError(c.t, err, "move to %s", dir)
}

func TestSelfCgroup(t *testing.T) {
	cg := newTestCgroups(t)
	dir, id := cg.make("filter")
	cg.moveTo(dir)
	got, level, err := SelfCgroup()
	require.NoError(t, err)
	assert.Equal(t, id, got)
	// The cgroup namespace is the initial one here, so the level is
	// known: the number of directories below the mount.
	rel, err := filepath.Rel(cg.mount, dir)
	require.NoError(t, err)
	assert.Equal(t, strings.Count(rel, "/")+1, level)
}

// TestTrafficOwnCgroup checks that, with a cgroup, the mark lets through
// only the filter's own sockets: those of its cgroup and those below it.
// The same mark from another cgroup is a forgery, logged and dropped.
func TestTrafficOwnCgroup(t *testing.T) {
	fd := peerNS(t)
	cg := newTestCgroups(t)
	own, ownID := cg.make("filter")
	child, _ := cg.make("filter/helper")
	other, _ := cg.make("workload")
	c := openIn(t, fd)
	log := recordLog(t, fd, DefaultNflogGroup)
	const mark = 0x5eed0001

	ownLevel := strings.Count(strings.TrimPrefix(own, filepath.Dir(cg.base)), "/")
	for _, level := range []int{0, ownLevel} {
		t.Run(fmt.Sprintf("level=%d", level), func(t *testing.T) {
			r, err := Build(Config{BypassMark: mark, OwnCgroup: ownID, OwnCgroupLevel: level})
			require.NoError(t, err)
			require.NoError(t, c.Apply(r))
			byCgroup, _, err := openIn(t, fd).Guards()
			require.NoError(t, err)
			assert.True(t, byCgroup)
			before := log.countPrefix(ForgedMarkLogPrefix)

			for _, dir := range []string{own, child} {
				cg.moveTo(dir)
				for _, a := range []netip.Addr{peerA4, peerA6} {
					assert.NoError(t, dialIn(t, fd, "tcp", peerAddr(a), mark), "marked socket of %s to %v", dir, a)
					assert.ErrorIs(t, dialIn(t, fd, "tcp", peerAddr(a), 0), syscall.ECONNREFUSED,
						"the cgroup alone is not enough: unmarked sockets are filtered")
				}
			}
			cg.moveTo(other)
			for _, a := range []netip.Addr{peerA4, peerA6} {
				err := dialIn(t, fd, "tcp", peerAddr(a), mark)
				assert.True(t, isTimeout(err), "forged mark to %v: want a drop (timeout), got %v", a, err)
				err = dialIn(t, fd, "udp", peerAddr(a), mark)
				assert.ErrorIs(t, err, syscall.EPERM, "forged mark, UDP to %v", a)
			}
			require.Eventually(t, func() bool { return log.countPrefix(ForgedMarkLogPrefix)-before >= 4 },
				2*time.Second, 10*time.Millisecond, "forged marks logged")
			cg.moveTo(own)
		})
	}
}

// TestTrafficRawFrames sends UDP frames through packet sockets, with and
// without qdisc bypass: without rules they arrive, with the egress chains
// they are logged and dropped, on a device added later too, while ARP,
// neighbour discovery and the IP stack's traffic still go out.
func TestTrafficRawFrames(t *testing.T) {
	fd, peer := peerNSPair(t)
	ipCmd(t, fd, "link", "add", "p2", "type", "veth", "peer", "name", "p3",
		"netns", fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), peer))
	ipCmd(t, fd, "addr", "add", "198.19.1.1/24", "dev", "p2")
	ipCmd(t, peer, "addr", "add", "198.19.1.2/24", "dev", "p3")
	ipCmd(t, fd, "link", "set", "p2", "up")
	ipCmd(t, peer, "link", "set", "p3", "up")

	got := make(chan string, 64)
	for _, addr := range []string{"198.19.0.2:7001", "[fd01::2]:7001", "198.19.1.2:7001"} {
		var pc net.PacketConn
		var err error
		netnstest.Run(t, peer, func() { pc, err = net.ListenPacket("udp", addr) })
		require.NoError(t, err)
		t.Cleanup(func() { _ = pc.Close() })
		go func() {
			buf := make([]byte, 64)
			for {
				n, _, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				got <- addr + " " + string(buf[:n])
			}
		}()
	}
	mac := func(ns int, dev string) net.HardwareAddr {
		var ifi *net.Interface
		var err error
		netnstest.Run(t, ns, func() { ifi, err = net.InterfaceByName(dev) })
		require.NoError(t, err)
		return ifi.HardwareAddr
	}
	type frame struct {
		dev      string
		src, dst netip.AddrPort
		bypass   bool
	}
	frames := []frame{
		{"p0", netip.MustParseAddrPort("198.19.0.1:5000"), netip.MustParseAddrPort("198.19.0.2:7001"), false},
		{"p0", netip.MustParseAddrPort("198.19.0.1:5000"), netip.MustParseAddrPort("198.19.0.2:7001"), true},
		{"p0", netip.MustParseAddrPort("[fd01::1]:5000"), netip.MustParseAddrPort("[fd01::2]:7001"), false},
		{"p0", netip.MustParseAddrPort("[fd01::1]:5000"), netip.MustParseAddrPort("[fd01::2]:7001"), true},
	}
	later := frame{"p2", netip.MustParseAddrPort("198.19.1.1:5000"), netip.MustParseAddrPort("198.19.1.2:7001"), true}
	send := func(f frame) {
		peerDev := map[string]string{"p0": "p1", "p2": "p3"}[f.dev]
		b := rawframe.UDP(mac(fd, f.dev), mac(peer, peerDev), f.src, f.dst, []byte(fmt.Sprint("bypass=", f.bypass)))
		netnstest.Run(t, fd, func() { _ = rawframe.Send(f.dev, b, f.bypass) })
	}
	expect := func(f frame, arrives bool) {
		t.Helper()
		send(f)
		want := fmt.Sprintf("%s bypass=%v", f.dst, f.bypass)
		select {
		case s := <-got:
			assert.True(t, arrives, "frame %+v arrived: %s", f, s)
			assert.Equal(t, want, s)
		case <-time.After(300 * time.Millisecond):
			assert.False(t, arrives, "frame %+v did not arrive", f)
		}
	}

	// Without rules, every frame arrives: the test can tell.
	for _, f := range append(frames, later) {
		expect(f, true)
	}

	c := openIn(t, fd)
	log := recordLog(t, fd, DefaultNflogGroup)
	r, err := Build(Config{
		Allow4:  []netip.Prefix{netip.PrefixFrom(peerA4, 32)},
		Allow6:  []netip.Prefix{netip.PrefixFrom(peerA6, 128)},
		Devices: []string{"p0"},
	})
	require.NoError(t, err)
	require.NoError(t, c.Apply(r))
	for _, f := range frames {
		expect(f, false)
	}
	raw, err := c.RawFrames()
	require.NoError(t, err)
	assert.Equal(t, map[string]uint64{"p0": uint64(len(frames))}, raw, "every raw frame counted")
	raw, err = c.RawFrames()
	require.NoError(t, err)
	assert.Empty(t, raw, "the counters were reset")
	assert.Zero(t, log.total(), "the IP stack's traffic is not logged here, nor are the frames")

	// ARP and neighbour discovery still work: forget the neighbours and
	// connect to an allowlisted address of each family.
	ipCmd(t, fd, "neigh", "flush", "dev", "p0")
	for _, a := range []netip.Addr{peerA4, peerA6} {
		assert.NoError(t, dialIn(t, fd, "tcp", peerAddr(a), 0), "to %v after a neighbour flush", a)
	}

	// A device that appears later: unguarded until its chain is added.
	expect(later, true)
	require.NoError(t, c.AddEgress("p2"))
	require.NoError(t, c.AddEgress("p2"), "twice is once")
	expect(later, false)
	raw, err = c.RawFrames()
	require.NoError(t, err)
	assert.Equal(t, map[string]uint64{"p2": 1}, raw)
	assert.Len(t, c.Applied().egress, 2)
	byCgroup, egress, err := openIn(t, fd).Guards()
	require.NoError(t, err)
	assert.False(t, byCgroup, "no cgroup: the mark alone")
	assert.ElementsMatch(t, []string{"p0", "p2"}, egress)
	assert.Contains(t, nftRun(t, fd, "list", "table", "netdev", TableName), `device "p2"`)
}

// TestTrafficLocalGuard checks that the local services answer only the
// filter's own sockets and the redirect, while the workload's own
// loopback services stay open to it.
func TestTrafficLocalGuard(t *testing.T) {
	fd := trafficNS(t)
	c := openIn(t, fd)
	log := recordLog(t, fd, DefaultNflogGroup)
	r, err := Build(Config{
		GuardPorts: []uint16{9090},
		GuardAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.11")},
	})
	require.NoError(t, err)
	require.NoError(t, c.Apply(r))

	https := listenIn(t, fd, "tcp4", "127.0.0.1:8443")
	for _, addr := range []string{"127.0.0.1:9090", "[::1]:9090", "198.18.0.1:9090", "127.0.0.11:5353", "127.0.0.1:7777"} {
		ln := listenIn(t, fd, "tcp", addr)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_ = c.Close()
			}
		}()
	}

	for _, addr := range []string{"127.0.0.1:9090", "[::1]:9090", "198.18.0.1:9090", "127.0.0.11:5353", "127.0.0.1:8443"} {
		assert.ErrorIs(t, dialIn(t, fd, "tcp", addr, 0), syscall.ECONNREFUSED, "workload to %s", addr)
		assert.NoError(t, dialIn(t, fd, "tcp", addr, DefaultBypassMark), "filter to %s", addr)
	}
	assert.ErrorIs(t, dialIn(t, fd, "udp", "127.0.0.11:5353", 0), syscall.EPERM, "UDP to a guarded address")
	assert.NoError(t, dialIn(t, fd, "tcp", "127.0.0.1:7777", 0), "the workload's own loopback service")

	// The redirect still reaches the proxy.
	require.NoError(t, dialIn(t, fd, "tcp4", "198.18.0.2:443", 0))
	_ = https.(*net.TCPListener).SetDeadline(time.Now().Add(time.Second))
	conn, err := https.Accept()
	require.NoError(t, err, "redirected connection reaches the proxy port")
	_ = conn.Close()

	require.Eventually(t, func() bool { return log.countPrefix(LocalServiceLogPrefix) >= 6 },
		2*time.Second, 10*time.Millisecond, "knocks on local services logged")

	// Nothing but the filter speaks first from a guarded address: a
	// workload that binds 127.0.0.11 cannot pose as the resolver there.
	got := recordUDPIn(t, fd, "127.0.0.1:7778")
	from := func(mark uint32, payload string) {
		netnstest.Run(t, fd, func() {
			d := net.Dialer{LocalAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 11), Port: 5454}}
			if mark != 0 {
				d.Control = func(_, _ string, rc syscall.RawConn) error {
					var serr error
					err := rc.Control(func(s uintptr) { serr = unix.SetsockoptInt(int(s), unix.SOL_SOCKET, unix.SO_MARK, int(mark)) })
					return errors.Join(err, serr)
				}
			}
			c, err := d.Dial("udp", "127.0.0.1:7778")
			require.NoError(t, err)
			_, _ = c.Write([]byte(payload))
			_ = c.Close()
		})
	}
	before := log.countPrefix(LocalServiceLogPrefix)
	from(0, "posing")
	assert.False(t, arrived(got, "posing"), "the workload spoke first from 127.0.0.11")
	require.Eventually(t, func() bool { return log.countPrefix(LocalServiceLogPrefix) > before },
		2*time.Second, 10*time.Millisecond, "logged")
	from(DefaultBypassMark, "filter")
	assert.True(t, arrived(got, "filter"), "the filter's own socket on 127.0.0.11")
}

// TestTrafficUserNeighbourDiscovery: neighbour discovery messages that a
// user's raw ICMPv6 socket sends (CAP_NET_RAW is enough) to an address
// that is not allowlisted do not leave, while the kernel's own neighbour
// discovery still works.
func TestTrafficUserNeighbourDiscovery(t *testing.T) {
	fd, peer := peerNSPair(t)
	// A raw ICMPv6 socket in the peer sees every ICMPv6 message that
	// reaches it.
	var rfd int
	var err error
	netnstest.Run(t, peer, func() { rfd, err = syscall.Socket(syscall.AF_INET6, syscall.SOCK_RAW, syscall.IPPROTO_ICMPV6) })
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Close(rfd) })
	require.NoError(t, syscall.SetsockoptTimeval(rfd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &syscall.Timeval{Usec: 300000}))
	const marker = "g0e-nd-payload"
	received := func() bool {
		buf := make([]byte, 1500)
		for {
			n, _, err := syscall.Recvfrom(rfd, buf, 0)
			if err != nil {
				return false
			}
			if strings.Contains(string(buf[:n]), marker) {
				return true
			}
		}
	}
	// A neighbour solicitation (type 135) with data after its target, sent
	// to peerB6 (on the link, not allowlisted) with the hop limit ND uses.
	send := func() {
		msg := append([]byte{135, 0, 0, 0, 0, 0, 0, 0}, peerB6.AsSlice()...)
		msg = append(msg, marker...)
		netnstest.Run(t, fd, func() {
			s, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_RAW, syscall.IPPROTO_ICMPV6)
			require.NoError(t, err)
			defer syscall.Close(s)
			require.NoError(t, syscall.SetsockoptInt(s, syscall.IPPROTO_IPV6, syscall.IPV6_MULTICAST_HOPS, 255))
			require.NoError(t, syscall.SetsockoptInt(s, syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS, 255))
			_ = syscall.Sendto(s, msg, 0, &syscall.SockaddrInet6{Addr: peerB6.As16()})
		})
	}
	send()
	require.True(t, received(), "without rules the message arrives: the test can tell")

	c := openIn(t, fd)
	log := recordLog(t, fd, DefaultNflogGroup)
	r, err := Build(Config{Allow6: []netip.Prefix{netip.PrefixFrom(peerA6, 128)}})
	require.NoError(t, err)
	require.NoError(t, c.Apply(r))
	send()
	assert.False(t, received(), "a user's neighbour solicitation left")
	log.waitCount(t, DefaultLogPrefix, peerB6, 1)

	ipCmd(t, fd, "neigh", "flush", "dev", "p0")
	assert.NoError(t, dialIn(t, fd, "tcp", peerAddr(peerA6), 0), "the kernel's neighbour discovery still works")
}

// recordUDPIn listens on addr in the namespace fd and returns a channel
// of the payloads that arrive. It answers each with "ack", so that
// conntrack sees the conversation go both ways (established).
func recordUDPIn(t *testing.T, fd int, addr string) <-chan string {
	t.Helper()
	var pc net.PacketConn
	var err error
	netnstest.Run(t, fd, func() { pc, err = net.ListenPacket("udp", addr) })
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	got := make(chan string, 16)
	go func() {
		buf := make([]byte, 256)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
			_, _ = pc.WriteTo([]byte("ack"), from)
		}
	}()
	return got
}

// arrived reports whether payload arrives on got within 300ms.
func arrived(got <-chan string, payload string) bool {
	timeout := time.After(300 * time.Millisecond)
	for {
		select {
		case s := <-got:
			if s == payload {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// sendFrom sends payload from a UDP socket bound to src.
func sendFrom(src, dst netip.AddrPort, payload []byte) error {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(src))
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.WriteToUDPAddrPort(payload, dst)
	return err
}

// TestTrafficReflection checks the ways a workload with CAP_NET_RAW
// could make conntrack believe that a host outside had written to it
// first, so that its "reply" to that host would pass as established: a
// packet with a forged source from a raw socket or a transparent one, and
// a frame written to loopback through a packet socket. Each is logged
// and dropped, and the reply does not leave.
func TestTrafficReflection(t *testing.T) {
	fd, peer := peerNSPair(t)
	c := openIn(t, fd)
	log := recordLog(t, fd, DefaultNflogGroup)
	r, err := Build(Config{Mode: ModeDNS, Allow4: []netip.Prefix{netip.PrefixFrom(peerA4, 32)}})
	require.NoError(t, err)
	require.NoError(t, c.Apply(r))
	zeroMAC := net.HardwareAddr{0, 0, 0, 0, 0, 0}

	for _, fam := range []struct {
		box, remote netip.Addr
	}{{netip.MustParseAddr("198.19.0.1"), peerB4}, {netip.MustParseAddr("fd01::1"), peerB6}} {
		for i, how := range []string{"raw", "transparent", "loopback"} {
			t.Run(fmt.Sprint(fam.remote, "/", how), func(t *testing.T) {
				remote := netip.AddrPortFrom(fam.remote, uint16(7100+i))
				local := netip.AddrPortFrom(fam.box, uint16(5100+i))
				got := recordUDPIn(t, peer, remote.String())
				hello := rawframe.UDP(zeroMAC, zeroMAC, remote, local, []byte("knock"))
				prefix := SpoofedSourceLogPrefix
				before := log.countPrefix(prefix)
				netnstest.Run(t, fd, func() {
					switch how {
					case "raw":
						err = rawframe.SendIP(hello, local.Addr())
					case "transparent":
						err = rawframe.SendTransparent(remote, local, []byte("knock"))
					case "loopback":
						prefix = InjectedLogPrefix
						before = log.countPrefix(prefix)
						err = rawframe.Send("lo", hello, false)
					}
				})
				if err != nil {
					require.ErrorIs(t, err, syscall.EPERM, "the forged packet is refused or dropped")
				}
				var sendErr error
				netnstest.Run(t, fd, func() { sendErr = sendFrom(local, remote, []byte("reflected")) })
				assert.False(t, arrived(got, "reflected"), "the reply to the forged packet left (send: %v)", sendErr)
				require.Eventually(t, func() bool { return log.countPrefix(prefix) > before },
					2*time.Second, 10*time.Millisecond, "%q logged", prefix)
			})
		}
	}
	// Loopback still works, both families.
	for _, addr := range []string{"127.0.0.1:7300", "[::1]:7300"} {
		got := recordUDPIn(t, fd, addr)
		var err error
		netnstest.Run(t, fd, func() { err = sendFrom(netip.AddrPort{}, netip.MustParseAddrPort(addr), []byte("lo")) })
		require.NoError(t, err)
		assert.True(t, arrived(got, "lo"), "loopback to %s", addr)
	}
}

// TestTrafficForgedConn: once the filter has a connection of its own, a
// packet that a raw socket in another cgroup writes with that
// connection's addresses and ports does not leave, while the filter's own
// packets still do.
func TestTrafficForgedConn(t *testing.T) {
	fd, peer := peerNSPair(t)
	cg := newTestCgroups(t)
	own, ownID := cg.make("filter")
	other, _ := cg.make("workload")
	c := openIn(t, fd)
	log := recordLog(t, fd, DefaultNflogGroup)
	const mark = 0x5eed0002
	r, err := Build(Config{BypassMark: mark, OwnCgroup: ownID})
	require.NoError(t, err)
	require.NoError(t, c.Apply(r))

	for i, fam := range []struct{ box, remote netip.Addr }{
		{netip.MustParseAddr("198.19.0.1"), peerB4}, {netip.MustParseAddr("fd01::1"), peerB6},
	} {
		remote := netip.AddrPortFrom(fam.remote, uint16(7200+i))
		local := netip.AddrPortFrom(fam.box, uint16(5200+i))
		got := recordUDPIn(t, peer, remote.String())

		cg.moveTo(own)
		var fc *net.UDPConn
		netnstest.Run(t, fd, func() {
			lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
				var serr error
				err := rc.Control(func(s uintptr) { serr = unix.SetsockoptInt(int(s), unix.SOL_SOCKET, unix.SO_MARK, mark) })
				return errors.Join(err, serr)
			}}
			var pc net.PacketConn
			pc, err = lc.ListenPacket(t.Context(), "udp", local.String())
			if err == nil {
				fc = pc.(*net.UDPConn)
			}
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = fc.Close() })
		_, err = fc.WriteToUDPAddrPort([]byte("own 1"), remote)
		require.NoError(t, err)
		require.True(t, arrived(got, "own 1"), "the filter's own packet to %v", remote)

		cg.moveTo(other)
		before := log.countPrefix(ForgedConnLogPrefix)
		zeroMAC := net.HardwareAddr{0, 0, 0, 0, 0, 0}
		netnstest.Run(t, fd, func() {
			err = rawframe.SendIP(rawframe.UDP(zeroMAC, zeroMAC, local, remote, []byte("forged")), remote.Addr())
		})
		if err != nil {
			require.ErrorIs(t, err, syscall.EPERM)
		}
		assert.False(t, arrived(got, "forged"), "a raw socket wrote into the filter's connection to %v", remote)
		require.Eventually(t, func() bool { return log.countPrefix(ForgedConnLogPrefix) > before },
			2*time.Second, 10*time.Millisecond, "forged connection logged")

		_, err = fc.WriteToUDPAddrPort([]byte("own 2"), remote)
		require.NoError(t, err)
		assert.True(t, arrived(got, "own 2"), "the filter's own later packet to %v", remote)
		cg.moveTo(own)
	}
}

// TestTrafficDenylist: a denied address inside an allowed prefix is
// refused and logged, IPv4 and IPv6, while its neighbours stay open, in
// https mode (where it is not redirected to a proxy either) and in dns
// mode (where pinning it does not open it); UpdateLists changes both
// lists in one batch.
func TestTrafficDenylist(t *testing.T) {
	fd := peerNS(t)
	c := openIn(t, fd)
	log := recordLog(t, fd, DefaultNflogGroup)
	lists := Lists{
		Allow4: []netip.Prefix{netip.MustParsePrefix("198.19.0.0/24")},
		Allow6: []netip.Prefix{netip.MustParsePrefix("fd01::/64")},
		Deny4:  []netip.Prefix{netip.PrefixFrom(peerA4, 32)},
		Deny6:  []netip.Prefix{netip.PrefixFrom(peerA6, 128)},
	}
	for _, mode := range []Mode{ModeHTTPS, ModeDNS} {
		r, err := Build(Config{Mode: mode, Allow4: lists.Allow4, Allow6: lists.Allow6, Deny4: lists.Deny4, Deny6: lists.Deny6})
		require.NoError(t, err)
		require.NoError(t, c.Apply(r))
		if mode == ModeDNS {
			require.NoError(t, c.Pin([]Pin{{Addr: peerA4, Timeout: time.Minute}, {Addr: peerA6, Timeout: time.Minute}}))
		}
		before := log.countPrefix(DeniedLogPrefix)
		for _, a := range []netip.Addr{peerA4, peerA6} {
			assert.ErrorIs(t, dialIn(t, fd, "tcp", peerAddr(a), 0), syscall.ECONNREFUSED, "%v: denied", a)
		}
		// Port 443 to a denied address is refused, not redirected.
		assert.ErrorIs(t, dialIn(t, fd, "tcp4", netip.AddrPortFrom(peerA4, 443).String(), 0), syscall.ECONNREFUSED)
		for _, a := range []netip.Addr{peerB4, peerB6} {
			assert.NoError(t, dialIn(t, fd, "tcp", peerAddr(a), 0), "%v: allowed beside the denied one", a)
		}
		require.Eventually(t, func() bool { return log.countPrefix(DeniedLogPrefix) >= before+3 },
			2*time.Second, 10*time.Millisecond, "denied connections logged")
	}

	// One batch lifts the denial and narrows the allowlist.
	require.NoError(t, c.UpdateLists(Lists{Allow4: []netip.Prefix{netip.PrefixFrom(peerA4, 32)}}))
	assert.NoError(t, dialIn(t, fd, "tcp", peerAddr(peerA4), 0))
	assert.ErrorIs(t, dialIn(t, fd, "tcp", peerAddr(peerB4), 0), syscall.ECONNREFUSED)
	assert.Empty(t, c.Applied().set(setDeny4).Elements)
	assert.NotContains(t, nftListSet(t, fd, setDeny4), "elements")
	assert.Contains(t, nftListSet(t, fd, SetAllow4), "elements = { 198.19.0.2 }")
}
