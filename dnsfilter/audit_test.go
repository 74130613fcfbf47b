package dnsfilter_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/dnsfilter"
	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/policy"
)

// The live policy, and the resolver's view of it, say when they are only
// audited.
var (
	_ dnsfilter.Auditor = (*policy.Holder)(nil)
	_ dnsfilter.Auditor = policy.Names{}
)

// auditZone has an answer for each refusal that audit mode waives.
var auditZone = []string{
	"blocked.test. 60 IN A 198.51.100.1",
	"deny.example.org. 60 IN A 192.0.2.20",
	"a.b.c.example.org. 60 IN A 192.0.2.21",
	"abcdefghijklmnopqrstu.example.org. 60 IN A 192.0.2.22",
	"a.b.c.example.net. 60 IN A 192.0.2.23",
	`null.example.org. 60 IN NULL \# 4 deadbeef`,
	`big.example.org. 60 IN TXT "0123456789012345678901234567890123456789"`,
	"big.example.org. 60 IN A 192.0.2.24",
	"www.example.org. 60 IN A 192.0.2.25",
}

// auditLimits are the Limits the audit tests refuse by.
var auditLimits = dnsfilter.Limits{WildcardLabels: 2, WildcardBytes: 20, TXTBytes: 16, RefuseNULL: true}

// auditPolicy compiles the audit tests' policy file in mode: a wildcard,
// a wildcard on one port, a denied name under the first and a denied
// single label.
func auditPolicy(t *testing.T, mode policy.Mode) *policy.Snapshot {
	t.Helper()
	p, err := policy.Parse("policy.yaml", []byte("mode: "+string(mode)+`
allowlist:
  domains: ["*.example.org", "tcp/*.example.net:443"]
denylist:
  domains: ["deny.example.org", "meta"]
`))
	require.NoError(t, err)
	s, err := policy.Compile(p)
	require.NoError(t, err)
	require.Equal(t, mode == policy.Audit, s.Audit())
	return s
}

// In audit mode every refusal that the policy decides is decided as in
// enforce mode, with the same reason, rule and detail in its one event,
// but the question is answered as an allowed one is: the upstream's own
// answer, and its addresses pinned (every port: Audited). In enforce mode
// the same question is refused.
func TestHandlerAuditWaives(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", auditZone...)
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		reason events.Reason
		rule   string // the event's
		detail string
		rcode  int    // in enforce mode
		asked  bool   // in enforce mode: the refusal is of the answer
		pinned string // the answer's address; "" for none
		pinBy  string // the Answer's Rule
	}{
		{"not allowlisted", "blocked.test.", dns.TypeA, events.ReasonNotAllowlisted, "", "",
			dns.RcodeNameError, false, "198.51.100.1", ""},
		{"denied", "deny.example.org.", dns.TypeA, events.ReasonDenied, "deny.example.org", "",
			dns.RcodeNameError, false, "192.0.2.20", ""}, // no rule allows a denied name
		{"too deep", "a.b.c.example.org.", dns.TypeA, events.ReasonTooLong, "*.example.org", "3 labels under *.example.org, more than 2",
			dns.RcodeNameError, false, "192.0.2.21", "*.example.org"},
		{"too long", "abcdefghijklmnopqrstu.example.org.", dns.TypeA, events.ReasonTooLong, "*.example.org", "21 bytes under *.example.org, more than 20",
			dns.RcodeNameError, false, "192.0.2.22", "*.example.org"},
		{"too deep on a port", "a.b.c.example.net.", dns.TypeA, events.ReasonTooLong, "tcp/*.example.net:443", "3 labels under tcp/*.example.net:443, more than 2",
			dns.RcodeNameError, false, "192.0.2.23", "tcp/*.example.net:443"},
		{"NULL", "null.example.org.", dns.TypeNULL, events.ReasonQueryType, "*.example.org", "NULL questions are refused",
			dns.RcodeRefused, false, "", ""},
		{"big TXT", "big.example.org.", dns.TypeANY, events.ReasonTooLong, "*.example.org", "TXT answer of 40 bytes, more than 16",
			dns.RcodeRefused, true, "192.0.2.24", "*.example.org"},
	}
	for _, tc := range tests {
		for _, network := range []string{"udp", "tcp"} {
			want := query(t, network, up.Addr, tc.qname, tc.qtype, 1232) // the upstream's own answer
			require.Equal(t, dns.RcodeSuccess, want.Rcode, tc.qname)
			require.NotEmpty(t, want.Answer, tc.qname)

			for _, mode := range []policy.Mode{policy.Enforce, policy.Audit} {
				t.Run(tc.name+"/"+network+"/"+string(mode), func(t *testing.T) {
					var live policy.Holder
					live.Store(auditPolicy(t, mode))
					var rec recorder
					var pinned pins
					filter := startFilter(t, &dnsfilter.Handler{
						Policy:   policy.Names{Holder: &live},
						Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
						Limits:   auditLimits,
						Events:   &rec,
						OnAnswer: pinned.add,
					})
					asked := len(up.seen())

					r := query(t, network, filter, tc.qname, tc.qtype, 1232)

					evs := rec.events()
					require.Len(t, evs, 1, "one event per question")
					ev := evs[0]
					assert.Equal(t, tc.reason, ev.Reason)
					assert.Equal(t, tc.rule, ev.Rule)
					assert.True(t, strings.HasPrefix(ev.Detail, tc.detail), "%q: the refusal's detail first", ev.Detail)
					assert.Equal(t, network, ev.Protocol)
					if mode == policy.Enforce {
						assert.Equal(t, tc.detail, ev.Detail)
						assert.Equal(t, events.Blocked, ev.Action)
						assert.Equal(t, tc.rcode, r.Rcode)
						assert.Empty(t, r.Answer)
						require.NotNil(t, ede(r))
						assert.Contains(t, ede(r).ExtraText, string(tc.reason))
						assert.Equal(t, tc.asked, len(up.seen()) > asked, "asked upstream")
						assert.Empty(t, pinned.answers(), "nothing pinned")
						return
					}
					assert.Equal(t, events.WouldBlock, ev.Action)
					assert.Equal(t, dns.RcodeSuccess, r.Rcode)
					assert.Nil(t, ede(r), "the upstream's answer")
					assert.Equal(t, rrStrings(want.Answer), rrStrings(r.Answer))
					assert.Len(t, up.seen(), asked+1, "asked upstream once")
					if tc.pinned == "" {
						assert.Empty(t, pinned.answers(), "no address, no call")
						return
					}
					// The answer's addresses are in the detail, as an
					// allowed answer's are: suggest ties connections to
					// them back to the name.
					assert.Contains(t, ev.Detail, tc.pinned)
					assert.Equal(t, []dnsfilter.Answer{{
						Name:    strings.TrimSuffix(tc.qname, "."),
						QType:   tc.qtype,
						Rule:    tc.pinBy,
						Audited: true,
						Addrs:   []dnsfilter.AddrTTL{{Addr: netip.MustParseAddr(tc.pinned), TTL: 60 * time.Second}},
					}}, pinned.answers())
				})
			}
		}
	}
}

// What protects the filter itself holds in audit mode: a client over its
// rate is refused, waived questions counting against it as they too go
// upstream, and a malformed query is refused without going anywhere.
func TestHandlerAuditKeepsRateAndMalformed(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", auditZone...)
	var live policy.Holder
	live.Store(auditPolicy(t, policy.Audit))
	var rec recorder
	var pinned pins
	filter := startFilter(t, &dnsfilter.Handler{
		Policy:   policy.Names{Holder: &live},
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
		Limits:   dnsfilter.Limits{Rate: 0.01, Burst: 3}, // no token back within the test
		Events:   &rec,
		OnAnswer: pinned.add,
	})
	last := func() events.Event {
		evs := rec.events()
		require.NotEmpty(t, evs)
		return evs[len(evs)-1]
	}

	for i, name := range []string{"blocked.test.", "www.example.org.", "blocked.test."} {
		assert.Equal(t, dns.RcodeSuccess, query(t, "udp", filter, name, dns.TypeA, 0).Rcode, "query %d", i)
	}
	assert.Equal(t, events.WouldBlock, last().Action)
	r := query(t, "udp", filter, "blocked.test.", dns.TypeA, 1232)
	assert.Equal(t, dns.RcodeRefused, r.Rcode, "the fourth, over the burst")
	require.NotNil(t, ede(r))
	assert.Equal(t, dns.ExtendedErrorCodeProhibited, ede(r).InfoCode)
	assert.Equal(t, events.Blocked, last().Action)
	assert.Equal(t, events.ReasonRateLimited, last().Reason)
	assert.Len(t, up.seen(), 3, "the fourth not asked upstream")
	assert.Len(t, pinned.answers(), 3)

	two := new(dns.Msg)
	two.SetQuestion("blocked.test.", dns.TypeA)
	two.Question = append(two.Question, dns.Question{Name: "www.example.org.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	update := new(dns.Msg)
	update.SetUpdate("blocked.test.")
	for _, m := range []*dns.Msg{two, update} {
		before := len(rec.events())
		r := exchange(t, "udp", filter, m)
		assert.NotEqual(t, dns.RcodeSuccess, r.Rcode)
		assert.Len(t, rec.events(), before+1)
		assert.Equal(t, events.Blocked, last().Action)
		assert.Equal(t, events.ReasonMalformed, last().Reason)
	}
	assert.Len(t, up.seen(), 3, "nothing malformed asked upstream")
	assert.Len(t, pinned.answers(), 3)
}

// Answers given in audit mode are kept in the Cache like allowed ones, but
// a switch to enforce mode (a new snapshot whose only change is its mode)
// refuses the names again at once: the policy is asked before the Cache,
// and an answer's own limits are applied to a kept answer each time.
// Switched back, the kept answers are given again without asking upstream.
func TestHandlerAuditThenEnforceWithCache(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", auditZone...)
	var live policy.Holder
	live.Store(auditPolicy(t, policy.Audit))
	var rec recorder
	var pinned pins
	cache := dnsfilter.NewCache(100, time.Hour)
	filter := startFilter(t, &dnsfilter.Handler{
		Policy:   policy.Names{Holder: &live},
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
		Limits:   auditLimits,
		Cache:    cache,
		Events:   &rec,
		OnAnswer: pinned.add,
	})
	questions := []struct {
		qname   string
		qtype   uint16
		refused int // rcode in enforce mode
		reason  events.Reason
	}{
		{"blocked.test.", dns.TypeA, dns.RcodeNameError, events.ReasonNotAllowlisted},
		{"big.example.org.", dns.TypeANY, dns.RcodeRefused, events.ReasonTooLong},
	}
	ask := func(mode policy.Mode) {
		t.Helper()
		for _, q := range questions {
			before, pinsBefore := len(rec.events()), len(pinned.answers())
			r := query(t, "udp", filter, q.qname, q.qtype, 1232)
			evs := rec.events()
			require.Len(t, evs, before+1, "%s %s: one event", mode, q.qname)
			ev := evs[before]
			assert.Equal(t, q.reason, ev.Reason, "%s %s", mode, q.qname)
			if mode == policy.Audit {
				assert.Equal(t, dns.RcodeSuccess, r.Rcode, "%s %s", mode, q.qname)
				assert.NotEmpty(t, r.Answer, "%s %s", mode, q.qname)
				assert.Equal(t, events.WouldBlock, ev.Action, "%s %s", mode, q.qname)
				require.Len(t, pinned.answers(), pinsBefore+1, "%s %s: pinned", mode, q.qname)
				assert.True(t, pinned.answers()[pinsBefore].Audited)
			} else {
				assert.Equal(t, q.refused, r.Rcode, "%s %s", mode, q.qname)
				assert.Empty(t, r.Answer, "%s %s: nothing from the cache", mode, q.qname)
				assert.Equal(t, events.Blocked, ev.Action, "%s %s", mode, q.qname)
				assert.Len(t, pinned.answers(), pinsBefore, "%s %s: not pinned", mode, q.qname)
			}
		}
	}

	ask(policy.Audit)
	ask(policy.Audit)
	assert.Len(t, up.seen(), 2, "the second round from the cache")
	assert.Equal(t, 2, cache.Len())

	live.Store(auditPolicy(t, policy.Enforce))
	ask(policy.Enforce)
	assert.Len(t, up.seen(), 2, "enforce mode asks nobody")

	live.Store(auditPolicy(t, policy.Audit))
	ask(policy.Audit)
	assert.Len(t, up.seen(), 2, "the kept answers again")
}

// With LocalNames, audit mode answers a denied single-label name as it
// answers a local name: from LocalUpstream, its addresses not pinned (no
// rule allows them, and a local name's never are).
func TestHandlerAuditLocalNames(t *testing.T) {
	local := startUpstream(t, "127.0.0.1:0", "meta. 600 IN A 169.254.169.254")
	ext := startUpstream(t, "127.0.0.1:0", auditZone...)
	var live policy.Holder
	live.Store(auditPolicy(t, policy.Audit))
	var rec recorder
	var pinned pins
	filter := startFilter(t, &dnsfilter.Handler{
		Policy:        policy.Names{Holder: &live},
		Upstream:      &dnsfilter.Upstream{Servers: []netip.AddrPort{ext.Addr}},
		LocalUpstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{local.Addr}},
		LocalNames:    true,
		Events:        &rec,
		OnAnswer:      pinned.add,
	})
	r := query(t, "udp", filter, "meta.", dns.TypeA, 1232)
	assert.Equal(t, dns.RcodeSuccess, r.Rcode)
	assert.Equal(t, []string{"169.254.169.254"}, addrs(r.Answer))
	assert.Len(t, local.seen(), 1)
	assert.Empty(t, ext.seen())
	evs := rec.events()
	require.Len(t, evs, 1)
	assert.Equal(t, events.WouldBlock, evs[0].Action)
	assert.Equal(t, events.ReasonDenied, evs[0].Reason)
	assert.Equal(t, "meta", evs[0].Rule)
	assert.Empty(t, pinned.answers())
}

// rrStrings returns rrs in presentation format.
func rrStrings(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = rr.String()
	}
	return out
}
