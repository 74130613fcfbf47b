package dnsfilter_test

import (
	"context"
	"fmt"
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

// Bursts of queries on one socket, more than the server reads at once,
// those answered at once (refused) and those that wait upstream mixed:
// each is answered once, with its ID and its question.
func TestServerUDPBurst(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", zone...)
	filter := startFilter(t, &dnsfilter.Handler{
		Policy:   allow(t, "example.com"),
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
	})
	conn, err := net.Dial("udp", filter.String())
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.(*net.UDPConn).SetReadBuffer(1<<20))
	c := &dns.Conn{Conn: conn}

	// Bursts that the server's socket buffer holds (about 200 small
	// datagrams at Linux's default size), over a batch (64).
	const bursts, n = 3, 100
	for burst := range bursts {
		want := make(map[uint16]string, n)
		for i := range n {
			name := "example.com."
			if i%3 != 0 {
				name = fmt.Sprintf("blocked%d.example.net.", i)
			}
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			m.Id = uint16(burst*n + i + 1)
			want[m.Id] = name
			require.NoError(t, c.WriteMsg(m))
		}
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		for range n {
			r, err := c.ReadMsg()
			require.NoError(t, err, "burst %d: %d not answered", burst, len(want))
			name, ok := want[r.Id]
			require.True(t, ok, "an answer with ID %d, unknown or answered before", r.Id)
			delete(want, r.Id)
			require.Len(t, r.Question, 1)
			assert.Equal(t, name, r.Question[0].Name)
			if name == "example.com." {
				assert.Equal(t, dns.RcodeSuccess, r.Rcode)
				assert.Equal(t, []string{"192.0.2.1"}, addrs(r.Answer))
			} else {
				assert.Equal(t, dns.RcodeNameError, r.Rcode)
			}
		}
		assert.Empty(t, want)
	}
}

// Over UDP as over TCP, as with dns.Server: a message that cannot be
// parsed gets FORMERR with its header, a response and a message shorter
// than a header get nothing, and the queries after them are answered.
func TestServerUDPRejects(t *testing.T) {
	srv := &dnsfilter.Server{Addrs: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}, Handler: echoTransport}
	addr := serve(t, srv)[0]
	conn, err := net.Dial("udp", addr.String())
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	c := &dns.Conn{Conn: conn}
	ask := func(id uint16) {
		m := new(dns.Msg)
		m.SetQuestion("example.com.", dns.TypeTXT)
		m.Id = id
		require.NoError(t, c.WriteMsg(m))
	}

	response := new(dns.Msg)
	response.SetQuestion("example.com.", dns.TypeTXT)
	response.Id, response.Response = 7, true
	require.NoError(t, c.WriteMsg(response))
	_, err = conn.Write([]byte{0, 8, 1, 0}) // too short for a header
	require.NoError(t, err)
	// A header that promises a question the message does not hold.
	_, err = conn.Write([]byte{0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'c', 'o'})
	require.NoError(t, err)
	ask(10)
	ask(11)

	var got []uint16
	for len(got) < 3 {
		r, err := c.ReadMsg()
		require.NoError(t, err, "answers so far: %v", got)
		got = append(got, r.Id)
		switch r.Id {
		case 9:
			assert.Equal(t, dns.RcodeFormatError, r.Rcode)
			assert.True(t, r.Response)
		case 10, 11:
			assert.Equal(t, []string{"udp"}, r.Answer[0].(*dns.TXT).Txt)
		}
	}
	assert.ElementsMatch(t, []uint16{9, 10, 11}, got, "no answer to the response or the short message")
}

// A socket bound to every address is served too (by dns.Server, which
// answers from the address each query was sent to).
func TestServerUDPWildcard(t *testing.T) {
	srv := &dnsfilter.Server{Addrs: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:0")}, Handler: echoTransport}
	addr := serve(t, srv)[0]
	r := query(t, "udp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), addr.Port()), "example.com.", dns.TypeTXT, 0)
	assert.Equal(t, []string{"udp"}, r.Answer[0].(*dns.TXT).Txt)
}

// A query that waits upstream holds up no other: a refused name and an
// answer from the cache come back while it waits.
func TestServerUDPWaitingQueryHoldsNoOther(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", zone...)
	filter := startFilter(t, &dnsfilter.Handler{
		Policy:   allow(t, "example.com", "*.example.org"),
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
		Cache:    dnsfilter.NewCache(100, time.Hour),
	})
	require.Equal(t, dns.RcodeSuccess, query(t, "udp", filter, "example.com.", dns.TypeA, 0).Rcode) // now cached
	release := up.holdQueries(t)
	waiting := make(chan *dns.Msg, 1)
	go func() {
		m := new(dns.Msg)
		m.SetQuestion("www.example.org.", dns.TypeA)
		r, _ := dns.Exchange(m, filter.String())
		waiting <- r
	}()
	require.Eventually(t, func() bool { return len(up.seen()) == 2 }, 5*time.Second, 10*time.Millisecond, "the query reached the upstream, which holds it")

	assert.Equal(t, dns.RcodeNameError, query(t, "udp", filter, "blocked.test.", dns.TypeA, 0).Rcode)
	assert.Equal(t, dns.RcodeSuccess, query(t, "udp", filter, "example.com.", dns.TypeA, 0).Rcode)
	select {
	case <-waiting:
		t.Fatal("the held query was answered before its upstream answered")
	default:
	}
	release()
	r := <-waiting
	require.NotNil(t, r)
	assert.Equal(t, []string{"192.0.2.2"}, addrs(r.Answer))
}
