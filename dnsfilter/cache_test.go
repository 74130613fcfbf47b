package dnsfilter_test

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/dnsfilter"
	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/policy"
)

// The cache answers again without asking upstream, per name without
// regard to case and per type, positive and negative answers alike, with
// TTLs counted down, until they run out; the client's question comes back
// as it asked it; pins follow cached answers; a reload that drops a name
// is not undone by the cache; identical questions at once share one
// exchange; and it holds no more than its size.
func TestHandlerCache(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0",
		"long.example.org. 300 IN A 192.0.2.7",
		"long.example.org. 300 IN AAAA 2001:db8::7",
		"short.example.org. 1 IN A 192.0.2.8",
		"held.example.org. 300 IN A 192.0.2.9",
		"www.example.com. 300 IN A 192.0.2.1",
	)
	pol := allow(t, "*.example.org", "www.example.com")
	var rec recorder
	var pinned pins
	cache := dnsfilter.NewCache(100, time.Hour)
	filter := startFilter(t, &dnsfilter.Handler{
		Policy:   pol,
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
		Cache:    cache,
		Events:   &rec,
		OnAnswer: pinned.add,
	})
	asked := func(name string, qtype uint16) int {
		n := 0
		for _, q := range up.seen() {
			if dns.CanonicalName(q.name) == dns.CanonicalName(name) && q.qtype == qtype {
				n++
			}
		}
		return n
	}

	first := query(t, "udp", filter, "long.example.org.", dns.TypeA, 0)
	require.Equal(t, dns.RcodeSuccess, first.Rcode)
	time.Sleep(1100 * time.Millisecond)
	again := query(t, "udp", filter, "LONG.Example.org.", dns.TypeA, 0)
	require.Equal(t, dns.RcodeSuccess, again.Rcode)
	assert.Equal(t, 1, asked("long.example.org.", dns.TypeA), "answered from the cache")
	assert.Equal(t, "LONG.Example.org.", again.Question[0].Name, "the question as the client asked it")
	require.Len(t, again.Answer, 1)
	assert.Less(t, again.Answer[0].Header().Ttl, first.Answer[0].Header().Ttl, "the TTL counted down")
	got := pinned.answers()
	require.Len(t, got, 2, "a cached answer is pinned too")
	assert.Less(t, got[1].Addrs[0].TTL, got[0].Addrs[0].TTL, "for what is left of its TTL")
	evs := rec.events()
	assert.Equal(t, events.ReasonAllowlisted, evs[len(evs)-1].Reason)

	query(t, "udp", filter, "long.example.org.", dns.TypeAAAA, 0)
	assert.Equal(t, 1, asked("long.example.org.", dns.TypeAAAA), "another type is asked for")

	for range 2 {
		assert.Equal(t, dns.RcodeNameError, query(t, "udp", filter, "nope.example.org.", dns.TypeA, 0).Rcode)
	}
	assert.Equal(t, 1, asked("nope.example.org.", dns.TypeA), "NXDOMAIN kept for its SOA's TTL")

	query(t, "udp", filter, "short.example.org.", dns.TypeA, 0)
	time.Sleep(1100 * time.Millisecond)
	query(t, "udp", filter, "short.example.org.", dns.TypeA, 0)
	assert.Equal(t, 2, asked("short.example.org.", dns.TypeA), "asked again once its TTL ran out")

	// Identical questions at once: one exchange.
	release := up.holdQueries(t)
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			assert.Equal(t, dns.RcodeSuccess, query(t, "udp", filter, "held.example.org.", dns.TypeA, 0).Rcode)
		})
	}
	require.Eventually(t, func() bool { return asked("held.example.org.", dns.TypeA) == 1 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // the others have arrived, and wait for it
	release()
	wg.Wait()
	assert.Equal(t, 1, asked("held.example.org.", dns.TypeA), "five questions, one exchange")

	// A reload that drops the names: the cache does not answer for them.
	snap, err := policy.Compile(&policy.Policy{Domains: []string{"www.example.com"}})
	require.NoError(t, err)
	pol.Store(snap)
	assert.Equal(t, dns.RcodeNameError, query(t, "udp", filter, "long.example.org.", dns.TypeA, 0).Rcode)
	evs = rec.events()
	assert.Equal(t, events.ReasonNotAllowlisted, evs[len(evs)-1].Reason)

	// No more than its size.
	small := dnsfilter.NewCache(2, time.Hour)
	f2 := startFilter(t, &dnsfilter.Handler{Policy: allow(t, "*.example.org"), Cache: small,
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}}})
	for _, name := range []string{"long.example.org.", "short.example.org.", "held.example.org."} {
		query(t, "udp", f2, name, dns.TypeA, 0)
	}
	assert.Equal(t, 2, small.Len())
}

// An answer kept for a client that takes big answers over UDP is
// truncated for one that does not, which then asks again over TCP.
func TestHandlerCacheTruncatesForSmallerBuffers(t *testing.T) {
	var records []string
	for i := range 40 {
		records = append(records, fmt.Sprintf("many.example.org. 300 IN A 192.0.2.%d", i+1))
	}
	up := startUpstream(t, "127.0.0.1:0", records...)
	filter := startFilter(t, &dnsfilter.Handler{
		Policy:   allow(t, "*.example.org"),
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
		Cache:    dnsfilter.NewCache(100, time.Hour),
	})
	big := query(t, "udp", filter, "many.example.org.", dns.TypeA, 4096)
	require.False(t, big.Truncated)
	require.Len(t, big.Answer, 40)
	small := query(t, "udp", filter, "many.example.org.", dns.TypeA, 0)
	assert.True(t, small.Truncated, "over 512 bytes for a client without EDNS0")
	assert.Less(t, len(small.Answer), 40)
	again := query(t, "udp", filter, "many.example.org.", dns.TypeA, 4096)
	assert.False(t, again.Truncated)
	assert.Len(t, again.Answer, 40)
	assert.Len(t, up.seen(), 1, "the others from the cache")
}
