package dnsfilter_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/g0lab/g0efilter/dnsfilter"
	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/policy"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// The live policy plugs into a Handler as it is.
var (
	_ dnsfilter.Policy = (*policy.Holder)(nil)
	_ dnsfilter.Policy = (*policy.Snapshot)(nil)
)

// seen is a query a fake upstream received.
type seen struct {
	net     string // "udp" or "tcp"
	name    string // as sent
	qtype   uint16
	udpSize uint16 // the EDNS0 buffer size; 0 without EDNS0
	do      bool   // the EDNS0 DO bit
	records int    // records in the answer, authority and additional sections, OPT aside
}

// fakeUpstream is a DNS server on loopback with a zone in memory. It
// answers as a recursive resolver would: following CNAMEs, NXDOMAIN with a
// SOA for unknown names, truncating UDP answers to the client's buffer.
type fakeUpstream struct {
	Addr netip.AddrPort

	mu      sync.Mutex
	zone    map[string][]dns.RR // by lower-case FQDN
	rcode   int                 // when non-zero, every answer has it
	queries []seen
	hold    chan struct{}           // when set, queries wait for it to be closed
	modify  func(*dns.Msg) *dns.Msg // when set, rewrites each answer
}

// startUpstream serves a fake upstream on addr ("127.0.0.1:0") until the
// test ends.
func startUpstream(t testing.TB, addr string, records ...string) *fakeUpstream {
	t.Helper()
	f := &fakeUpstream{zone: make(map[string][]dns.RR)}
	f.set(t, records...)
	srv := &dnsfilter.Server{
		Addrs:   []netip.AddrPort{netip.MustParseAddrPort(addr)},
		Handler: f,
	}
	f.Addr = serve(t, srv)[0]
	return f
}

// serve runs srv until the test ends and returns its addresses once it is
// ready. At the end of the test it checks that srv shut down.
func serve(t testing.TB, srv *dnsfilter.Server) []netip.AddrPort {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("server did not shut down")
		}
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("server failed: %v", err)
	}
	return srv.LocalAddrs()
}

// set replaces the zone with records in presentation format.
func (f *fakeUpstream) set(t testing.TB, records ...string) {
	t.Helper()
	zone := make(map[string][]dns.RR)
	for _, s := range records {
		rr, err := dns.NewRR(s)
		require.NoError(t, err, s)
		name := strings.ToLower(rr.Header().Name)
		zone[name] = append(zone[name], rr)
	}
	f.mu.Lock()
	f.zone = zone
	f.mu.Unlock()
}

// holdQueries makes the upstream hold queries until release is called or
// the test ends; then it answers them.
func (f *fakeUpstream) holdQueries(t *testing.T) (release func()) {
	hold := make(chan struct{})
	f.mu.Lock()
	f.hold = hold
	f.mu.Unlock()
	release = sync.OnceFunc(func() { close(hold) })
	// Registered after the server's cleanup, so it runs first: the
	// server can then shut down.
	t.Cleanup(release)
	return release
}

func (f *fakeUpstream) setRcode(rcode int) {
	f.mu.Lock()
	f.rcode = rcode
	f.mu.Unlock()
}

func (f *fakeUpstream) setModify(modify func(*dns.Msg) *dns.Msg) {
	f.mu.Lock()
	f.modify = modify
	f.mu.Unlock()
}

func (f *fakeUpstream) seen() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.queries...)
}

func (f *fakeUpstream) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	q := seen{net: w.LocalAddr().Network()}
	if len(r.Question) > 0 {
		q.name, q.qtype = r.Question[0].Name, r.Question[0].Qtype
	}
	if opt := r.IsEdns0(); opt != nil {
		q.udpSize, q.do = opt.UDPSize(), opt.Do()
	}
	for _, rr := range append(append(append([]dns.RR(nil), r.Answer...), r.Ns...), r.Extra...) {
		if rr.Header().Rrtype != dns.TypeOPT {
			q.records++
		}
	}
	f.mu.Lock()
	f.queries = append(f.queries, q)
	hold, rcode, modify := f.hold, f.rcode, f.modify
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}

	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), opt.Do())
	}
	if len(r.Question) == 1 {
		f.resolve(m, r.Question[0])
	}
	if rcode != 0 {
		m.Rcode = rcode
	}
	if modify != nil {
		m = modify(m)
	}
	if q.net == "udp" {
		size := dns.MinMsgSize
		if q.udpSize > dns.MinMsgSize {
			size = int(q.udpSize)
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

func (f *fakeUpstream) resolve(m *dns.Msg, q dns.Question) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := strings.ToLower(q.Name)
	for range 8 {
		rrs, ok := f.zone[name]
		if !ok {
			break
		}
		if c, ok := rrs[0].(*dns.CNAME); ok && q.Qtype != dns.TypeCNAME {
			m.Answer = append(m.Answer, c)
			name = strings.ToLower(c.Target)
			continue
		}
		for _, rr := range rrs {
			if q.Qtype == dns.TypeANY || rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
		return
	}
	if _, ok := f.zone[name]; !ok {
		m.Rcode = dns.RcodeNameError
		soa, _ := dns.NewRR("test. 60 IN SOA ns.test. admin.test. 1 3600 600 86400 30")
		m.Ns = append(m.Ns, soa)
	}
}

// recorder is an events.Sink that keeps what it receives.
type recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func (r *recorder) Emit(e events.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, e)
	r.mu.Unlock()
}

func (r *recorder) events() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.evs...)
}

// allow returns a live policy allowing domains.
func allow(t testing.TB, domains ...string) *policy.Holder {
	t.Helper()
	snap, err := policy.Compile(&policy.Policy{Domains: domains})
	require.NoError(t, err)
	var h policy.Holder
	h.Store(snap)
	return &h
}

// query asks server over network for name and type t, with EDNS0 of size
// edns when it is not zero.
func query(t *testing.T, network string, server netip.AddrPort, name string, qtype uint16, edns uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns != 0 {
		m.SetEdns0(edns, false)
	}
	return exchange(t, network, server, m)
}

func exchange(t *testing.T, network string, server netip.AddrPort, m *dns.Msg) *dns.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := dns.Client{Net: network, Timeout: 10 * time.Second}
	if m.IsEdns0() == nil {
		c.UDPSize = dns.MinMsgSize
	}
	r, _, err := c.ExchangeContext(ctx, m, server.String())
	require.NoError(t, err)
	require.Equal(t, m.Id, r.Id, "answer ID")
	return r
}

// deadServer returns a loopback UDP and TCP port that nothing listens on:
// queries to it fail at once.
func deadServer(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	a := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	require.NoError(t, pc.Close())
	return a
}

// blackHole returns a loopback UDP port that receives queries and never
// answers, until the test ends.
func blackHole(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// haveIPv6 reports whether [::1] can be listened on.
func haveIPv6() bool {
	pc, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		return false
	}
	pc.Close()
	return true
}

// addrs returns the A and AAAA addresses of an answer section.
func addrs(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}
	return out
}

// ede returns the Extended DNS Error of m, or nil.
func ede(m *dns.Msg) *dns.EDNS0_EDE {
	opt := m.IsEdns0()
	if opt == nil {
		return nil
	}
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_EDE); ok {
			return e
		}
	}
	return nil
}
