package dnsfilter_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/g0lab/g0efilter/dnsfilter"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func question(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func TestUpstreamFailover(t *testing.T) {
	good := startUpstream(t, "127.0.0.1:0", zone...)
	servfail := startUpstream(t, "127.0.0.1:0", zone...)
	servfail.setRcode(dns.RcodeServerFailure)
	refused := startUpstream(t, "127.0.0.1:0", zone...)
	refused.setRcode(dns.RcodeRefused)
	wrongName := startUpstream(t, "127.0.0.1:0", zone...)
	wrongName.setModify(func(m *dns.Msg) *dns.Msg {
		m.Question[0].Name = "other.test."
		return m
	})
	slow := startUpstream(t, "127.0.0.1:0", zone...)
	slow.holdQueries(t)

	for _, tc := range []struct {
		name  string
		first netip.AddrPort
	}{
		{"unreachable", deadServer(t)},
		{"no answer", blackHole(t)},
		{"slow", slow.Addr},
		{"SERVFAIL", servfail.Addr},
		{"REFUSED", refused.Addr},
		{"answer to another question", wrongName.Addr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(good.seen())
			u := &dnsfilter.Upstream{Servers: []netip.AddrPort{tc.first, good.Addr}, Timeout: 200 * time.Millisecond}
			r, err := u.Exchange(context.Background(), question("example.com.", dns.TypeA))
			require.NoError(t, err)
			assert.Equal(t, []string{"192.0.2.1"}, addrs(r.Answer))
			assert.Len(t, good.seen(), before+1)
		})
	}
}

// NXDOMAIN is an answer, not a failure: the next server is not asked.
func TestUpstreamNXDOMAINIsFinal(t *testing.T) {
	first := startUpstream(t, "127.0.0.1:0", zone...)
	second := startUpstream(t, "127.0.0.1:0", zone...)
	u := &dnsfilter.Upstream{Servers: []netip.AddrPort{first.Addr, second.Addr}}
	r, err := u.Exchange(context.Background(), question("nope.example.com.", dns.TypeA))
	require.NoError(t, err)
	assert.Equal(t, dns.RcodeNameError, r.Rcode)
	assert.Len(t, first.seen(), 1)
	assert.Empty(t, second.seen())
}

func TestUpstreamAllFail(t *testing.T) {
	servfail := startUpstream(t, "127.0.0.1:0", zone...)
	servfail.setRcode(dns.RcodeServerFailure)
	u := &dnsfilter.Upstream{Servers: []netip.AddrPort{deadServer(t), servfail.Addr}}
	_, err := u.Exchange(context.Background(), question("example.com.", dns.TypeA))
	require.ErrorIs(t, err, dnsfilter.ErrUpstream)
	assert.ErrorContains(t, err, "SERVFAIL")
	assert.ErrorContains(t, err, servfail.Addr.String())

	_, err = new(dnsfilter.Upstream).Exchange(context.Background(), question("example.com.", dns.TypeA))
	require.ErrorIs(t, err, dnsfilter.ErrNoUpstream)
}

// The context bounds the whole exchange, whatever the per-try timeout.
func TestUpstreamContextDeadline(t *testing.T) {
	u := &dnsfilter.Upstream{Servers: []netip.AddrPort{blackHole(t), blackHole(t)}, Timeout: time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := u.Exchange(ctx, question("example.com.", dns.TypeA))
	require.ErrorIs(t, err, dnsfilter.ErrUpstream)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestUpstreamTruncation(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", bigZone()...)
	u := &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}}

	// Exchange asks again over TCP.
	r, err := u.Exchange(context.Background(), question("big.example.com.", dns.TypeA))
	require.NoError(t, err)
	assert.False(t, r.Truncated)
	assert.Len(t, r.Answer, 40)
	s := up.seen()
	require.Len(t, s, 2)
	assert.Equal(t, []string{"udp", "tcp"}, []string{s[0].net, s[1].net})

	// ExchangeNet("udp") returns the truncated answer.
	r, err = u.ExchangeNet(context.Background(), question("big.example.com.", dns.TypeA), "udp")
	require.NoError(t, err)
	assert.True(t, r.Truncated)
	assert.Len(t, up.seen(), 3)

	r, err = u.ExchangeNet(context.Background(), question("big.example.com.", dns.TypeA), "tcp")
	require.NoError(t, err)
	assert.Len(t, r.Answer, 40)
	assert.Equal(t, "tcp", up.seen()[3].net)

	_, err = u.ExchangeNet(context.Background(), question("big.example.com.", dns.TypeA), "tcp-tls")
	assert.Error(t, err)
}

func TestUpstreamIPv6(t *testing.T) {
	if !haveIPv6() {
		t.Skip("no IPv6 loopback in this environment")
	}
	up := startUpstream(t, "[::1]:0", zone...)
	u := &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}}
	r, err := u.Exchange(context.Background(), question("example.com.", dns.TypeAAAA))
	require.NoError(t, err)
	assert.Equal(t, []string{"2001:db8::1"}, addrs(r.Answer))
}

func TestAnswerAddrs(t *testing.T) {
	rrs := func(ss ...string) []dns.RR {
		var out []dns.RR
		for _, s := range ss {
			rr, err := dns.NewRR(s)
			require.NoError(t, err)
			out = append(out, rr)
		}
		return out
	}
	a := func(s string, ttl time.Duration) dnsfilter.AddrTTL {
		return dnsfilter.AddrTTL{Addr: netip.MustParseAddr(s), TTL: ttl * time.Second}
	}
	for _, tc := range []struct {
		name string
		q    string
		rrs  []dns.RR
		want []dnsfilter.AddrTTL
	}{
		{"direct", "example.com", rrs("example.com. 60 IN A 192.0.2.1", "example.com. 70 IN AAAA 2001:db8::1"),
			[]dnsfilter.AddrTTL{a("192.0.2.1", 60), a("2001:db8::1", 70)}},
		{"case and dot", "EXAMPLE.com.", rrs("Example.COM. 60 IN A 192.0.2.1"), []dnsfilter.AddrTTL{a("192.0.2.1", 60)}},
		{"chain out of order", "www.example.com",
			rrs("b.cdn.test. 30 IN A 192.0.2.2", "a.cdn.test. 60 IN CNAME b.cdn.test.", "www.example.com. 90 IN CNAME a.cdn.test."),
			[]dnsfilter.AddrTTL{a("192.0.2.2", 30)}},
		{"unrelated owner ignored", "www.example.com",
			rrs("www.example.com. 60 IN A 192.0.2.1", "evil.test. 60 IN A 198.51.100.1"), []dnsfilter.AddrTTL{a("192.0.2.1", 60)}},
		{"CNAME loop", "a.test", rrs("a.test. 60 IN CNAME b.test.", "b.test. 60 IN CNAME a.test.", "b.test. 60 IN A 192.0.2.5"),
			[]dnsfilter.AddrTTL{a("192.0.2.5", 60)}},
		{"mapped IPv6 unmapped", "example.com", rrs("example.com. 60 IN AAAA ::ffff:192.0.2.9"), []dnsfilter.AddrTTL{a("192.0.2.9", 60)}},
		{"no addresses", "example.com", rrs("example.com. 60 IN TXT \"x\""), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, dnsfilter.AnswerAddrs(tc.q, tc.rrs))
		})
	}

	// A chain of 16 links is followed, a longer one not to its end.
	var ok []string
	for i := range 16 {
		ok = append(ok, "l"+itoa(i)+".test. 60 IN CNAME l"+itoa(i+1)+".test.")
	}
	ok = append(ok, "l16.test. 60 IN A 192.0.2.16")
	assert.Equal(t, []dnsfilter.AddrTTL{a("192.0.2.16", 60)}, dnsfilter.AnswerAddrs("l0.test", rrs(ok...)))

	var long []string
	for i := range 20 {
		long = append(long, "l"+itoa(i)+".test. 60 IN CNAME l"+itoa(i+1)+".test.")
	}
	long = append(long, "l20.test. 60 IN A 192.0.2.20")
	assert.Empty(t, dnsfilter.AnswerAddrs("l0.test", rrs(long...)))
}
