package nftrules

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/g0lab/g0efilter/internal/netnstest"
)

// ipCmd runs "ip args..." in the namespace fd; iproute2 is needed to give
// the namespace interfaces (missing, it fails under CI=true).
func ipCmd(t *testing.T, fd int, args ...string) {
	t.Helper()
	path, err := exec.LookPath("ip")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ip (iproute2) not installed: needed under CI=true")
		}
		t.Skip("ip (iproute2) not installed")
	}
	var out bytes.Buffer
	netnstest.Run(t, fd, func() {
		cmd := exec.Command(path, args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		err = cmd.Run()
	})
	require.NoError(t, err, "ip %v: %s", args, out.String())
}

// trafficNS returns a namespace with a veth pair whose one end has
// 198.18.0.1/16 and fd00::1/64 and whose other end has no address: a
// packet that passes the rules finds no neighbour there, so a connection
// times out, while one that the rules reject fails at once.
func trafficNS(t *testing.T) int {
	fd := netnstest.New(t)
	ipCmd(t, fd, "link", "set", "lo", "up")
	ipCmd(t, fd, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
	ipCmd(t, fd, "addr", "add", "198.18.0.1/16", "dev", "v0")
	ipCmd(t, fd, "addr", "add", "fd00::1/64", "dev", "v0", "nodad")
	ipCmd(t, fd, "link", "set", "v0", "up")
	ipCmd(t, fd, "link", "set", "v1", "up")
	return fd
}

func listenIn(t *testing.T, fd int, network, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	var err error
	netnstest.Run(t, fd, func() { ln, err = net.Listen(network, addr) })
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// dialIn connects from the namespace fd, with the socket mark mark if
// non-zero, and returns the error (nil on success).
func dialIn(t *testing.T, fd int, network, addr string, mark uint32) error {
	t.Helper()
	var err error
	netnstest.Run(t, fd, func() {
		d := net.Dialer{Timeout: 300 * time.Millisecond}
		if mark != 0 {
			d.Control = func(_, _ string, c syscall.RawConn) error {
				var serr error
				if err := c.Control(func(s uintptr) {
					serr = unix.SetsockoptInt(int(s), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
				}); err != nil {
					return err
				}
				return serr
			}
		}
		var c net.Conn
		c, err = d.DialContext(context.Background(), network, addr)
		if err == nil {
			_, err = c.Write([]byte("x"))
			_ = c.Close()
		}
	})
	return err
}

// accepted reports whether ln accepts a connection within 200ms: one that
// the rules redirected to it.
func accepted(ln net.Listener) bool {
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(200 * time.Millisecond))
	conn, err := ln.Accept()
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestTrafficHTTPS checks the https mode ruleset against real sockets.
func TestTrafficHTTPS(t *testing.T) {
	fd := trafficNS(t)
	c := openIn(t, fd)
	r, err := Build(Config{
		Allow4: []netip.Prefix{netip.MustParsePrefix("198.18.1.0/24")},
		Allow6: []netip.Prefix{netip.MustParsePrefix("fd00::100/120")},
	})
	require.NoError(t, err)
	require.NoError(t, c.Apply(r))

	http4 := listenIn(t, fd, "tcp4", "127.0.0.1:8080")
	https6 := listenIn(t, fd, "tcp6", "[::1]:8443")

	// Port 80 and 443 to other addresses reach the local proxies.
	require.NoError(t, dialIn(t, fd, "tcp4", "198.18.0.2:80", 0))
	assert.True(t, accepted(http4), "v4 port 80 redirected to 8080")
	require.NoError(t, dialIn(t, fd, "tcp6", "[fd00::2]:443", 0))
	assert.True(t, accepted(https6), "v6 port 443 redirected to 8443")

	// Other ports are rejected at once.
	err = dialIn(t, fd, "tcp4", "198.18.0.2:22", 0)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	// IPv6 TCP too: a TCP reset answers it at once.
	err = dialIn(t, fd, "tcp6", "[fd00::2]:22", 0)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	err = dialIn(t, fd, "udp6", "[fd00::2]:22", 0)
	assert.ErrorIs(t, err, syscall.EPERM, "UDP to a non-allowlisted v6 address")

	// QUIC is not a way around the proxies.
	err = dialIn(t, fd, "udp4", "198.18.0.2:443", 0)
	assert.ErrorIs(t, err, syscall.EPERM, "UDP 443 blocked")
	err = dialIn(t, fd, "udp6", "[fd00::2]:443", 0)
	assert.ErrorIs(t, err, syscall.EPERM, "UDP 443 blocked (v6)")

	// Allowlisted destinations pass on any port and are not redirected:
	// the packets go out to the dummy interface, so the dial times out.
	for _, addr := range []string{"198.18.1.7:22", "198.18.1.7:80", "[fd00::107]:443"} {
		err = dialIn(t, fd, "tcp", addr, 0)
		assert.True(t, isTimeout(err), "%s: want a timeout, got %v", addr, err)
	}
	assert.NoError(t, dialIn(t, fd, "udp4", "198.18.1.7:443", 0))
	assert.False(t, accepted(http4), "allowlisted port 80 must not be redirected")

	// The filter's own sockets (bypass mark) are neither redirected nor
	// blocked.
	err = dialIn(t, fd, "tcp4", "198.18.0.2:80", DefaultBypassMark)
	assert.True(t, isTimeout(err), "marked socket: want a timeout, got %v", err)
	assert.False(t, accepted(http4), "marked socket must not be redirected")

	// A reload that allowlists 198.18.0.0/24 takes effect.
	require.NoError(t, c.UpdateSets([]netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}, nil))
	err = dialIn(t, fd, "tcp4", "198.18.0.2:22", 0)
	assert.True(t, isTimeout(err), "after reload: want a timeout, got %v", err)
	err = dialIn(t, fd, "tcp4", "198.18.1.7:22", 0)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED, "removed from the allowlist")
}

// TestTrafficDNS checks the dns mode ruleset against real sockets.
func TestTrafficDNS(t *testing.T) {
	fd := trafficNS(t)
	c := openIn(t, fd)
	r, err := Build(Config{Mode: ModeDNS, DNSPort: 5353,
		Allow4: []netip.Prefix{netip.MustParsePrefix("198.18.1.0/24")}})
	require.NoError(t, err)
	require.NoError(t, c.Apply(r))

	var pc net.PacketConn
	netnstest.Run(t, fd, func() { pc, err = net.ListenPacket("udp4", "127.0.0.1:5353") })
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })

	// A query to any resolver, loopback ones included, reaches the local
	// DNS server.
	for _, addr := range []string{"198.18.0.53:53", "127.0.0.11:53", "198.18.1.7:53"} {
		require.NoError(t, dialIn(t, fd, "udp4", addr, 0), addr)
		_ = pc.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 16)
		n, _, err := pc.ReadFrom(buf)
		require.NoError(t, err, "query to %s redirected to :5353", addr)
		assert.Equal(t, "x", string(buf[:n]))
	}
	ln := listenIn(t, fd, "tcp4", "127.0.0.1:5353")
	require.NoError(t, dialIn(t, fd, "tcp4", "198.18.0.53:53", 0))
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(time.Second))
	conn, err := ln.Accept()
	require.NoError(t, err, "TCP 53 redirected")
	_ = conn.Close()

	// DoT is blocked, even to an allowlisted address; other traffic needs
	// the allowlist (or, later, a pinned address).
	assert.ErrorIs(t, dialIn(t, fd, "udp4", "198.18.1.7:853", 0), syscall.EPERM)
	assert.Error(t, dialIn(t, fd, "tcp4", "198.18.1.7:853", 0))
	assert.ErrorIs(t, dialIn(t, fd, "udp4", "198.18.0.2:443", 0), syscall.EPERM)
	assert.ErrorIs(t, dialIn(t, fd, "tcp4", "198.18.0.2:443", 0), syscall.ECONNREFUSED)
	assert.ErrorIs(t, dialIn(t, fd, "tcp6", "[fd00::2]:22", 0), syscall.ECONNREFUSED)
	assert.NoError(t, dialIn(t, fd, "udp4", "198.18.1.7:443", 0))
	// The DNS server's own upstream queries bypass the redirect.
	assert.NoError(t, dialIn(t, fd, "udp4", "198.18.0.53:53", DefaultBypassMark))
	_ = pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, _, err = pc.ReadFrom(make([]byte, 16))
	assert.True(t, isTimeout(err), "a marked query must not be redirected")
}

// TestTrafficPorts checks the service sets (address entries with
// protocols and ports), the pins of a name's ports and the extra proxied
// ports against real sockets.
func TestTrafficPorts(t *testing.T) {
	fd := trafficNS(t)
	c := openIn(t, fd)
	svc := func(p Proto, prefix string, first, last uint16) Service {
		return Service{p, netip.MustParsePrefix(prefix), PortRange{first, last}}
	}
	r, err := Build(Config{
		AllowPorts: []Service{
			svc(TCP, "198.18.1.0/24", 5432, 5432),
			svc(UDP, "198.18.1.9/32", 53, 53),
			svc(TCP, "fd00::107/128", 8000, 8099),
			svc(UDP, "fd00::100/120", 1, 65535),
		},
		TLSPorts:  []PortRange{{9443, 9443}},
		HTTPPorts: []PortRange{{8081, 8082}},
	})
	require.NoError(t, err)
	require.NoError(t, c.Apply(r))
	allowed := func(network, addr string) {
		t.Helper()
		err := dialIn(t, fd, network, addr, 0)
		if network[:3] == "udp" {
			assert.NoError(t, err, "%s %s allowed", network, addr)
			return
		}
		assert.True(t, isTimeout(err), "%s %s allowed: want a timeout, got %v", network, addr, err)
	}
	refused := func(network, addr string) {
		t.Helper()
		err := dialIn(t, fd, network, addr, 0)
		if network[:3] == "udp" {
			assert.ErrorIs(t, err, syscall.EPERM, "%s %s refused", network, addr)
			return
		}
		assert.ErrorIs(t, err, syscall.ECONNREFUSED, "%s %s refused", network, addr)
	}

	allowed("tcp4", "198.18.1.7:5432")
	refused("tcp4", "198.18.1.7:5433")
	refused("udp4", "198.18.1.7:5432")
	allowed("udp4", "198.18.1.9:53")
	refused("tcp4", "198.18.1.9:53")
	refused("udp4", "198.18.1.10:53")
	allowed("tcp6", "[fd00::107]:8000")
	allowed("tcp6", "[fd00::107]:8099")
	refused("tcp6", "[fd00::107]:8100")
	refused("tcp6", "[fd00::108]:8050")
	allowed("udp6", "[fd00::1ff]:1")
	refused("udp6", "[fd00::200]:1")

	// The extra proxied ports reach the local proxies.
	http4 := listenIn(t, fd, "tcp4", "127.0.0.1:8080")
	https4 := listenIn(t, fd, "tcp4", "127.0.0.1:8443")
	require.NoError(t, dialIn(t, fd, "tcp4", "198.18.0.2:9443", 0))
	assert.True(t, accepted(https4), "port 9443 redirected to the TLS proxy")
	require.NoError(t, dialIn(t, fd, "tcp4", "198.18.0.2:8082", 0))
	assert.True(t, accepted(http4), "port 8082 redirected to the HTTP proxy")
	refused("tcp4", "198.18.0.2:9444")
	// An allowed service on a proxied port is not redirected.
	allowed("tcp4", "198.18.1.7:5432")

	// A name's pins open one protocol and port of an address.
	require.NoError(t, c.Pin([]Pin{
		{Addr: netip.MustParseAddr("198.18.0.77"), Proto: TCP, Port: 22, Timeout: time.Minute},
		{Addr: netip.MustParseAddr("fd00::77"), Proto: UDP, Port: 5060, Timeout: time.Minute},
	}))
	allowed("tcp4", "198.18.0.77:22")
	refused("tcp4", "198.18.0.77:23")
	refused("udp4", "198.18.0.77:22")
	allowed("udp6", "[fd00::77]:5060")
	refused("tcp6", "[fd00::77]:5060")
	// Pinning again within the pin's time sends nothing and fails nothing.
	require.NoError(t, c.Pin([]Pin{{Addr: netip.MustParseAddr("198.18.0.77"), Proto: TCP, Port: 22, Timeout: time.Minute}}))
	// In https mode there is no pin on every port.
	assert.ErrorIs(t, c.Pin([]Pin{{Addr: netip.MustParseAddr("198.18.0.78"), Timeout: time.Minute}}), ErrNoPinnedSets)

	// A reload replaces the services and the proxied ports atomically,
	// the pins stay.
	require.NoError(t, c.UpdateLists(Lists{
		AllowPorts: []Service{svc(TCP, "198.18.1.0/24", 5433, 5433)},
		TLSPorts:   []PortRange{{9444, 9444}, {10000, 65535}},
	}))
	require.NoError(t, dialIn(t, fd, "tcp4", "198.18.0.2:9444", 0))
	assert.True(t, accepted(https4), "port 9444 redirected to the TLS proxy after the reload")
	require.NoError(t, dialIn(t, fd, "tcp4", "198.18.0.2:65535", 0))
	assert.True(t, accepted(https4), "port 65535 redirected to the TLS proxy after the reload")
	refused("tcp4", "198.18.0.2:9443")
	refused("tcp4", "198.18.0.2:8082")
	refused("tcp4", "198.18.1.7:5432")
	allowed("tcp4", "198.18.1.7:5433")
	refused("udp4", "198.18.1.9:53")
	allowed("tcp4", "198.18.0.77:22")
	got := c.Applied().set(setAllowPorts4).Services
	assert.Equal(t, []Service{svc(TCP, "198.18.1.0/24", 5433, 5433)}, got)

	// The kernel lists what the rendering shows.
	listed := nftList(t, fd)
	assert.Contains(t, listed, "tcp . 198.18.1.0/24 . 5433")
	assert.Contains(t, listed, "elements = { 9444, 10000-65535 }")
}

// TestTrafficPortsDNS checks a name's pins next to an address's in dns
// mode.
func TestTrafficPortsDNS(t *testing.T) {
	fd := trafficNS(t)
	c := openIn(t, fd)
	r, err := Build(Config{Mode: ModeDNS, DNSPort: 5353})
	require.NoError(t, err)
	require.NoError(t, c.Apply(r))
	require.NoError(t, c.Pin([]Pin{
		{Addr: netip.MustParseAddr("198.18.0.77"), Proto: TCP, Port: 22, Timeout: time.Minute},
		{Addr: netip.MustParseAddr("198.18.0.78"), Timeout: time.Minute},
	}))
	err = dialIn(t, fd, "tcp4", "198.18.0.77:22", 0)
	assert.True(t, isTimeout(err), "pinned port: want a timeout, got %v", err)
	assert.ErrorIs(t, dialIn(t, fd, "tcp4", "198.18.0.77:443", 0), syscall.ECONNREFUSED)
	err = dialIn(t, fd, "tcp4", "198.18.0.78:443", 0)
	assert.True(t, isTimeout(err), "pinned address: want a timeout, got %v", err)

	r, err = Build(Config{Mode: ModeDNS, DNSOnly: true})
	require.NoError(t, err)
	require.NoError(t, c.Apply(r))
	assert.ErrorIs(t, c.Pin([]Pin{{Addr: netip.MustParseAddr("198.18.0.77"), Proto: TCP, Port: 22, Timeout: time.Minute}}), ErrNoPinnedSets)
}
