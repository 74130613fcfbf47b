package dnsfilter

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawUpstream is a UDP DNS server on loopback whose answers a test writes
// message by message, and that records where each query came from.
type rawUpstream struct {
	addr netip.AddrPort

	mu      sync.Mutex
	queries []rawQuery
	// respond returns the messages to send back, in order, for the n-th
	// query (from 0); nil sends nothing.
	respond func(n int, q *dns.Msg) []*dns.Msg
}

type rawQuery struct {
	port uint16 // the client socket's port
	id   uint16 // the ID the query carried
}

func startRaw(t *testing.T, respond func(n int, q *dns.Msg) []*dns.Msg) *rawUpstream {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	u := &rawUpstream{addr: pc.LocalAddr().(*net.UDPAddr).AddrPort(), respond: respond}
	done := make(chan struct{})
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	go func() {
		defer close(done)
		buf := make([]byte, dns.MaxMsgSize)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			u.mu.Lock()
			i := len(u.queries)
			u.queries = append(u.queries, rawQuery{port: uint16(from.(*net.UDPAddr).Port), id: q.Id})
			u.mu.Unlock()
			for _, m := range u.respond(i, q) {
				b, err := m.Pack()
				if err != nil {
					panic(err)
				}
				_, _ = pc.WriteTo(b, from)
			}
		}
	}()
	return u
}

// ports returns the number of client sockets the queries came from.
func (u *rawUpstream) ports() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	seen := make(map[uint16]bool)
	for _, q := range u.queries {
		seen[q.port] = true
	}
	return len(seen)
}

func (u *rawUpstream) seen() []rawQuery {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]rawQuery(nil), u.queries...)
}

// reply4 answers q with an A record for its name.
func reply4(q *dns.Msg, addr string) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Answer = append(m.Answer, &dns.A{
		Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
		A:   net.ParseIP(addr),
	})
	return m
}

func answerAll(_ int, q *dns.Msg) []*dns.Msg { return []*dns.Msg{reply4(q, "192.0.2.1")} }

func ask(t *testing.T, u *Upstream, name string) (*dns.Msg, error) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, err := u.Exchange(context.Background(), m)
	if err == nil {
		assert.Equal(t, m.Id, r.Id, "the answer has the caller's ID")
	}
	return r, err
}

func firstA(t *testing.T, r *dns.Msg) string {
	t.Helper()
	require.NotEmpty(t, r.Answer)
	a, ok := r.Answer[0].(*dns.A)
	require.True(t, ok, "A record")
	return a.A.String()
}

// idle returns the number of idle sockets to the i-th server.
func (u *Upstream) idle(i int) int { return len(u.pools[i].idle) }

// peekIdle returns an idle socket to the first server, leaving it idle.
func (u *Upstream) peekIdle() net.Conn {
	c := <-u.pools[0].idle
	u.pools[0].idle <- c
	return c
}

// Sequential queries share one socket; concurrent ones take one each, up
// to MaxSockets, and the sockets stay open for the next queries.
func TestUpstreamReusesSockets(t *testing.T) {
	up := startRaw(t, answerAll)
	u := &Upstream{Servers: []netip.AddrPort{up.addr}}
	defer u.Close()
	for i := range 100 {
		r, err := ask(t, u, fmt.Sprintf("n%d.example.", i))
		require.NoError(t, err)
		assert.Equal(t, "192.0.2.1", firstA(t, r))
	}
	assert.Equal(t, 1, up.ports(), "one socket for sequential queries")
	assert.Equal(t, 1, u.idle(0))

	// Queries go out with IDs of their own, not the caller's.
	m := new(dns.Msg)
	m.SetQuestion("id.example.", dns.TypeA)
	m.Id = 4242
	for range 20 {
		r, err := u.Exchange(context.Background(), m)
		require.NoError(t, err)
		assert.Equal(t, uint16(4242), r.Id)
	}
	same := 0
	for _, q := range up.seen()[100:] {
		if q.id == 4242 {
			same++
		}
	}
	assert.Less(t, same, 2, "upstream IDs are random")

	// Concurrent queries: at most one socket per query in flight, and
	// no more than MaxSockets.
	for _, maxSockets := range []int{0, 2} {
		conc := startRaw(t, answerAll)
		u := &Upstream{Servers: []netip.AddrPort{conc.addr}, MaxSockets: maxSockets}
		const workers = 8
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range 50 {
					r, err := ask(t, u, fmt.Sprintf("w%d-%d.example.", w, i))
					if assert.NoError(t, err) {
						assert.Equal(t, "192.0.2.1", firstA(t, r))
					}
				}
			})
		}
		wg.Wait()
		assert.LessOrEqual(t, conc.ports(), min(workers, cap(u.pools[0].open)), "MaxSockets %d", maxSockets)
		assert.Equal(t, conc.ports(), u.idle(0), "all kept")
		u.Close()
	}

	// A negative MaxSockets keeps none.
	none := &Upstream{Servers: []netip.AddrPort{up.addr}, MaxSockets: -1}
	for range 3 {
		_, err := ask(t, none, "example.com.")
		require.NoError(t, err)
	}
	assert.Empty(t, none.pools)
}

// An answer that arrives on a reused socket after its query ended, or that
// is not a reply to the query (wrong ID, wrong question, not a response),
// is discarded: the query waits for its own answer.
func TestUpstreamDiscardsStrayAnswers(t *testing.T) {
	var mu sync.Mutex
	var prev *dns.Msg
	up := startRaw(t, func(n int, q *dns.Msg) []*dns.Msg {
		mu.Lock()
		defer mu.Unlock()
		var out []*dns.Msg
		if prev != nil {
			// A late copy of the answer to the previous query, same
			// question, its ID.
			out = append(out, reply4(prev, "198.51.100.1"))
		}
		prev = q
		wrongID := reply4(q, "198.51.100.2")
		wrongID.Id = q.Id + 1
		other := q.Copy()
		other.Question[0].Name = "other.example."
		wrongQuestion := reply4(other, "198.51.100.3")
		notResponse := reply4(q, "198.51.100.4")
		notResponse.Response = false
		good := reply4(q, fmt.Sprintf("192.0.2.%d", n+1))
		return append(out, wrongID, wrongQuestion, notResponse, good)
	})
	u := &Upstream{Servers: []netip.AddrPort{up.addr}, Timeout: 5 * time.Second}
	defer u.Close()
	for i := range 10 {
		r, err := ask(t, u, "same.example.")
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("192.0.2.%d", i+1), firstA(t, r), "query %d", i)
		assert.Len(t, r.Answer, 1)
	}
	assert.Equal(t, 1, up.ports(), "the stray answers came on the reused socket")
}

// A socket that timed out is closed, not reused: the answer it may still
// get cannot reach a later query.
func TestUpstreamClosesSocketAfterTimeout(t *testing.T) {
	up := startRaw(t, func(n int, q *dns.Msg) []*dns.Msg {
		if n == 1 {
			return nil // the second query is never answered
		}
		return answerAll(n, q)
	})
	u := &Upstream{Servers: []netip.AddrPort{up.addr}, Timeout: 100 * time.Millisecond}
	defer u.Close()
	_, err := ask(t, u, "a.example.")
	require.NoError(t, err)
	require.Equal(t, 1, u.idle(0))

	_, err = ask(t, u, "b.example.")
	require.ErrorIs(t, err, ErrUpstream)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())
	assert.Zero(t, u.idle(0), "the socket that timed out is closed")

	_, err = ask(t, u, "c.example.")
	require.NoError(t, err)
	s := up.seen()
	require.Len(t, s, 3)
	assert.Equal(t, s[0].port, s[1].port, "reused")
	assert.NotEqual(t, s[1].port, s[2].port, "a fresh socket after the timeout")
}

// A socket whose server went away is closed, and the next query, with
// the server back, opens a fresh one.
func TestUpstreamClosesSocketAfterError(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	serveOnce := func(pc net.PacketConn) {
		buf := make([]byte, 512)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		q := new(dns.Msg)
		if q.Unpack(buf[:n]) == nil {
			b, _ := reply4(q, "192.0.2.1").Pack()
			_, _ = pc.WriteTo(b, from)
		}
	}
	go serveOnce(pc)
	u := &Upstream{Servers: []netip.AddrPort{addr}, Timeout: time.Second}
	defer u.Close()
	_, err = ask(t, u, "a.example.")
	require.NoError(t, err)
	require.Equal(t, 1, u.idle(0))
	kept := u.peekIdle()

	require.NoError(t, pc.Close()) // nothing listens: ICMP port unreachable
	_, err = ask(t, u, "b.example.")
	require.ErrorIs(t, err, ErrUpstream)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	assert.Zero(t, u.idle(0))
	_, err = kept.Write([]byte{0})
	assert.ErrorIs(t, err, net.ErrClosed, "the socket that failed is closed")

	pc, err = net.ListenPacket("udp4", addr.String())
	require.NoError(t, err)
	defer pc.Close()
	go serveOnce(pc)
	_, err = ask(t, u, "c.example.")
	require.NoError(t, err)
	assert.Equal(t, 1, u.idle(0))
}

// Close closes the idle sockets; the Upstream still answers, keeping none.
func TestUpstreamClose(t *testing.T) {
	up := startRaw(t, answerAll)
	u := &Upstream{Servers: []netip.AddrPort{up.addr}}
	_, err := ask(t, u, "a.example.")
	require.NoError(t, err)
	require.Equal(t, 1, u.idle(0))
	kept := u.peekIdle()

	require.NoError(t, u.Close())
	assert.Zero(t, u.idle(0))
	_, err = kept.Write([]byte{0})
	assert.ErrorIs(t, err, net.ErrClosed)

	_, err = ask(t, u, "b.example.")
	require.NoError(t, err)
	assert.Zero(t, u.idle(0), "none kept after Close")

	require.NoError(t, new(Upstream).Close(), "the zero value closes")
}

// Concurrent queries for different names each get their own answer.
func TestUpstreamConcurrentAnswersDoNotMix(t *testing.T) {
	up := startRaw(t, func(_ int, q *dns.Msg) []*dns.Msg {
		// The answer's address is derived from the question.
		var w, i int
		_, _ = fmt.Sscanf(q.Question[0].Name, "w%d-%d.example.", &w, &i)
		return []*dns.Msg{reply4(q, fmt.Sprintf("10.%d.%d.1", w, i))}
	})
	u := &Upstream{Servers: []netip.AddrPort{up.addr}, MaxSockets: 4}
	defer u.Close()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 100 {
				r, err := ask(t, u, fmt.Sprintf("w%d-%d.example.", w, i))
				if assert.NoError(t, err) {
					assert.Equal(t, fmt.Sprintf("10.%d.%d.1", w, i), firstA(t, r))
				}
			}
		})
	}
	wg.Wait()
}

// A query that finds every socket busy waits for one to come back, or for
// its deadline or context.
func TestSocketPoolWaits(t *testing.T) {
	u := &Upstream{Servers: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:53")}, MaxSockets: 1}
	u.init.Do(u.makePools)
	p := &u.pools[0]
	ctx := context.Background()
	c, err := p.get(ctx, time.Now().Add(time.Second))
	require.NoError(t, err)
	require.Nil(t, c, "the first query opens the socket")

	_, err = p.get(ctx, time.Now().Add(20*time.Millisecond))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "busy until the deadline")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = p.get(cctx, time.Now().Add(time.Second))
	require.ErrorIs(t, err, context.Canceled)

	a, b := net.Pipe()
	defer b.Close()
	got := make(chan net.Conn)
	go func() {
		c, err := p.get(ctx, time.Now().Add(10*time.Second))
		assert.NoError(t, err)
		got <- c
	}()
	p.put(a)
	assert.Equal(t, a, <-got, "the waiting query takes the socket given back")

	// A socket dropped frees its place: the next query opens one.
	p.drop(a)
	c, err = p.get(ctx, time.Now().Add(time.Second))
	require.NoError(t, err)
	assert.Nil(t, c)
}
