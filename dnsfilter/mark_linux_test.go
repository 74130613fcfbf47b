package dnsfilter

import (
	"context"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// requireNetAdmin skips a test that needs CAP_NET_ADMIN (root here), or
// fails it under CI=true, where privileged tests must run.
func requireNetAdmin(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("privileged test: must run as root under CI=true")
	}
	t.Skip("needs root (CAP_NET_ADMIN) to set SO_MARK")
}

// The sockets an Upstream dials carry its mark.
func TestUpstreamMarksSockets(t *testing.T) {
	requireNetAdmin(t)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()

	for _, tc := range []struct {
		mark    uint32
		network string
		addr    net.Addr
	}{
		{0x4242, "udp", pc.LocalAddr()},
		{0x4242, "tcp", l.Addr()},
		{0xfffffff0, "udp", pc.LocalAddr()},
		{0, "udp", pc.LocalAddr()},
	} {
		u := &Upstream{Mark: tc.mark}
		d := u.dialer(time.Now().Add(time.Second))
		if tc.mark == 0 {
			assert.Nil(t, d.Control, "no mark, no socket option")
		}
		var got int
		var gotErr error
		set := d.Control
		d.Control = func(network, address string, c syscall.RawConn) error {
			if set != nil {
				if err := set(network, address, c); err != nil {
					return err
				}
			}
			return c.Control(func(fd uintptr) {
				got, gotErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK)
			})
		}
		conn, err := d.Dial(tc.network, tc.addr.String())
		require.NoError(t, err)
		conn.Close()
		require.NoError(t, gotErr)
		assert.Equal(t, tc.mark, uint32(got), "%s mark %#x", tc.network, tc.mark)
	}
}

// A marked exchange works end to end, and the socket it keeps is marked.
func TestUpstreamMarkedExchange(t *testing.T) {
	requireNetAdmin(t)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNameError)
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	<-started
	defer func() {
		require.NoError(t, srv.Shutdown())
		require.NoError(t, <-done)
	}()

	u := &Upstream{Servers: []netip.AddrPort{pc.LocalAddr().(*net.UDPAddr).AddrPort()}, Mark: 0x4242}
	m := new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeA)
	r, err := u.Exchange(context.Background(), m)
	require.NoError(t, err)
	assert.Equal(t, dns.RcodeNameError, r.Rcode)

	// The socket kept for the next query carries the mark.
	require.Equal(t, 1, u.idle(0))
	raw, err := u.peekIdle().(syscall.Conn).SyscallConn()
	require.NoError(t, err)
	var got int
	var gotErr error
	require.NoError(t, raw.Control(func(fd uintptr) {
		got, gotErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK)
	}))
	require.NoError(t, gotErr)
	assert.Equal(t, 0x4242, got)
	require.NoError(t, u.Close())
}
