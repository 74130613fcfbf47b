package dnsfilter

import (
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// answerTo returns an answer to a question for name of type A, with rcode
// and records in presentation format; a SOA goes to the authority section.
func answerTo(t *testing.T, name string, rcode int, records ...string) (cacheKey, *dns.Msg) {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	m := new(dns.Msg)
	m.SetRcode(q, rcode)
	for _, s := range records {
		rr, err := dns.NewRR(s)
		require.NoError(t, err, s)
		if rr.Header().Rrtype == dns.TypeSOA {
			m.Ns = append(m.Ns, rr)
		} else {
			m.Answer = append(m.Answer, rr)
		}
	}
	return keyOf(q, "udp"), m
}

// lookup is c.get for the question of k, with ID 1234, its answer parsed.
func lookup(t testing.TB, c *Cache, k cacheKey, now time.Time) (*dns.Msg, bool) {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(k.name, k.qtype)
	q.Id = 1234
	got, ok := c.get(k, q, now)
	if !ok {
		return nil, false
	}
	m := new(dns.Msg)
	require.NoError(t, m.Unpack(got.wire))
	assert.Equal(t, uint16(1234), m.Id)
	return m, true
}

const soa = "example.org. 3600 IN SOA ns.example.org. host.example.org. 1 7200 900 1209600 %d"

// An answer is kept for its smallest TTL, given with its TTLs counted
// down by the seconds begun (never past the answer as it came), and gone
// once its TTL has run out.
func TestCacheExpiry(t *testing.T) {
	c := NewCache(10, time.Hour)
	k, m := answerTo(t, "www.example.org.", dns.RcodeSuccess,
		"www.example.org. 300 IN CNAME edge.example.org.", "edge.example.org. 20 IN A 192.0.2.1")
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	c.put(k, m, t0)

	for _, tc := range []struct {
		after      time.Duration
		cname, a   uint32
		stillThere bool
	}{
		{0, 300, 20, true},
		{time.Millisecond, 299, 19, true},
		{time.Second, 299, 19, true},
		{1100 * time.Millisecond, 298, 18, true},
		{19*time.Second + time.Millisecond, 280, 0, true},
		{20 * time.Second, 0, 0, false}, // the A record's TTL ran out
	} {
		got, ok := lookup(t, c, k, t0.Add(tc.after))
		require.Equal(t, tc.stillThere, ok, "after %v", tc.after)
		if !ok {
			continue
		}
		require.Len(t, got.Answer, 2)
		assert.Equal(t, tc.cname, got.Answer[0].Header().Ttl, "after %v", tc.after)
		assert.Equal(t, tc.a, got.Answer[1].Header().Ttl, "after %v", tc.after)
		// Never past the answer as it came, so what was pinned for it
		// covers this copy (nftrules' Pin.Need has nothing to send).
		end := t0.Add(tc.after + time.Duration(got.Answer[1].Header().Ttl)*time.Second)
		assert.False(t, end.After(t0.Add(20*time.Second)), "after %v", tc.after)
	}
	assert.Equal(t, 0, c.Len(), "an expired answer is dropped when looked up")
	assert.Equal(t, uint32(20), m.Answer[1].Header().Ttl, "the answer put is not changed")

	// MaxTTL bounds how long an answer is kept, not the TTLs it gives.
	short := NewCache(10, 10*time.Second)
	short.put(k, m, t0)
	got, ok := lookup(t, short, k, t0.Add(9*time.Second))
	require.True(t, ok)
	assert.Equal(t, uint32(11), got.Answer[1].Header().Ttl)
	_, ok = lookup(t, short, k, t0.Add(10*time.Second))
	assert.False(t, ok)
}

// Negative answers, NXDOMAIN and NOERROR without records, are kept for
// their SOA's TTL or MINIMUM, whichever is smaller (RFC 2308); without a
// SOA, or with nothing to say how long, they are not kept.
func TestCacheNegative(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		rcode   int
		records []string
		keep    time.Duration // 0: not kept
	}{
		{"NXDOMAIN, MINIMUM smaller", dns.RcodeNameError, []string{fmtSOA(60)}, 60 * time.Second},
		{"NXDOMAIN, SOA's TTL smaller", dns.RcodeNameError, []string{fmtSOA(7200)}, time.Hour},
		{"NODATA", dns.RcodeSuccess, []string{fmtSOA(30)}, 30 * time.Second},
		{"NXDOMAIN without a SOA", dns.RcodeNameError, nil, 0},
		{"NODATA without a SOA", dns.RcodeSuccess, nil, 0},
		{"NXDOMAIN, MINIMUM 0", dns.RcodeNameError, []string{fmtSOA(0)}, 0},
		{"SERVFAIL", dns.RcodeServerFailure, []string{fmtSOA(60)}, 0},
		{"REFUSED", dns.RcodeRefused, []string{fmtSOA(60)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCache(10, 24*time.Hour)
			k, m := answerTo(t, "nope.example.org.", tc.rcode, tc.records...)
			c.put(k, m, t0)
			if tc.keep == 0 {
				assert.Equal(t, 0, c.Len())
				return
			}
			got, ok := lookup(t, c, k, t0.Add(tc.keep-time.Second))
			require.True(t, ok, "kept for %v", tc.keep)
			assert.Equal(t, tc.rcode, got.Rcode)
			assert.Empty(t, got.Answer)
			require.Len(t, got.Ns, 1)
			assert.Equal(t, uint32(3600-tc.keep/time.Second+1), got.Ns[0].Header().Ttl)
			_, ok = lookup(t, c, k, t0.Add(tc.keep))
			assert.False(t, ok, "gone after %v", tc.keep)
		})
	}

	// Nor are truncated answers, or records without a TTL.
	c := NewCache(10, time.Hour)
	k, m := answerTo(t, "www.example.org.", dns.RcodeSuccess, "www.example.org. 300 IN A 192.0.2.1")
	m.Truncated = true
	c.put(k, m, t0)
	k, m = answerTo(t, "zero.example.org.", dns.RcodeSuccess, "zero.example.org. 0 IN A 192.0.2.1")
	c.put(k, m, t0)
	assert.Equal(t, 0, c.Len())
}

// fmtSOA is a SOA record, TTL 3600, with MINIMUM minimum.
func fmtSOA(minimum uint32) string { return fmt.Sprintf(soa, minimum) }

// When full, the Cache lets go of the answer used longest ago; questions
// that differ in type, class, DO or CD bit or transport are kept apart,
// and case does not matter.
func TestCacheKeysAndEviction(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	c := NewCache(2, time.Hour)
	ka, ma := answerTo(t, "a.example.org.", dns.RcodeSuccess, "a.example.org. 300 IN A 192.0.2.1")
	kb, mb := answerTo(t, "b.example.org.", dns.RcodeSuccess, "b.example.org. 300 IN A 192.0.2.2")
	kc, mc := answerTo(t, "c.example.org.", dns.RcodeSuccess, "c.example.org. 300 IN A 192.0.2.3")
	c.put(ka, ma, t0)
	c.put(kb, mb, t0)
	_, ok := lookup(t, c, ka, t0) // a is used again: b is now the oldest
	require.True(t, ok)
	c.put(kc, mc, t0)
	_, ok = lookup(t, c, kb, t0)
	assert.False(t, ok, "b, used longest ago, made room")
	_, ok = lookup(t, c, ka, t0)
	assert.True(t, ok)
	_, ok = lookup(t, c, kc, t0)
	assert.True(t, ok)

	q := new(dns.Msg)
	q.SetQuestion("A.Example.ORG.", dns.TypeA)
	assert.Equal(t, ka, keyOf(q, "udp"), "case does not matter")
	for _, tc := range []struct {
		name   string
		change func(*dns.Msg) string
	}{
		{"type", func(m *dns.Msg) string { m.Question[0].Qtype = dns.TypeAAAA; return "udp" }},
		{"class", func(m *dns.Msg) string { m.Question[0].Qclass = dns.ClassCHAOS; return "udp" }},
		{"DO", func(m *dns.Msg) string { m.SetEdns0(1232, true); return "udp" }},
		{"CD", func(m *dns.Msg) string { m.CheckingDisabled = true; return "udp" }},
		{"transport", func(*dns.Msg) string { return "tcp" }},
	} {
		m := new(dns.Msg)
		m.SetQuestion("a.example.org.", dns.TypeA)
		proto := tc.change(m)
		k := keyOf(m, proto)
		assert.NotEqual(t, ka, k, tc.name)
		assert.NotEqual(t, ka.String(), k.String(), "%s: the in-flight key too", tc.name)
	}
}

// BenchmarkCacheMemory reports the memory a full Cache of 100,000 answers
// holds: each the answer to an A question for a name of its own, as an
// upstream gives it (parsed from the wire, EDNS0 record included), with
// a CNAME to a CDN name and two A records. Run it with
//
//	go test ./dnsfilter -run '^$' -bench CacheMemory -benchtime 1x
func BenchmarkCacheMemory(b *testing.B) {
	const names = 100_000
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := NewCache(names, time.Hour)
		for i := range names {
			k, m := upstreamAnswer(b, i)
			c.put(k, m, t0)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if c.Len() != names {
			b.Fatalf("%d answers kept, want %d", c.Len(), names)
		}
		held := float64(after.HeapAlloc - before.HeapAlloc)
		b.ReportMetric(held/names, "B/name")
		b.ReportMetric(held/(1<<20), "MiB")
		runtime.KeepAlive(c)
	}
}

// upstreamAnswer is answer i of BenchmarkCacheMemory, parsed from the
// wire as the Upstream gives it, and its key.
func upstreamAnswer(b *testing.B, i int) (cacheKey, *dns.Msg) {
	name := fmt.Sprintf("www%d.service%d.example.com.", i, i%1000)
	edge := fmt.Sprintf("edge%d.cdn.example.net.", i%5000)
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	q.SetEdns0(1232, false)
	m := new(dns.Msg)
	m.SetReply(q)
	m.SetEdns0(1232, false)
	m.Answer = []dns.RR{
		&dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 300}, Target: edge},
		&dns.A{Hdr: dns.RR_Header{Name: edge, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, byte(i)).To4()},
		&dns.A{Hdr: dns.RR_Header{Name: edge, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(198, 51, 100, byte(i)).To4()},
	}
	wire, err := m.Pack()
	if err != nil {
		b.Fatal(err)
	}
	got := new(dns.Msg)
	if err := got.Unpack(wire); err != nil {
		b.Fatal(err)
	}
	return keyOf(q, "udp"), got
}
