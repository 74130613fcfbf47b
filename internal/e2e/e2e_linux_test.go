//go:build linux

package e2e_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/internal/e2e"
)

func TestMain(m *testing.M) { os.Exit(e2e.Main(m)) }

const (
	echoPort    = 7000
	dialTimeout = 2 * time.Second
	ioTimeout   = 2 * time.Second
)

// family is one address family's view of the topology: an allowlisted and
// a non-allowlisted address on the upstream peer, and the loopback address
// the proxies listen on.
type family struct {
	name     string
	tcp, udp string
	allowed  netip.Addr
	blocked  netip.Addr
	loopback netip.Addr
}

var families = []family{
	{"IPv4", "tcp4", "udp4", e2e.Upstream4[1], e2e.Upstream4[2], netip.MustParseAddr("127.0.0.1")},
	{"IPv6", "tcp6", "udp6", e2e.Upstream6[1], e2e.Upstream6[2], netip.IPv6Loopback()},
}

// policy returns a policy file allowlisting addrs.
func policy(addrs ...netip.Addr) string {
	var b strings.Builder
	b.WriteString("allowlist:\n  ips:\n")
	for _, a := range addrs {
		fmt.Fprintf(&b, "    - %q\n", a.String())
	}
	return b.String()
}

// allowBoth allowlists the allowed address of both families.
var allowBoth = policy(families[0].allowed, families[1].allowed)

func hostPort(a netip.Addr, port uint16) string {
	return netip.AddrPortFrom(a, port).String()
}

// eachFamily runs test once per address family, each in a fresh Env.
func eachFamily(t *testing.T, test func(t *testing.T, env *e2e.Env, fam family)) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			test(t, e2e.New(t), fam)
		})
	}
}

// echoes checks that c round-trips bytes through the echo server.
func echoes(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	got, err := e2e.RoundTrip(c, []byte(msg), ioTimeout)
	require.NoError(t, err, "echo over %s -> %s", c.LocalAddr(), c.RemoteAddr())
	assert.Equal(t, msg, string(got))
}

func TestAllowlistedReachableOnAnyPort(t *testing.T) {
	eachFamily(t, func(t *testing.T, env *e2e.Env, fam family) {
		env.Echo("tcp", fmt.Sprintf(":%d", echoPort))
		env.StartFilter(t, allowBoth, nil)

		c, err := env.Dial(fam.tcp, hostPort(fam.allowed, echoPort), dialTimeout)
		require.NoError(t, err)
		echoes(t, c, "allowlisted")
	})
}

func TestNonAllowlistedRefused(t *testing.T) {
	eachFamily(t, func(t *testing.T, env *e2e.Env, fam family) {
		env.Echo("tcp", fmt.Sprintf(":%d", echoPort))
		target := hostPort(fam.blocked, echoPort)

		// Without the filter the echo server answers there: a refusal
		// later is the filter's doing.
		c, err := env.Dial(fam.tcp, target, dialTimeout)
		require.NoError(t, err, "the test bed itself must reach %s", target)
		echoes(t, c, "before")

		env.StartFilter(t, allowBoth, nil)
		start := time.Now()
		_, err = env.Dial(fam.tcp, target, dialTimeout)
		require.ErrorIs(t, err, syscall.ECONNREFUSED, "a TCP reset must refuse %s", target)
		assert.Less(t, time.Since(start), dialTimeout/2, "refused at once, not timed out")
	})
}

func TestUDP443Blocked(t *testing.T) {
	eachFamily(t, func(t *testing.T, env *e2e.Env, fam family) {
		env.StartFilter(t, allowBoth, nil)

		c, err := env.Dial(fam.udp, hostPort(fam.blocked, 443), dialTimeout)
		require.NoError(t, err, "a UDP connect sends nothing")
		_, err = c.Write([]byte("quic"))
		assert.ErrorIs(t, err, syscall.EPERM, "UDP 443 (QUIC) to a non-allowlisted address")

		// The allowlist opens UDP too.
		c, err = env.Dial(fam.udp, hostPort(fam.allowed, 443), dialTimeout)
		require.NoError(t, err)
		_, err = c.Write([]byte("quic"))
		assert.NoError(t, err, "UDP 443 to an allowlisted address")
	})
}

func TestRedirectToLocalProxyPorts(t *testing.T) {
	eachFamily(t, func(t *testing.T, env *e2e.Env, fam family) {
		// Echo servers on the real ports upstream: a connection that is not
		// redirected lands there and gets its bytes back.
		env.Echo("tcp", ":80")
		env.Echo("tcp", ":443")
		f := env.StartFilter(t, allowBoth, nil)
		f.WaitForOutput("proxies listening")

		for _, port := range []uint16{80, 443} {
			c, err := env.Dial(fam.tcp, hostPort(fam.blocked, port), dialTimeout)
			require.NoError(t, err, "port %d", port)
			_, err = c.Write([]byte("neither TLS nor HTTP\r\n\r\n"))
			require.NoError(t, err)
			require.NoError(t, c.SetReadDeadline(time.Now().Add(ioTimeout)))
			n, err := c.Read(make([]byte, 64))
			assert.Zero(t, n, "port %d: the echo server answered, so the connection was not redirected", port)
			var ne net.Error
			assert.False(t, errors.As(err, &ne) && ne.Timeout(), "port %d: the proxy must close the connection", port)
			_ = c.Close()
		}

		// Without the proxies, the redirected ports are closed: fail closed.
		f.Kill()
		for _, port := range []uint16{80, 443} {
			_, err := env.Dial(fam.tcp, hostPort(fam.blocked, port), dialTimeout)
			assert.ErrorIs(t, err, syscall.ECONNREFUSED, "port %d", port)
		}
	})
}

func TestPolicyChangeKeepsEstablished(t *testing.T) {
	eachFamily(t, func(t *testing.T, env *e2e.Env, fam family) {
		env.Echo("tcp", fmt.Sprintf(":%d", echoPort))
		f := env.StartFilter(t, policy(fam.allowed), nil)
		f.WaitForSet(fam.allowed.String())

		long, err := env.Dial(fam.tcp, hostPort(fam.allowed, echoPort), dialTimeout)
		require.NoError(t, err)
		echoes(t, long, "before the change")

		f.SetPolicy(policy(fam.blocked))
		f.WaitForSet(fam.blocked.String())
		set := "allow4"
		if fam.allowed.Is6() {
			set = "allow6"
		}
		elems, err := f.SetElements(set)
		require.NoError(t, err)
		assert.NotContains(t, elems, fam.allowed.String(), "removed from the kernel set")

		// The established connection survives the reload ...
		echoes(t, long, "after the change")
		// ... while a new one to the removed address is refused ...
		_, err = env.Dial(fam.tcp, hostPort(fam.allowed, echoPort), dialTimeout)
		assert.ErrorIs(t, err, syscall.ECONNREFUSED)
		// ... and the added address opens.
		c, err := env.Dial(fam.tcp, hostPort(fam.blocked, echoPort), dialTimeout)
		require.NoError(t, err)
		echoes(t, c, "newly allowed")
		echoes(t, long, "still open")

		assert.Equal(t, 0, f.Stop(), "SIGTERM: clean exit")
	})
}

func TestKillLeavesRulesInPlace(t *testing.T) {
	eachFamily(t, func(t *testing.T, env *e2e.Env, fam family) {
		env.Echo("tcp", fmt.Sprintf(":%d", echoPort))
		f := env.StartFilter(t, allowBoth, nil)
		before, err := f.Listing()
		require.NoError(t, err)

		f.Kill()
		after, err := f.Listing()
		require.NoError(t, err, "the table must outlive the process (fail closed)")
		assert.Equal(t, before, after)

		_, err = env.Dial(fam.tcp, hostPort(fam.blocked, echoPort), dialTimeout)
		assert.ErrorIs(t, err, syscall.ECONNREFUSED, "non-allowlisted stays blocked")
		c, err := env.Dial(fam.udp, hostPort(fam.blocked, 443), dialTimeout)
		require.NoError(t, err)
		_, err = c.Write([]byte("quic"))
		assert.ErrorIs(t, err, syscall.EPERM, "UDP 443 stays blocked")
		c, err = env.Dial(fam.tcp, hostPort(fam.allowed, echoPort), dialTimeout)
		require.NoError(t, err, "allowlisted stays open")
		echoes(t, c, "after kill")
	})
}

// TestServicePortsClosedToNeighbours checks that a neighbour on the
// container network cannot use the local proxy ports as an open proxy: the
// proxies listen on loopback only, and the input chain drops what reaches
// the ports from outside, so a neighbour's connection times out instead of
// being refused.
func TestServicePortsClosedToNeighbours(t *testing.T) {
	eachFamily(t, func(t *testing.T, env *e2e.Env, fam family) {
		f := env.StartFilter(t, allowBoth, nil)
		f.WaitForOutput("proxies listening")
		box := e2e.Box4
		if fam.name == "IPv6" {
			box = e2e.Box6
		}
		for _, port := range []uint16{8080, 8443} {
			var err error
			env.InUpstream(func() {
				var c net.Conn
				c, err = net.DialTimeout(fam.tcp, hostPort(box, port), 500*time.Millisecond)
				if err == nil {
					_ = c.Close()
				}
			})
			require.Error(t, err, "a neighbour reached port %d in the box", port)
			var ne net.Error
			assert.True(t, errors.As(err, &ne) && ne.Timeout(), "port %d: want the packets dropped, got %v", port, err)
		}
	})
}
