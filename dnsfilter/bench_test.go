package dnsfilter_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/g0lab/g0efilter/dnsfilter"
	"github.com/g0lab/g0efilter/events"
	"github.com/miekg/dns"
)

// nullWriter is a dns.ResponseWriter that packs the answers it is given,
// as the server's writer does, and drops them.
type nullWriter struct{}

var clientAddr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}

func (nullWriter) LocalAddr() net.Addr         { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (nullWriter) RemoteAddr() net.Addr        { return clientAddr }
func (nullWriter) WriteMsg(m *dns.Msg) error   { _, err := m.Pack(); return err }
func (nullWriter) Write(b []byte) (int, error) { return len(b), nil }
func (nullWriter) Close() error                { return nil }
func (nullWriter) TsigStatus() error           { return nil }
func (nullWriter) TsigTimersOnly(bool)         {}
func (nullWriter) Hijack()                     {}

// BenchmarkHandlerBlocked is the cost of refusing a query, without the
// network: decision, answer and event.
func BenchmarkHandlerBlocked(b *testing.B) {
	h := &dnsfilter.Handler{Policy: allow(b, "example.com", "*.example.org"), Events: events.Discard}
	m := new(dns.Msg)
	m.SetQuestion("tracker.example.net.", dns.TypeA)
	m.SetEdns0(1232, false)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeDNS(nullWriter{}, m)
	}
}

func BenchmarkAnswerAddrs(b *testing.B) {
	var answer []dns.RR
	for _, s := range []string{
		"www.example.com. 300 IN CNAME edge.cdn.example.",
		"edge.cdn.example. 20 IN A 192.0.2.10",
		"edge.cdn.example. 20 IN A 192.0.2.11",
		"edge.cdn.example. 20 IN A 192.0.2.12",
	} {
		rr, err := dns.NewRR(s)
		if err != nil {
			b.Fatal(err)
		}
		answer = append(answer, rr)
	}
	b.ReportAllocs()
	for b.Loop() {
		dnsfilter.AnswerAddrs("www.example.com", answer)
	}
}

// BenchmarkHandlerCached is the cost of an allowed answer from the Cache,
// without the network: decision, rate limit, answer, event.
func BenchmarkHandlerCached(b *testing.B) {
	up := startUpstream(b, "127.0.0.1:0", "www.example.org. 300 IN A 192.0.2.2")
	h := &dnsfilter.Handler{
		Policy:   allow(b, "example.com", "*.example.org"),
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
		Cache:    dnsfilter.NewCache(100, time.Hour),
		Limits:   dnsfilter.Limits{Rate: 1e9},
		Events:   events.Discard,
	}
	m := new(dns.Msg)
	m.SetQuestion("www.example.org.", dns.TypeA)
	h.ServeDNS(nullWriter{}, m) // from upstream, into the cache
	b.ReportAllocs()
	for b.Loop() {
		h.ServeDNS(nullWriter{}, m)
	}
}
