package testbed

import (
	"net"
	"net/netip"
	"sync"

	"github.com/miekg/dns"
)

// DNSTTL is the TTL of the records a [Zone] answers with, unless
// [Zone.SetTTL] changes it.
const DNSTTL = 60

// DNSQuery is a question a [Zone] received.
type DNSQuery struct {
	Name string         // as asked, fully qualified ("a.example.test.")
	Type uint16         // dns.TypeA, dns.TypeAAAA, ...
	Net  string         // "udp" or "tcp"
	From netip.AddrPort // the client's address
}

// Zone is a dns.Handler (serve it with [Servers.DNS]) that answers with
// authority (the AA bit set) for the names it was made with: an A question
// gets the IPv4 addresses of the name, an AAAA question its IPv6
// addresses, and any other type an empty answer. A name it does not know
// gets NXDOMAIN, a message without exactly one question FORMERR. It
// records every question, answered or not ([Zone.Queries]).
type Zone struct {
	records map[string][]netip.Addr // by canonical name

	mu      sync.Mutex
	queries []DNSQuery
	ttl     uint32
}

var _ dns.Handler = (*Zone)(nil)

// NewZone returns a zone for records (names with or without the trailing
// dot, case ignored), with a TTL of [DNSTTL].
func NewZone(records map[string][]netip.Addr) *Zone {
	z := &Zone{records: map[string][]netip.Addr{}, ttl: DNSTTL}
	for name, addrs := range records {
		z.records[dns.CanonicalName(name)] = append([]netip.Addr(nil), addrs...)
	}
	return z
}

// SetTTL sets the TTL of the records in later answers.
func (z *Zone) SetTTL(ttl uint32) {
	z.mu.Lock()
	z.ttl = ttl
	z.mu.Unlock()
}

func (z *Zone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	from := addrPort(w.RemoteAddr().String())
	network := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		network = "tcp"
	}
	z.mu.Lock()
	for _, q := range r.Question {
		z.queries = append(z.queries, DNSQuery{Name: q.Name, Type: q.Qtype, Net: network, From: from})
	}
	ttl := z.ttl
	z.mu.Unlock()

	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	addrs, ok := z.records[dns.CanonicalName(q.Name)]
	if !ok {
		m.Rcode = dns.RcodeNameError
		_ = w.WriteMsg(m)
		return
	}
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
func (z *Zone) Queries() []DNSQuery {
	z.mu.Lock()
	defer z.mu.Unlock()
	return append([]DNSQuery(nil), z.queries...)
}
