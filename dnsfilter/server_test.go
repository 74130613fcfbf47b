package dnsfilter_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/g0lab/g0efilter/dnsfilter"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoTransport answers every query with a TXT record naming the
// transport it came over.
var echoTransport = dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Answer = append(m.Answer, &dns.TXT{
		Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET},
		Txt: []string{w.LocalAddr().Network()},
	})
	_ = w.WriteMsg(m)
})

// start runs srv.ListenAndServe in the background; done receives its
// result.
func start(t *testing.T, srv *dnsfilter.Server) (cancel context.CancelFunc, done chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done = make(chan error, 1)
	go func() { done <- srv.ListenAndServe(ctx) }()
	return cancel, done
}

func wait(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("server did not return")
		return nil
	}
}

func TestServerServesUDPAndTCPOnEveryAddress(t *testing.T) {
	listen := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}
	if haveIPv6() {
		listen = append(listen, netip.MustParseAddrPort("[::1]:0"))
	}
	srv := &dnsfilter.Server{Addrs: listen, Handler: echoTransport}
	cancel, done := start(t, srv)
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatal(err)
	}

	local := srv.LocalAddrs()
	require.Len(t, local, len(listen))
	for i, a := range local {
		assert.Equal(t, listen[i].Addr(), a.Addr())
		assert.NotZero(t, a.Port())
		for _, network := range []string{"udp", "tcp"} {
			r := query(t, network, a, "example.com.", dns.TypeTXT, 0)
			require.Len(t, r.Answer, 1, "%s %s", network, a)
			assert.Equal(t, []string{network}, r.Answer[0].(*dns.TXT).Txt)
		}
	}

	cancel()
	require.NoError(t, wait(t, done))
	// Every socket is closed: the ports can be bound again.
	for _, a := range local {
		pc, err := net.ListenPacket("udp", a.String())
		require.NoError(t, err)
		pc.Close()
		l, err := net.Listen("tcp", a.String())
		require.NoError(t, err)
		l.Close()
	}
}

// Shutdown lets a query in flight be answered, and does not wait for idle
// TCP connections.
func TestServerGracefulShutdown(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	srv := &dnsfilter.Server{
		Addrs: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")},
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			if r.Question[0].Name == "slow.example." {
				close(entered)
				<-release
			}
			echoTransport(w, r)
		}),
	}
	cancel, done := start(t, srv)
	<-srv.Ready()
	addr := srv.LocalAddrs()[0]

	// An idle TCP connection, after one query.
	idle, err := dns.Dial("tcp", addr.String())
	require.NoError(t, err)
	defer idle.Close()
	m := new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeTXT)
	require.NoError(t, idle.WriteMsg(m))
	_, err = idle.ReadMsg()
	require.NoError(t, err)

	answered := make(chan *dns.Msg, 1)
	go func() {
		m := new(dns.Msg)
		m.SetQuestion("slow.example.", dns.TypeTXT)
		r, err := dns.Exchange(m, addr.String())
		if err != nil {
			r = nil
		}
		answered <- r
	}()
	<-entered
	cancel()
	select {
	case err := <-done:
		t.Fatalf("returned with a query in flight: %v", err)
	default:
	}
	close(release)
	r := <-answered
	require.NotNil(t, r, "the query in flight was answered")
	assert.Len(t, r.Answer, 1)
	require.NoError(t, wait(t, done))
}

func TestServerListenError(t *testing.T) {
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	busyAddr := busy.Addr().(*net.TCPAddr).AddrPort()

	free := deadServer(t) // a port free for UDP, most likely for TCP too
	srv := &dnsfilter.Server{Addrs: []netip.AddrPort{free, busyAddr}, Handler: echoTransport}
	_, done := start(t, srv)
	err = wait(t, done)
	require.Error(t, err)
	assert.ErrorContains(t, err, "dnsfilter: listen")
	select {
	case <-srv.Ready():
		t.Fatal("Ready closed for a server that never served")
	default:
	}
	// The sockets of the first address were closed.
	pc, err := net.ListenPacket("udp4", free.String())
	require.NoError(t, err)
	pc.Close()
}

func TestServerMisuse(t *testing.T) {
	err := (&dnsfilter.Server{}).ListenAndServe(context.Background())
	assert.ErrorContains(t, err, "Handler is nil")

	srv := &dnsfilter.Server{Addrs: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}, Handler: echoTransport}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, srv.ListenAndServe(ctx), "an ended context: serves, then shuts down")
	assert.ErrorIs(t, srv.ListenAndServe(context.Background()), dnsfilter.ErrServerUsed)
}

// Serve takes sockets made by the caller.
func TestServerServe(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &dnsfilter.Server{Handler: echoTransport}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, []net.PacketConn{pc}, []net.Listener{l}) }()
	<-srv.Ready()
	local := srv.LocalAddrs()
	require.Len(t, local, 2)
	assert.Equal(t, pc.LocalAddr().(*net.UDPAddr).AddrPort(), local[0])
	assert.Equal(t, l.Addr().(*net.TCPAddr).AddrPort(), local[1])
	r := query(t, "udp", local[0], "example.com.", dns.TypeTXT, 0)
	assert.Equal(t, []string{"udp"}, r.Answer[0].(*dns.TXT).Txt)
	r = query(t, "tcp", local[1], "example.com.", dns.TypeTXT, 0)
	assert.Equal(t, []string{"tcp"}, r.Answer[0].(*dns.TXT).Txt)
	cancel()
	require.NoError(t, wait(t, done))
}
