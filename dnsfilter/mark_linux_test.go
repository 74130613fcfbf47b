package dnsfilter

import (
	"context"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/internal/netnstest"
	"github.com/g0lab/g0efilter/internal/sockmark"
)

// The sockets an Upstream dials carry its mark.
func TestUpstreamMarksSockets(t *testing.T) {
	netnstest.Require(t)
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
		conn, err := d.Dial(tc.network, tc.addr.String())
		require.NoError(t, err)
		got, err := sockmark.Get(conn.(syscall.Conn))
		conn.Close()
		require.NoError(t, err)
		assert.Equal(t, tc.mark, got, "%s mark %#x", tc.network, tc.mark)
	}
}

// A marked exchange works end to end, and the socket it keeps is marked.
func TestUpstreamMarkedExchange(t *testing.T) {
	netnstest.Require(t)
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
	got, err := sockmark.Get(u.peekIdle().(syscall.Conn))
	require.NoError(t, err)
	assert.Equal(t, uint32(0x4242), got)
	require.NoError(t, u.Close())
}
