//go:build linux

package e2e

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
)

const (
	// DNSPort is where [Env.DNSServer] listens.
	DNSPort = 53
	// DNSTTL is the TTL of the records [Env.DNSServer] answers with,
	// unless [DNSServer.SetTTL] changes it.
	DNSTTL = 60

	dnsStartTimeout = 5 * time.Second
)

// DNSQuery is a question [Env.DNSServer] received.
type DNSQuery struct {
	Name string         // as asked, fully qualified ("a.example.test.")
	Type uint16         // dns.TypeA, dns.TypeAAAA, ...
	Net  string         // "udp" or "tcp"
	From netip.AddrPort // the client's address
}

// DNSServer is an authoritative DNS server in the upstream namespace, made
// by [Env.DNSServer].
type DNSServer struct {
	records map[string][]netip.Addr // by canonical name

	mu      sync.Mutex
	queries []DNSQuery
	ttl     uint32
}

// SetTTL sets the TTL of the records in later answers.
func (s *DNSServer) SetTTL(ttl uint32) {
	s.mu.Lock()
	s.ttl = ttl
	s.mu.Unlock()
}

// DNSServer starts a DNS server on port 53, UDP and TCP, in the upstream
// namespace, listening on every upstream address of both families. It is
// authoritative (the AA bit set) for the names in records (case ignored, a
// trailing dot optional): an A question gets the IPv4 addresses of the
// name, an AAAA question its IPv6 addresses, each with a TTL of [DNSTTL],
// and any other type an empty answer. A name not in records gets NXDOMAIN.
// Every question is recorded, answered or not ([DNSServer.Queries]). The
// server has a ServeMux of its own and stops, its goroutines waited for,
// when the test ends.
func (e *Env) DNSServer(records map[string][]netip.Addr) *DNSServer {
	e.t.Helper()
	s := &DNSServer{records: map[string][]netip.Addr{}, ttl: DNSTTL}
	for name, addrs := range records {
		s.records[dns.CanonicalName(name)] = append([]netip.Addr(nil), addrs...)
	}
	mux := dns.NewServeMux()
	mux.HandleFunc(".", s.serve)

	addr := ":" + strconv.Itoa(DNSPort)
	var pc net.PacketConn
	var err error
	e.InUpstream(func() { pc, err = net.ListenPacket("udp", addr) })
	if err != nil {
		e.t.Fatalf("e2e: listen udp %s in %s: %v", addr, e.Upstream, err)
	}
	e.t.Cleanup(func() { _ = pc.Close() })
	ln := e.Listen("tcp", addr)

	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	servers := []*dns.Server{
		{Net: "udp", PacketConn: pc, Handler: mux, NotifyStartedFunc: notify},
		{Net: "tcp", Listener: ln, Handler: mux, NotifyStartedFunc: notify},
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(servers))
	for _, srv := range servers {
		wg.Go(func() { errs <- srv.ActivateAndServe() })
	}
	e.t.Cleanup(func() {
		for _, srv := range servers {
			ctx, cancel := context.WithTimeout(context.Background(), serverShutdownTimeout)
			_ = srv.ShutdownContext(ctx)
			cancel()
		}
		// Should a server not have started, closing its socket ends it.
		_ = pc.Close()
		_ = ln.Close()
		wg.Wait()
	})

	timeout := time.NewTimer(dnsStartTimeout)
	defer timeout.Stop()
	for range servers {
		select {
		case <-started:
		case err := <-errs:
			e.t.Fatalf("e2e: DNS server: %v", err)
		case <-timeout.C:
			e.t.Fatalf("e2e: DNS server not started after %v", dnsStartTimeout)
		}
	}
	return s
}

func (s *DNSServer) serve(w dns.ResponseWriter, r *dns.Msg) {
	from := addrPort(w.RemoteAddr().String())
	network := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		network = "tcp"
	}
	s.mu.Lock()
	for _, q := range r.Question {
		s.queries = append(s.queries, DNSQuery{Name: q.Name, Type: q.Qtype, Net: network, From: from})
	}
	s.mu.Unlock()

	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	addrs, ok := s.records[dns.CanonicalName(q.Name)]
	if !ok {
		m.Rcode = dns.RcodeNameError
		_ = w.WriteMsg(m)
		return
	}
	s.mu.Lock()
	ttl := s.ttl
	s.mu.Unlock()
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: ttl}
	for _, a := range addrs {
		switch {
		case q.Qtype == dns.TypeA && a.Is4():
			hdr.Rrtype = dns.TypeA
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
		case q.Qtype == dns.TypeAAAA && a.Is6() && !a.Is4In6():
			hdr.Rrtype = dns.TypeAAAA
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
	}
	_ = w.WriteMsg(m)
}

// Queries returns a copy of the questions received so far, in order.
func (s *DNSServer) Queries() []DNSQuery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]DNSQuery(nil), s.queries...)
}
