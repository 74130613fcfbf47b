package dnsfilter_test

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/g0lab/g0efilter/dnsfilter"
	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/policy"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var zone = []string{
	"example.com. 300 IN A 192.0.2.1",
	"example.com. 300 IN AAAA 2001:db8::1",
	"example.com. 300 IN TXT \"v=spf1 -all\"",
	"example.com. 300 IN MX 10 mail.example.com.",
	"www.example.org. 60 IN A 192.0.2.2",
	"a.b.example.org. 60 IN A 192.0.2.3",
	"example.org. 60 IN A 192.0.2.4",
	"blocked.test. 60 IN A 198.51.100.1",
	"blocked.test. 60 IN TXT \"secret\"",
}

// startFilter serves h on loopback until the test ends.
func startFilter(t testing.TB, h *dnsfilter.Handler) netip.AddrPort {
	t.Helper()
	return serve(t, &dnsfilter.Server{
		Addrs:   []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")},
		Handler: h,
	})[0]
}

func TestHandlerAllowed(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		for _, tc := range []struct {
			qtype uint16
			want  []string
		}{
			{dns.TypeA, []string{"192.0.2.1"}},
			{dns.TypeAAAA, []string{"2001:db8::1"}},
		} {
			t.Run(network+"/"+dns.TypeToString[tc.qtype], func(t *testing.T) {
				up := startUpstream(t, "127.0.0.1:0", zone...)
				var rec recorder
				filter := startFilter(t, &dnsfilter.Handler{
					Policy:   allow(t, "example.com"),
					Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
					Events:   &rec,
				})

				r := query(t, network, filter, "example.com.", tc.qtype, 0)
				assert.Equal(t, dns.RcodeSuccess, r.Rcode)
				assert.Equal(t, tc.want, addrs(r.Answer))
				assert.Nil(t, r.IsEdns0(), "no OPT to a client without EDNS0")

				require.Len(t, up.seen(), 1)
				assert.Equal(t, network, up.seen()[0].net, "forwarded over the client's transport")

				evs := rec.events()
				require.Len(t, evs, 1)
				ev := evs[0]
				assert.Equal(t, events.DNS, ev.Component)
				assert.Equal(t, events.Allowed, ev.Action)
				assert.Equal(t, events.ReasonAllowlisted, ev.Reason)
				assert.Equal(t, network, ev.Protocol)
				assert.Equal(t, "example.com", ev.Name)
				assert.Equal(t, dns.TypeToString[tc.qtype], ev.QType)
				assert.Equal(t, "example.com", ev.Rule)
				assert.Equal(t, netip.MustParseAddr("127.0.0.1"), ev.Source.Addr())
				assert.NotZero(t, ev.Source.Port())
				assert.NotZero(t, ev.Flow)
				assert.False(t, ev.Time.IsZero())
				assert.Equal(t, tc.want[0], ev.Detail)
			})
		}
	}
}

func TestHandlerBlocked(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", zone...)
	var rec recorder
	filter := startFilter(t, &dnsfilter.Handler{
		Policy:   allow(t, "example.com"),
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
		Events:   &rec,
	})

	for _, network := range []string{"udp", "tcp"} {
		r := query(t, network, filter, "blocked.test.", dns.TypeA, 1232)
		assert.Equal(t, dns.RcodeNameError, r.Rcode, network)
		assert.Empty(t, r.Answer)
		assert.Equal(t, "blocked.test.", r.Question[0].Name)
		e := ede(r)
		require.NotNil(t, e, "Extended DNS Error")
		assert.Equal(t, dns.ExtendedErrorCodeBlocked, e.InfoCode)
		assert.Contains(t, e.ExtraText, "not allowlisted")
	}

	// Without EDNS0 the answer may carry no OPT record, so no EDE.
	r := query(t, "udp", filter, "blocked.test.", dns.TypeA, 0)
	assert.Equal(t, dns.RcodeNameError, r.Rcode)
	assert.Nil(t, r.IsEdns0())

	assert.Empty(t, up.seen(), "a blocked query must not reach the upstream")
	evs := rec.events()
	require.Len(t, evs, 3)
	for _, ev := range evs {
		assert.Equal(t, events.Blocked, ev.Action)
		assert.Equal(t, events.ReasonNotAllowlisted, ev.Reason)
		assert.Equal(t, "blocked.test", ev.Name)
		assert.Equal(t, "A", ev.QType)
		assert.Empty(t, ev.Rule)
	}
}

func TestHandlerMatching(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", zone...)
	var rec recorder
	filter := startFilter(t, &dnsfilter.Handler{
		Policy:   allow(t, "*.example.org"),
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
		Events:   &rec,
	})
	for _, tc := range []struct {
		qname     string
		allowed   bool
		eventName string
	}{
		{"www.example.org.", true, "www.example.org"},
		{"a.b.example.org.", true, "a.b.example.org"}, // any depth
		{"WWW.Example.ORG.", true, "www.example.org"}, // case
		{"example.org.", false, "example.org"},        // not the apex
		{"example.org.evil.test.", false, "example.org.evil.test"},
		{"wwwexample.org.", false, "wwwexample.org"},
	} {
		t.Run(tc.qname, func(t *testing.T) {
			before := len(up.seen())
			r := query(t, "udp", filter, tc.qname, dns.TypeA, 0)
			evs := rec.events()
			ev := evs[len(evs)-1]
			assert.Equal(t, tc.eventName, ev.Name)
			if tc.allowed {
				assert.Equal(t, dns.RcodeSuccess, r.Rcode)
				assert.NotEmpty(t, r.Answer)
				assert.Equal(t, tc.qname, r.Question[0].Name, "question as the client asked it")
				assert.Equal(t, events.Allowed, ev.Action)
				assert.Equal(t, "*.example.org", ev.Rule)
				assert.Len(t, up.seen(), before+1)
			} else {
				assert.Equal(t, dns.RcodeNameError, r.Rcode)
				assert.Equal(t, events.Blocked, ev.Action)
				assert.Len(t, up.seen(), before)
			}
		})
	}
}

// The name decides, whatever the type: data must not leave through TXT or
// MX queries for a blocked name, and an allowed name gets any type.
func TestHandlerDecidesByNameForEveryType(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", zone...)
	var rec recorder
	filter := startFilter(t, &dnsfilter.Handler{
		Policy:   allow(t, "example.com"),
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
		Events:   &rec,
	})
	for _, qtype := range []uint16{dns.TypeANY, dns.TypeTXT, dns.TypeMX, dns.TypeSRV, dns.TypeHTTPS, dns.TypeCNAME} {
		name := dns.TypeToString[qtype]
		t.Run(name, func(t *testing.T) {
			before := len(up.seen())
			r := query(t, "tcp", filter, "blocked.test.", qtype, 1232)
			assert.Equal(t, dns.RcodeNameError, r.Rcode)
			assert.Empty(t, r.Answer)
			assert.Len(t, up.seen(), before, "blocked %s query forwarded", name)

			r = query(t, "tcp", filter, "example.com.", qtype, 1232)
			assert.Equal(t, dns.RcodeSuccess, r.Rcode)
			require.Len(t, up.seen(), before+1)
			assert.Equal(t, qtype, up.seen()[before].qtype)

			evs := rec.events()
			require.GreaterOrEqual(t, len(evs), 2)
			assert.Equal(t, events.Blocked, evs[len(evs)-2].Action)
			assert.Equal(t, name, evs[len(evs)-2].QType)
			assert.Equal(t, events.Allowed, evs[len(evs)-1].Action)
			assert.Equal(t, name, evs[len(evs)-1].QType)
		})
	}
	// An allowed name's records of any type come back.
	r := query(t, "udp", filter, "example.com.", dns.TypeTXT, 0)
	require.Len(t, r.Answer, 1)
	assert.Equal(t, []string{"v=spf1 -all"}, r.Answer[0].(*dns.TXT).Txt)
}

// bigZone has 40 A records for big.example.com: about 1.1 kB, more than
// 512 bytes.
func bigZone() []string {
	var z []string
	for i := range 40 {
		z = append(z, "big.example.com. 60 IN A 192.0.2."+itoa(i+1))
	}
	return z
}

func itoa(i int) string { return netip.AddrFrom4([4]byte{0, 0, 0, byte(i)}).String()[len("0.0.0."):] }

func TestHandlerTruncatedThenTCP(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", bigZone()...)
	var rec recorder
	filter := startFilter(t, &dnsfilter.Handler{
		Policy:   allow(t, "*.example.com"),
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
		Events:   &rec,
	})

	r := query(t, "udp", filter, "big.example.com.", dns.TypeA, 0)
	assert.True(t, r.Truncated, "TC passed through to the client")
	assert.Less(t, len(r.Answer), 40)
	r.Compress = true
	packed, err := r.Pack()
	require.NoError(t, err)
	assert.LessOrEqual(t, len(packed), dns.MinMsgSize)

	// The client retries over TCP, as a stub resolver does on TC.
	r = query(t, "tcp", filter, "big.example.com.", dns.TypeA, 0)
	assert.False(t, r.Truncated)
	assert.Len(t, r.Answer, 40)

	s := up.seen()
	require.Len(t, s, 2)
	assert.Equal(t, "udp", s[0].net)
	assert.Equal(t, "tcp", s[1].net)
	evs := rec.events()
	require.Len(t, evs, 2)
	assert.Contains(t, evs[0].Detail, "truncated")
	assert.Equal(t, "udp", evs[0].Protocol)
	assert.Equal(t, "tcp", evs[1].Protocol)
}

func TestHandlerEDNSBufferPassesThrough(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", bigZone()...)
	filter := startFilter(t, &dnsfilter.Handler{
		Policy:   allow(t, "big.example.com"),
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
	})

	r := query(t, "udp", filter, "big.example.com.", dns.TypeA, 4096)
	assert.False(t, r.Truncated)
	assert.Len(t, r.Answer, 40)
	require.NotNil(t, r.IsEdns0())
	require.Len(t, up.seen(), 1)
	assert.Equal(t, uint16(4096), up.seen()[0].udpSize, "the client's EDNS0 buffer size reaches the upstream")
}

// Only the question and the EDNS0 record go upstream.
func TestHandlerForwardsQuestionAndEDNS0Only(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", zone...)
	filter := startFilter(t, &dnsfilter.Handler{
		Policy:   allow(t, "example.com"),
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
	})
	m := new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeA)
	m.CheckingDisabled = true
	m.SetEdns0(1400, true)
	smuggled, err := dns.NewRR("evil.test. 60 IN TXT \"payload\"")
	require.NoError(t, err)
	m.Ns = append(m.Ns, smuggled)

	r := exchange(t, "udp", filter, m)
	assert.Equal(t, dns.RcodeSuccess, r.Rcode)
	require.NotNil(t, r.IsEdns0())
	assert.True(t, r.IsEdns0().Do(), "DO bit of the upstream's answer passed through")
	s := up.seen()
	require.Len(t, s, 1)
	assert.Equal(t, uint16(1400), s[0].udpSize)
	assert.True(t, s[0].do)
	assert.Zero(t, s[0].records)
}

func TestHandlerUpstreamDown(t *testing.T) {
	var rec recorder
	filter := startFilter(t, &dnsfilter.Handler{
		Policy: allow(t, "example.com"),
		Upstream: &dnsfilter.Upstream{
			Servers: []netip.AddrPort{blackHole(t), blackHole(t), blackHole(t)},
			Timeout: 200 * time.Millisecond,
		},
		Timeout: 300 * time.Millisecond,
		Events:  &rec,
	})
	start := time.Now()
	r := query(t, "udp", filter, "example.com.", dns.TypeA, 1232)
	elapsed := time.Since(start)
	assert.Equal(t, dns.RcodeServerFailure, r.Rcode)
	assert.Less(t, elapsed, 2*time.Second, "SERVFAIL within the handler's timeout")
	e := ede(r)
	require.NotNil(t, e)
	assert.Equal(t, dns.ExtendedErrorCodeNoReachableAuthority, e.InfoCode)

	evs := rec.events()
	require.Len(t, evs, 1)
	assert.Equal(t, events.Error, evs[0].Action)
	assert.Equal(t, events.ReasonDial, evs[0].Reason)
	assert.Equal(t, "example.com", evs[0].Rule)
	assert.NotEmpty(t, evs[0].Detail)
}

func TestHandlerNoUpstream(t *testing.T) {
	var rec recorder
	filter := startFilter(t, &dnsfilter.Handler{Policy: allow(t, "example.com"), Events: &rec})
	r := query(t, "udp", filter, "example.com.", dns.TypeA, 0)
	assert.Equal(t, dns.RcodeServerFailure, r.Rcode)
	require.Len(t, rec.events(), 1)
	assert.Equal(t, events.Error, rec.events()[0].Action)
}

// A zero Handler allows nothing.
func TestHandlerZeroAllowsNothing(t *testing.T) {
	filter := startFilter(t, &dnsfilter.Handler{})
	r := query(t, "udp", filter, "example.com.", dns.TypeA, 0)
	assert.Equal(t, dns.RcodeNameError, r.Rcode)
}

func TestHandlerMalformed(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", zone...)
	var rec recorder
	filter := startFilter(t, &dnsfilter.Handler{
		Policy:   allow(t, "example.com"),
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
		Events:   &rec,
	})

	none := new(dns.Msg)
	none.Id = dns.Id()
	two := new(dns.Msg)
	two.SetQuestion("example.com.", dns.TypeA)
	two.Question = append(two.Question, dns.Question{Name: "example.com.", Qtype: dns.TypeAAAA, Qclass: dns.ClassINET})
	update := new(dns.Msg)
	update.SetUpdate("example.com.")

	for _, tc := range []struct {
		name  string
		m     *dns.Msg
		rcode int
	}{
		{"no question", none, dns.RcodeFormatError},
		{"two questions", two, dns.RcodeFormatError},
		{"update", update, dns.RcodeNotImplemented},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, network := range []string{"udp", "tcp"} {
				r := exchange(t, network, filter, tc.m)
				assert.Equal(t, tc.rcode, r.Rcode, network)
				assert.True(t, r.Response)
			}
		})
	}
	assert.Empty(t, up.seen())
	evs := rec.events()
	require.Len(t, evs, 6)
	for _, ev := range evs {
		assert.Equal(t, events.Blocked, ev.Action)
		assert.Equal(t, events.ReasonMalformed, ev.Reason)
		assert.NotEmpty(t, ev.Detail)
	}
}

func TestHandlerOnAnswerFollowsCNAME(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0",
		"www.example.com. 300 IN CNAME edge.cdn.example.net.",
		"edge.cdn.example.net. 120 IN CNAME e1.cdn.example.net.",
		"e1.cdn.example.net. 20 IN A 192.0.2.10",
		"e1.cdn.example.net. 30 IN A 192.0.2.11",
		"e1.cdn.example.net. 40 IN AAAA 2001:db8::10",
	)
	var (
		mu  sync.Mutex
		got []dnsfilter.Answer
	)
	answers := func() []dnsfilter.Answer {
		mu.Lock()
		defer mu.Unlock()
		return append([]dnsfilter.Answer(nil), got...)
	}
	filter := startFilter(t, &dnsfilter.Handler{
		Policy:   allow(t, "www.example.com"),
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
		OnAnswer: func(a dnsfilter.Answer) {
			mu.Lock()
			got = append(got, a)
			mu.Unlock()
		},
	})

	r := query(t, "udp", filter, "WWW.example.com.", dns.TypeA, 0)
	assert.Len(t, r.Answer, 4)
	r = query(t, "tcp", filter, "www.example.com.", dns.TypeAAAA, 0)
	assert.Len(t, r.Answer, 3)

	// The hook ran before the answers were written.
	res := answers()
	require.Len(t, res, 2)
	assert.Equal(t, dnsfilter.Answer{
		Name:  "www.example.com",
		QType: dns.TypeA,
		Rule:  "www.example.com",
		Addrs: []dnsfilter.AddrTTL{
			{Addr: netip.MustParseAddr("192.0.2.10"), TTL: 20 * time.Second},
			{Addr: netip.MustParseAddr("192.0.2.11"), TTL: 30 * time.Second},
		},
	}, res[0])
	assert.Equal(t, []dnsfilter.AddrTTL{{Addr: netip.MustParseAddr("2001:db8::10"), TTL: 40 * time.Second}}, res[1].Addrs)

	// No addresses, no call.
	r = query(t, "udp", filter, "www.example.com.", dns.TypeMX, 0)
	assert.Equal(t, dns.RcodeSuccess, r.Rcode)
	assert.Len(t, answers(), 2)
}

// A reload of the live policy applies to the next query.
func TestHandlerFollowsReload(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", zone...)
	live := allow(t, "example.com")
	filter := startFilter(t, &dnsfilter.Handler{
		Policy:   live,
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
	})
	assert.Equal(t, dns.RcodeNameError, query(t, "udp", filter, "www.example.org.", dns.TypeA, 0).Rcode)

	snap, err := policy.Compile(&policy.Policy{Domains: []string{"example.com", "www.example.org"}})
	require.NoError(t, err)
	live.Store(snap)
	assert.Equal(t, dns.RcodeSuccess, query(t, "udp", filter, "www.example.org.", dns.TypeA, 0).Rcode)
}

// An upstream's NXDOMAIN for an allowed name is relayed as it is, and
// does not count as a failure.
func TestHandlerRelaysUpstreamNXDOMAIN(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", zone...)
	var rec recorder
	filter := startFilter(t, &dnsfilter.Handler{
		Policy:   allow(t, "*.example.com"),
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
		Events:   &rec,
	})
	r := query(t, "udp", filter, "nope.example.com.", dns.TypeA, 1232)
	assert.Equal(t, dns.RcodeNameError, r.Rcode)
	assert.Nil(t, ede(r), "not blocked: the upstream's answer")
	require.Len(t, r.Ns, 1, "SOA passed through")
	evs := rec.events()
	require.Len(t, evs, 1)
	assert.Equal(t, events.Allowed, evs[0].Action)
	assert.True(t, strings.HasPrefix(evs[0].Detail, "NXDOMAIN"))
}

// pins records the answers a Handler passes to its OnAnswer hook.
type pins struct {
	mu  sync.Mutex
	got []dnsfilter.Answer
}

func (p *pins) add(a dnsfilter.Answer) {
	p.mu.Lock()
	p.got = append(p.got, a)
	p.mu.Unlock()
}

func (p *pins) answers() []dnsfilter.Answer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]dnsfilter.Answer(nil), p.got...)
}

// With LocalNames, a single-label name that the policy does not allow is
// resolved upstream, as Docker's resolver answers Compose names, and its
// addresses are not pinned; a longer name is refused either way, and an
// allowlisted one is still pinned.
func TestHandlerLocalNames(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", append([]string{
		"db. 600 IN A 172.18.0.5",
		"dashboard. 600 IN AAAA fd00:18::5",
		"db.evil.test. 60 IN A 198.51.100.7",
	}, zone...)...)
	tests := []struct {
		qname     string
		qtype     uint16
		local     bool // a local name: forwarded only with LocalNames
		allowed   bool // allowlisted: forwarded either way, and pinned
		rcode     int  // the upstream's answer, when forwarded
		eventName string
		detail    string // the event's, when forwarded
	}{
		{"db.", dns.TypeA, true, false, dns.RcodeSuccess, "db", "172.18.0.5"},
		{"DB.", dns.TypeA, true, false, dns.RcodeSuccess, "db", "172.18.0.5"},
		{"dashboard.", dns.TypeAAAA, true, false, dns.RcodeSuccess, "dashboard", "fd00:18::5"},
		{"db.", dns.TypeTXT, true, false, dns.RcodeSuccess, "db", ""},
		{"nope.", dns.TypeA, true, false, dns.RcodeNameError, "nope", "NXDOMAIN"},
		{"db.evil.test.", dns.TypeA, false, false, 0, "db.evil.test", ""},
		{`a\.b.`, dns.TypeA, false, false, 0, `a\.b`, ""}, // one label on the wire, two in text
		{`a\ b.`, dns.TypeA, false, false, 0, `a\ b`, ""},
		{".", dns.TypeNS, false, false, 0, ".", ""},
		{"example.com.", dns.TypeA, false, true, dns.RcodeSuccess, "example.com", "192.0.2.1"},
	}
	for _, localNames := range []bool{false, true} {
		var rec recorder
		var pinned pins
		filter := startFilter(t, &dnsfilter.Handler{
			Policy:     allow(t, "example.com"),
			Upstream:   &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
			LocalNames: localNames,
			Events:     &rec,
			OnAnswer:   pinned.add,
		})
		for _, tc := range tests {
			name := tc.qname + "/" + dns.TypeToString[tc.qtype]
			if localNames {
				name += "/LocalNames"
			}
			t.Run(name, func(t *testing.T) {
				seenBefore, evsBefore, pinsBefore := len(up.seen()), len(rec.events()), len(pinned.answers())
				r := query(t, "udp", filter, tc.qname, tc.qtype, 1232)

				evs := rec.events()
				require.Len(t, evs, evsBefore+1, "one event per query, before the answer")
				ev := evs[len(evs)-1]
				assert.Equal(t, tc.eventName, ev.Name)
				forwarded := tc.allowed || tc.local && localNames
				if !forwarded {
					assert.Equal(t, dns.RcodeNameError, r.Rcode)
					require.NotNil(t, ede(r), "refused by the filter")
					assert.Equal(t, dns.ExtendedErrorCodeBlocked, ede(r).InfoCode)
					assert.Len(t, up.seen(), seenBefore, "not sent upstream")
					assert.Equal(t, events.Blocked, ev.Action)
					assert.Equal(t, events.ReasonNotAllowlisted, ev.Reason)
					assert.Len(t, pinned.answers(), pinsBefore)
					return
				}
				assert.Equal(t, tc.rcode, r.Rcode)
				assert.Nil(t, ede(r), "the upstream's answer")
				assert.Len(t, up.seen(), seenBefore+1)
				assert.Equal(t, events.Allowed, ev.Action)
				assert.Equal(t, tc.detail, ev.Detail)
				if tc.allowed {
					assert.Equal(t, events.ReasonAllowlisted, ev.Reason)
					assert.Equal(t, "example.com", ev.Rule)
					assert.Len(t, pinned.answers(), pinsBefore+1, "an allowlisted answer is pinned")
				} else {
					assert.Equal(t, events.ReasonLocalName, ev.Reason)
					assert.Empty(t, ev.Rule)
					assert.Len(t, pinned.answers(), pinsBefore, "a local name's answer is not pinned")
				}
			})
		}
	}
}

// The denylist wins: a denied name under an allowed wildcard is refused
// without asking upstream, a single-label denied name too, and denied
// addresses of an allowed answer are not pinned.
func TestHandlerDenylist(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", append([]string{
		"meta. 600 IN A 169.254.169.254",
		"rebind.example.org. 60 IN A 169.254.169.254",
		"rebind.example.org. 60 IN A 192.0.2.9",
	}, zone...)...)
	p, err := policy.Parse("policy.yaml", []byte(
		"allowlist:\n  domains: [\"*.example.org\"]\ndenylist:\n  ips: [\"169.254.0.0/16\"]\n  domains: [\"*.b.example.org\", \"meta\"]\n"))
	require.NoError(t, err)
	s, err := policy.Compile(p)
	require.NoError(t, err)
	var pol policy.Holder
	pol.Store(s)
	var rec recorder
	var pinned pins
	filter := startFilter(t, &dnsfilter.Handler{
		Policy:     &pol,
		Upstream:   &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
		LocalNames: true,
		Events:     &rec,
		OnAnswer:   pinned.add,
	})

	for _, name := range []string{"a.b.example.org.", "meta."} {
		r := query(t, "udp", filter, name, dns.TypeA, 1232)
		assert.Equal(t, dns.RcodeNameError, r.Rcode, name)
		require.NotNil(t, ede(r), name)
		assert.Contains(t, ede(r).ExtraText, "denied", name)
		ev := rec.events()[len(rec.events())-1]
		assert.Equal(t, events.ReasonDenied, ev.Reason, name)
		assert.NotEmpty(t, ev.Rule, name)
	}
	assert.Empty(t, up.seen(), "denied names are not sent upstream")

	r := query(t, "udp", filter, "rebind.example.org.", dns.TypeA, 1232)
	assert.Equal(t, dns.RcodeSuccess, r.Rcode)
	require.Len(t, pinned.answers(), 1)
	got := pinned.answers()[0].Addrs
	require.Len(t, got, 1, "the denied address is not pinned")
	assert.Equal(t, netip.MustParseAddr("192.0.2.9"), got[0].Addr)
}

// With LocalUpstream, local names go there and allowlisted names to
// Upstream, never the other way round: Docker's 127.0.0.11 for Compose
// names, the servers behind it for the rest.
func TestHandlerLocalUpstream(t *testing.T) {
	local := startUpstream(t, "127.0.0.1:0", append([]string{"db. 600 IN A 172.18.0.5"}, zone...)...)
	ext := startUpstream(t, "127.0.0.1:0", zone...)
	filter := startFilter(t, &dnsfilter.Handler{
		Policy:        allow(t, "example.com"),
		Upstream:      &dnsfilter.Upstream{Servers: []netip.AddrPort{ext.Addr}},
		LocalUpstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{local.Addr}},
		LocalNames:    true,
	})
	r := query(t, "udp", filter, "db.", dns.TypeA, 1232)
	assert.Equal(t, dns.RcodeSuccess, r.Rcode)
	assert.Len(t, local.seen(), 1, "a local name goes to LocalUpstream")
	assert.Empty(t, ext.seen())

	r = query(t, "udp", filter, "example.com.", dns.TypeA, 1232)
	assert.Equal(t, dns.RcodeSuccess, r.Rcode)
	assert.Len(t, ext.seen(), 1, "an allowlisted name goes to Upstream")
	assert.Len(t, local.seen(), 1)

	r = query(t, "udp", filter, "blocked.test.", dns.TypeA, 1232)
	assert.Equal(t, dns.RcodeNameError, r.Rcode)
	assert.Len(t, ext.seen(), 1, "a blocked name goes nowhere")
	assert.Len(t, local.seen(), 1)
}

// The Limits refuse what only a tunnel through an allowed wildcard needs,
// each with its reason, without asking upstream: names deeper or longer
// under the wildcard (never a name an exact rule allows), NULL questions,
// TXT answers over the bound (after asking), and questions beyond a
// client's rate.
func TestHandlerLimits(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", append([]string{
		"big.example.org. 60 IN TXT \"0123456789012345678901234567890123456789\"",
		"small.example.org. 60 IN TXT \"ok\"",
		"x.a.b.example.com. 60 IN A 192.0.2.5",
	}, zone...)...)
	newFilter := func(lim dnsfilter.Limits) (netip.AddrPort, *recorder) {
		var rec recorder
		return startFilter(t, &dnsfilter.Handler{
			Policy:   allow(t, "*.example.org", "x.a.b.example.com"),
			Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
			Limits:   lim,
			Events:   &rec,
		}), &rec
	}
	filter, rec := newFilter(dnsfilter.Limits{WildcardLabels: 2, WildcardBytes: 20, TXTBytes: 16, RefuseNULL: true})
	tests := []struct {
		name      string
		qtype     uint16
		rcode     int
		reason    events.Reason
		forwarded bool
	}{
		{"a.b.example.org.", dns.TypeA, dns.RcodeSuccess, events.ReasonAllowlisted, true},
		{"x.a.b.example.org.", dns.TypeA, dns.RcodeNameError, events.ReasonTooLong, false},
		{"abcdefghijklmnopqrstu.example.org.", dns.TypeA, dns.RcodeNameError, events.ReasonTooLong, false},
		{"x.a.b.example.com.", dns.TypeA, dns.RcodeSuccess, events.ReasonAllowlisted, true}, // an exact rule
		{"www.example.org.", dns.TypeNULL, dns.RcodeRefused, events.ReasonQueryType, false},
		{"small.example.org.", dns.TypeTXT, dns.RcodeSuccess, events.ReasonAllowlisted, true},
		{"big.example.org.", dns.TypeTXT, dns.RcodeRefused, events.ReasonTooLong, true},
	}
	for _, tc := range tests {
		seen := len(up.seen())
		r := query(t, "udp", filter, tc.name, tc.qtype, 1232)
		assert.Equal(t, tc.rcode, r.Rcode, "%s %s", tc.name, dns.TypeToString[tc.qtype])
		evs := rec.events()
		ev := evs[len(evs)-1]
		assert.Equal(t, tc.reason, ev.Reason, "%s: %s", tc.name, ev.Detail)
		assert.Equal(t, tc.forwarded, len(up.seen()) > seen, "%s: asked upstream", tc.name)
		if tc.reason != events.ReasonAllowlisted {
			assert.Equal(t, events.Blocked, ev.Action, tc.name)
			assert.Empty(t, r.Answer, "%s: nothing relayed", tc.name)
			require.NotNil(t, ede(r), tc.name)
			assert.Contains(t, ede(r).ExtraText, string(tc.reason), tc.name)
		}
	}

	// A wildcard limited to a protocol and port is a wildcard all the same.
	var prec recorder
	portFilter := startFilter(t, &dnsfilter.Handler{
		Policy: ruleFunc(func(name string) (string, bool) {
			return "udp/*.example.org:5060-5061", strings.HasSuffix(name, ".example.org")
		}),
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
		Limits:   dnsfilter.Limits{WildcardLabels: 2},
		Events:   &prec,
	})
	assert.Equal(t, dns.RcodeSuccess, query(t, "udp", portFilter, "a.b.example.org.", dns.TypeA, 1232).Rcode)
	assert.Equal(t, dns.RcodeNameError, query(t, "udp", portFilter, "x.a.b.example.org.", dns.TypeA, 1232).Rcode)
	pevs := prec.events()
	assert.Equal(t, events.ReasonTooLong, pevs[len(pevs)-1].Reason)

	// The rate: five a second with bursts of five, per client; names the
	// policy refuses are answered here and not counted.
	filter, rec = newFilter(dnsfilter.Limits{Rate: 5, Burst: 5})
	for range 3 {
		assert.Equal(t, dns.RcodeNameError, query(t, "udp", filter, "blocked.test.", dns.TypeA, 0).Rcode)
	}
	for i := range 5 {
		assert.Equal(t, dns.RcodeSuccess, query(t, "udp", filter, "www.example.org.", dns.TypeA, 0).Rcode, "query %d", i)
	}
	r := query(t, "udp", filter, "www.example.org.", dns.TypeA, 1232)
	assert.Equal(t, dns.RcodeRefused, r.Rcode, "the sixth in the same second")
	evs := rec.events()
	assert.Equal(t, events.ReasonRateLimited, evs[len(evs)-1].Reason)
	require.Eventually(t, func() bool {
		return query(t, "udp", filter, "www.example.org.", dns.TypeA, 0).Rcode == dns.RcodeSuccess
	}, 2*time.Second, 50*time.Millisecond, "a token again after 200ms")
}

// The rate limit counts questions answered from the Cache as it counts
// those sent upstream: a tunnel gains nothing by asking the same name.
func TestHandlerRateLimitCountsCachedAnswers(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", zone...)
	var rec recorder
	filter := startFilter(t, &dnsfilter.Handler{
		Policy:   allow(t, "*.example.org"),
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
		Cache:    dnsfilter.NewCache(100, time.Hour),
		Limits:   dnsfilter.Limits{Rate: 0.01, Burst: 3}, // no token back within the test
		Events:   &rec,
	})
	for i := range 3 {
		assert.Equal(t, dns.RcodeSuccess, query(t, "udp", filter, "www.example.org.", dns.TypeA, 0).Rcode, "query %d", i)
	}
	assert.Len(t, up.seen(), 1, "the second and third from the cache")
	r := query(t, "udp", filter, "www.example.org.", dns.TypeA, 1232)
	assert.Equal(t, dns.RcodeRefused, r.Rcode, "the fourth, over the burst")
	require.NotNil(t, ede(r))
	assert.Equal(t, dns.ExtendedErrorCodeProhibited, ede(r).InfoCode)
	evs := rec.events()
	assert.Equal(t, events.ReasonRateLimited, evs[len(evs)-1].Reason)
	assert.Equal(t, events.Blocked, evs[len(evs)-1].Action)
}

// ruleFunc is a Policy from a function.
type ruleFunc func(name string) (string, bool)

func (f ruleFunc) MatchHost(name string) (string, bool) { return f(name) }
