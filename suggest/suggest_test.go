package suggest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/policy"
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// ev is an event at t0 plus i seconds.
func ev(i int, c events.Component, a events.Action, name, dst string) events.Event {
	e := events.Event{Time: t0.Add(time.Duration(i) * time.Second), Component: c, Action: a, Name: name, Protocol: "tcp",
		Reason: events.ReasonNotAllowlisted}
	if a == events.Allowed {
		e.Reason = events.ReasonAllowlisted
	}
	if dst != "" {
		e.Destination = netip.MustParseAddrPort(dst)
	}
	return e
}

func values(entries []Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Value)
	}
	return out
}

func observe(evs ...events.Event) *Observations {
	var o Observations
	for _, e := range evs {
		o.Add(e)
	}
	return &o
}

func TestSuggestWildcards(t *testing.T) {
	o := observe(
		ev(0, events.HTTPS, events.Blocked, "a.github.io", "198.51.100.1:443"), // github.io is a public suffix
		ev(1, events.HTTPS, events.Blocked, "b.github.io", "198.51.100.1:443"),
		ev(2, events.HTTPS, events.Blocked, "c.github.io", "198.51.100.1:443"),
		ev(3, events.HTTPS, events.Allowed, "api.example.co.uk", "198.51.100.2:443"),
		ev(4, events.HTTPS, events.Allowed, "cdn.example.co.uk", "198.51.100.2:443"),
		ev(5, events.HTTP, events.Blocked, "x.y.example.co.uk", "198.51.100.2:80"),
		ev(6, events.HTTPS, events.Allowed, "example.co.uk", "198.51.100.2:443"), // the apex: exact
		ev(7, events.DNS, events.Allowed, "one.example.net", ""),
		ev(8, events.DNS, events.Allowed, "two.example.net", ""),
	)
	got := Suggest(o, Options{})
	// Sorted by registrable domain: a.github.io is one of its own.
	assert.Equal(t, []string{"a.github.io", "b.github.io", "c.github.io",
		"*.example.co.uk", "example.co.uk", "one.example.net", "two.example.net"}, values(got))
	assert.Equal(t, []string{"api.example.co.uk", "cdn.example.co.uk", "x.y.example.co.uk"}, got[3].Covers)
	assert.Equal(t, Seen{Count: 3, Blocked: 1, First: t0.Add(3 * time.Second), Last: t0.Add(5 * time.Second)}, got[3].Seen)
	assert.Equal(t, "covers api.example.co.uk, cdn.example.co.uk, x.y.example.co.uk; seen 3 times, 1 blocked", got[3].Comment())
	assert.Equal(t, "seen 1 time, all blocked", got[0].Comment())

	got = Suggest(o, Options{WildcardMin: 2})
	assert.Contains(t, values(got), "*.example.net")
	got = Suggest(o, Options{WildcardMin: -1})
	assert.NotContains(t, values(got), "*.example.co.uk")
}

func TestSuggestIDN(t *testing.T) {
	o := observe(ev(0, events.HTTPS, events.Blocked, "xn--bcher-kva.example", "198.51.100.1:443"),
		ev(1, events.DNS, events.Blocked, "Bücher.Example.", ""))
	got := Suggest(o, Options{})
	require.Len(t, got, 1, "one name, however spelt")
	assert.Equal(t, "xn--bcher-kva.example", got[0].Value)
	assert.Equal(t, "bücher.example; seen 2 times, all blocked", got[0].Comment())
}

func TestSuggestAddressesAndPorts(t *testing.T) {
	dnsAnswer := ev(0, events.DNS, events.Allowed, "db.example.com", "")
	dnsAnswer.Detail = "198.51.100.7 2001:db8::7"
	udp := ev(4, events.Kernel, events.Blocked, "", "203.0.113.9:53")
	udp.Protocol = "udp"
	o := observe(
		dnsAnswer,
		ev(1, events.Kernel, events.Blocked, "", "198.51.100.7:5432"),  // answered for a name
		ev(2, events.Kernel, events.Blocked, "", "[2001:db8::7]:5432"), // the same name over IPv6
		ev(3, events.Kernel, events.Blocked, "", "203.0.113.9:22"),     // no name
		udp,
		ev(5, events.HTTPS, events.Blocked, "api.example.org", "198.51.100.9:8443"), // TLS on another port
	)
	got := Suggest(o, Options{})
	assert.Equal(t, []string{"db.example.com", "tcp/db.example.com:5432", "api.example.org:8443",
		"tcp/203.0.113.9:22", "udp/203.0.113.9:53"}, values(got))
	assert.Equal(t, 2, got[1].Seen.Count)

	got = Suggest(o, Options{DNSMode: true})
	assert.Equal(t, []string{"db.example.com", "api.example.org:8443", "tcp/203.0.113.9:22", "udp/203.0.113.9:53"}, values(got))
	assert.Equal(t, 3, got[0].Seen.Count, "in dns mode the name covers its connections")
}

func TestSuggestSkipsWhatIsNoReason(t *testing.T) {
	var evs []events.Event
	for i, r := range []events.Reason{events.ReasonForgedMark, events.ReasonSpoofedSource, events.ReasonDenied,
		events.ReasonMalformed, events.ReasonNoName, events.ReasonRateLimited, events.ReasonTooLong, events.ReasonRawFrame} {
		e := ev(i, events.Kernel, events.Blocked, "", "203.0.113.1:443")
		e.Reason = r
		evs = append(evs, e)
	}
	e := ev(20, events.HTTPS, events.Blocked, "evil.example", "203.0.113.1:443")
	e.Reason = events.ReasonDenied
	evs = append(evs, e,
		ev(21, events.HTTPS, events.Blocked, "*.evil.example", "203.0.113.1:443"), // a server name is never a wildcard
		ev(22, events.DNS, events.WouldBlock, "*", ""))
	o := observe(evs...)
	assert.Empty(t, Suggest(o, Options{}))
	assert.Equal(t, len(evs), o.Skipped)
}

// TestSuggestReplay: the suggested policy, compiled, allows every
// observation it was made from, and nothing the observations did not
// show.
func TestSuggestReplay(t *testing.T) {
	dnsAnswer := ev(0, events.DNS, events.Allowed, "db.example.com", "")
	dnsAnswer.Detail = "198.51.100.7"
	o := observe(dnsAnswer,
		ev(1, events.Kernel, events.Blocked, "", "198.51.100.7:5432"),
		ev(2, events.Kernel, events.Blocked, "", "203.0.113.9:22"),
		ev(3, events.HTTPS, events.Blocked, "a.example.org", "198.51.100.9:443"),
		ev(4, events.HTTPS, events.Blocked, "b.example.org", "198.51.100.9:443"),
		ev(5, events.HTTPS, events.Blocked, "c.example.org", "198.51.100.9:443"),
		ev(6, events.HTTPS, events.Blocked, "api.example.net", "198.51.100.9:8443"),
	)
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, "test", Suggest(o, Options{})))
	p, err := policy.Parse("suggested.yaml", buf.Bytes())
	require.NoError(t, err, buf.String())
	snap, err := policy.Compile(p)
	require.NoError(t, err)
	for _, name := range []string{"db.example.com", "a.example.org", "b.example.org", "c.example.org"} {
		_, ok := snap.MatchHost(name)
		assert.True(t, ok, name)
	}
	_, ok := snap.MatchHostPort("db.example.com", policy.TCP, 5432)
	assert.True(t, ok)
	_, ok = snap.MatchHostPort("api.example.net", policy.TCP, 8443)
	assert.True(t, ok)
	_, ok = snap.MatchAddrPort(netip.MustParseAddr("203.0.113.9"), policy.TCP, 22)
	assert.True(t, ok)
	// Nothing more.
	_, ok = snap.MatchAddrPort(netip.MustParseAddr("203.0.113.9"), policy.TCP, 23)
	assert.False(t, ok)
	_, ok = snap.MatchHost("api.example.net")
	assert.False(t, ok, "TLS on 8443 only")
	_, ok = snap.MatchHost("example.org")
	assert.False(t, ok, "the wildcard does not cover the apex")
	assert.Empty(t, Missing(Suggest(o, Options{}), snap, false), "the suggestion lacks nothing")
}

func TestWrite(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, "from a test\nreview it", []Entry{
		{Value: "github.com", Seen: Seen{Count: 2}},
		{Value: "tcp/203.0.113.9:22", IP: true, Seen: Seen{Count: 1, Blocked: 1}},
	}))
	assert.Equal(t, `# from a test
# review it
allowlist:
  ips:
    - "tcp/203.0.113.9:22" # seen 1 time, all blocked
  domains:
    - "github.com" # seen 2 times
`, buf.String())
	buf.Reset()
	require.NoError(t, Write(&buf, "", nil))
	assert.Equal(t, "allowlist: {}\n", buf.String())
}

func TestMissingAndDiff(t *testing.T) {
	old := []byte(`# my policy
allowlist:
  ips:
    - "1.1.1.1"
  domains:
    - "github.com"
    - "a.example.org"
`)
	p, err := policy.Parse("policy.yaml", old)
	require.NoError(t, err)
	snap, err := policy.Compile(p)
	require.NoError(t, err)
	entries := []Entry{
		{Value: "github.com"},
		{Value: "*.example.org", Covers: []string{"a.example.org", "b.example.org"}},
		{Value: "tcp/github.com:22"},
		{Value: "github.com:443"},
		{Value: "tcp/1.1.1.1:53", IP: true},
		{Value: "udp/9.9.9.9:53", IP: true},
	}
	missing := Missing(entries, snap, false)
	assert.Equal(t, []string{"*.example.org", "tcp/github.com:22", "udp/9.9.9.9:53"}, values(missing))
	assert.Equal(t, []string{"b.example.org"}, missing[0].Covers)
	assert.Equal(t, []string{"*.example.org"}, values(Missing(entries[:3], snap, true)), "in dns mode a name allows every port")

	ips, domains := Lists(missing)
	edited, err := policy.Append("policy.yaml", old, ips, domains)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, Diff(&buf, "policy.yaml", old, edited))
	assert.Equal(t, `--- policy.yaml
+++ policy.yaml (suggested)
@@ -2,6 +2,9 @@
 allowlist:
   ips:
     - "1.1.1.1"
+    - "udp/9.9.9.9:53"
   domains:
     - "github.com"
     - "a.example.org"
+    - "*.example.org"
+    - "tcp/github.com:22"
`, buf.String())
	buf.Reset()
	require.NoError(t, Diff(&buf, "policy.yaml", old, old))
	assert.Empty(t, buf.String())
}

// TestSuggestWouldBlock: in audit mode a refusal is only reported; what
// it would have refused is suggested as a blocked destination is, and
// counted apart. What is no reason to allow anything stays so.
func TestSuggestWouldBlock(t *testing.T) {
	denied := ev(3, events.HTTPS, events.WouldBlock, "evil.example", "203.0.113.1:443")
	denied.Reason = events.ReasonDenied
	bypass := ev(4, events.Kernel, events.WouldBlock, "", "203.0.113.1:443")
	bypass.Reason = events.ReasonForgedMark
	o := observe(
		ev(0, events.HTTPS, events.WouldBlock, "api.example.com", "198.51.100.1:443"),
		ev(1, events.HTTPS, events.WouldBlock, "api.example.com", "198.51.100.1:443"),
		ev(2, events.HTTPS, events.Blocked, "api.example.com", "198.51.100.1:443"),
		denied, bypass,
		ev(5, events.HTTPS, events.WouldBlock, "only.example.net", "198.51.100.2:443"),
		ev(6, events.Kernel, events.WouldBlock, "", "203.0.113.9:22"),
		ev(7, events.HTTPS, events.Allowed, "mixed.example.org", "198.51.100.3:443"),
		ev(8, events.HTTPS, events.WouldBlock, "mixed.example.org", "198.51.100.3:443"),
	)
	got := Suggest(o, Options{})
	assert.Equal(t, []string{"api.example.com", "only.example.net", "mixed.example.org", "tcp/203.0.113.9:22"}, values(got))
	assert.Equal(t, Seen{Count: 3, Blocked: 1, WouldBlock: 2, First: t0, Last: t0.Add(2 * time.Second)}, got[0].Seen)
	assert.Equal(t, "seen 3 times, 1 blocked, 2 would block", got[0].Comment())
	assert.Equal(t, "seen 1 time, all would block", got[1].Comment())
	assert.Equal(t, "seen 2 times, 1 would block", got[2].Comment())
	assert.Equal(t, "seen 1 time, all would block", got[3].Comment())
	assert.Equal(t, 2, o.Skipped, "a denied name and a forged mark, would-block or not")
	assert.Equal(t, 9, o.Events)

	// An event without a verdict is no decision.
	o = observe(events.Event{Time: t0, Component: events.HTTPS, Name: "none.example", Destination: netip.MustParseAddrPort("198.51.100.1:443")})
	assert.Empty(t, Suggest(o, Options{}))
	assert.Equal(t, 1, o.Skipped)

	// A change of mode is the filter's: not counted at all.
	o = observe(events.Event{Time: t0, Component: events.Policy, Action: events.Changed, Reason: events.ReasonAuditMode})
	assert.Zero(t, o.Events)
	assert.Zero(t, o.Skipped)
}

func TestEntryCommentNoCounts(t *testing.T) {
	assert.Equal(t, "seen 0 times", Entry{Value: "a.example"}.Comment())
}

// richObservations has every kind of destination: DNS questions and
// their answers, names through the proxies on standard and other ports,
// connections by address with and without a name, IDN, every verdict.
func richObservations() *Observations {
	answer := ev(0, events.DNS, events.Allowed, "db.example.com", "")
	answer.Detail = "198.51.100.7 2001:db8::7"
	audit := ev(1, events.DNS, events.WouldBlock, "cache.example.com", "")
	audit.Detail = "198.51.100.8"
	udp := ev(9, events.Kernel, events.Blocked, "", "203.0.113.9:53")
	udp.Protocol = "udp"
	skipped := ev(10, events.HTTPS, events.Blocked, "", "198.51.100.1:443")
	skipped.Reason = events.ReasonNoName
	return observe(answer, audit,
		ev(2, events.Kernel, events.Blocked, "", "198.51.100.7:5432"),
		ev(3, events.Kernel, events.WouldBlock, "", "[2001:db8::7]:5432"),
		ev(4, events.Kernel, events.WouldBlock, "", "198.51.100.8:6379"),
		ev(5, events.HTTPS, events.WouldBlock, "a.example.org", "198.51.100.9:443"),
		ev(6, events.HTTPS, events.Blocked, "b.example.org", "198.51.100.9:443"),
		ev(7, events.HTTP, events.Allowed, "c.example.org", "198.51.100.9:80"),
		ev(8, events.HTTPS, events.WouldBlock, "api.example.net", "198.51.100.10:8443"),
		udp, skipped,
		ev(11, events.HTTPS, events.WouldBlock, "Bücher.example", "198.51.100.11:443"),
		ev(12, events.Kernel, events.Allowed, "", "203.0.113.10:123"),
		ev(13, events.HTTPS, events.Allowed, "a.example.org", "198.51.100.12:443"),
	)
}

func TestObservationsJSON(t *testing.T) {
	o := richObservations()
	data, err := json.Marshal(o)
	require.NoError(t, err)
	var back Observations
	require.NoError(t, json.Unmarshal(data, &back))

	for _, opt := range []Options{{}, {DNSMode: true}, {WildcardMin: 2}} {
		assert.Equal(t, Suggest(o, opt), Suggest(&back, opt), "%+v", opt)
		assert.Equal(t, o.Destinations(opt), back.Destinations(opt), "%+v", opt)
	}
	assert.Equal(t, o.Events, back.Events)
	assert.Equal(t, o.Skipped, back.Skipped)
	assert.True(t, o.From.Equal(back.From) && o.To.Equal(back.To))
	again, err := json.Marshal(&back)
	require.NoError(t, err)
	assert.Equal(t, string(data), string(again), "the same bytes again")
	assert.Contains(t, string(data), `"version":1`)
	assert.Contains(t, string(data), `{"name":"a.example.org","addr":"198.51.100.12","proto":"tcp","port":443,"verdict":"allowed","count":2,"would_block":1,`)

	var empty Observations
	data, err = json.Marshal(empty)
	require.NoError(t, err)
	assert.Equal(t, `{"version":1,"events":0,"skipped":0,"destinations":[]}`, string(data))
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Empty(t, Suggest(&back, Options{}))
}

func TestObservationsJSONErrors(t *testing.T) {
	const ok = `"verdict":"blocked","count":1,"first":"2026-12-03T10:00:00Z","last":"2026-12-03T10:00:00Z"`
	for _, tc := range []struct{ name, data, err string }{
		{"not JSON", `[`, "unexpected end"},
		{"no version", `{"events":1,"destinations":[]}`, "version 0, want 1"},
		{"a later version", `{"version":2,"destinations":[]}`, "version 2, want 1"},
		{"negative counts", `{"version":1,"events":-1}`, "negative counts"},
		{"name not canonical", `{"version":1,"destinations":[{"name":"Bücher.example",` + ok + `}]}`, `destination 0: name "Bücher.example"`},
		{"any domain", `{"version":1,"destinations":[{"name":"*",` + ok + `}]}`, `name "*"`},
		{"wildcard", `{"version":1,"destinations":[{"name":"*.example.com",` + ok + `}]}`, `name "*.example.com"`},
		{"nothing", `{"version":1,"destinations":[{` + ok + `}]}`, "neither a name nor an address"},
		{"address without port", `{"version":1,"destinations":[{"addr":"198.51.100.1","proto":"tcp",` + ok + `}]}`, "neither a name nor an address"},
		{"mapped address", `{"version":1,"destinations":[{"addr":"::ffff:198.51.100.1","proto":"tcp","port":22,` + ok + `}]}`, "IPv4 form"},
		{"protocol", `{"version":1,"destinations":[{"addr":"198.51.100.1","proto":"icmp","port":22,` + ok + `}]}`, `proto "icmp"`},
		{"verdict", `{"version":1,"destinations":[{"name":"a.example","verdict":"error","count":1}]}`, "verdict error"},
		{"no verdict", `{"version":1,"destinations":[{"name":"a.example","count":1}]}`, "verdict action(0)"},
		{"counts", `{"version":1,"destinations":[{"name":"a.example","verdict":"blocked","count":1,"blocked":2}]}`, "do not add up"},
		{"times", `{"version":1,"destinations":[{"name":"a.example","verdict":"blocked","count":1,"first":"2026-12-03T10:00:00Z","last":"2026-12-02T10:00:00Z"}]}`, "do not add up"},
		{"twice", `{"version":1,"destinations":[{"name":"a.example",` + ok + `},{"name":"a.example",` + ok + `}]}`, "destination 1: listed twice"},
		{"year", `{"version":1,"from":"0000-01-01T00:00:00+01:00","destinations":[]}`, "out of range"},
		{"answer name", `{"version":1,"destinations":[],"answers":[{"addr":"198.51.100.1","names":["A.example"]}]}`, `answer 0: name "A.example"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := observe(ev(0, events.DNS, events.Allowed, "kept.example", ""))
			err := o.UnmarshalJSON([]byte(tc.data))
			require.ErrorIs(t, err, ErrFormat)
			assert.ErrorContains(t, err, tc.err)
			assert.Equal(t, []string{"kept.example"}, values(Suggest(o, Options{})), "unchanged on error")
		})
	}
}

// TestObservationsBound: a workload that asks for ever new names fills
// the bound, not memory; what is kept goes on counting.
func TestObservationsBound(t *testing.T) {
	o := &Observations{MaxDestinations: 3}
	for i, name := range []string{"a.example", "b.example", "c.example", "d.example", "e.example", "a.example"} {
		o.Add(ev(i, events.HTTPS, events.WouldBlock, name, "198.51.100.1:443"))
	}
	assert.Equal(t, []string{"a.example", "b.example", "c.example"}, values(Suggest(o, Options{})))
	assert.Equal(t, 2, o.Overflow)
	assert.Equal(t, 2, Suggest(o, Options{})[0].Seen.Count, "a.example counted twice")

	// Answers are bounded too.
	o = &Observations{MaxDestinations: 2}
	answer := ev(0, events.DNS, events.Allowed, "db.example.com", "")
	answer.Detail = "198.51.100.1 198.51.100.2 198.51.100.3"
	o.Add(answer)
	o.Add(ev(1, events.Kernel, events.Blocked, "", "198.51.100.3:5432"))
	assert.Equal(t, 1, o.Overflow, "the third answered address")
	assert.Equal(t, []string{"db.example.com", "tcp/198.51.100.3:5432"}, values(Suggest(o, Options{})),
		"a connection to an address not kept with its name is suggested by address")

	// The default bound, against a hostile workload.
	o = &Observations{}
	for i := range 2 * DefaultMaxDestinations {
		e := ev(i, events.DNS, events.WouldBlock, fmt.Sprintf("r%d.example", i), "")
		e.Detail = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		o.Add(e)
	}
	assert.Len(t, o.Destinations(Options{}), DefaultMaxDestinations)
	assert.Equal(t, DefaultMaxDestinations, o.Overflow, "the names beyond the bound; their answers were not read")
	assert.LessOrEqual(t, o.answers, DefaultMaxDestinations)

	// A reader keeps its own bound.
	data, err := json.Marshal(observe(
		ev(0, events.HTTPS, events.Blocked, "a.example", "198.51.100.1:443"),
		ev(1, events.HTTPS, events.Blocked, "b.example", "198.51.100.1:443"),
		ev(2, events.HTTPS, events.Blocked, "b.example", "198.51.100.1:443"),
	))
	require.NoError(t, err)
	small := Observations{MaxDestinations: 1}
	require.NoError(t, json.Unmarshal(data, &small))
	assert.Equal(t, []string{"a.example"}, values(Suggest(&small, Options{})))
	assert.Equal(t, 2, small.Overflow, "b.example's two events")
	assert.Equal(t, 1, small.MaxDestinations)
}

func TestDestinations(t *testing.T) {
	o := richObservations()
	type row struct {
		Verdict         events.Action
		Domain, Name    string
		Addr            string
		Proto           string
		Port            uint16
		Entry           string
		Count, Blk, Wbl int
	}
	rows := func(ds []Destination) []row {
		var out []row
		for _, d := range ds {
			a := ""
			if d.Addr.IsValid() {
				a = d.Addr.String()
			}
			out = append(out, row{d.Verdict, d.Domain, d.Name, a, d.Proto, d.Port, d.Entry, d.Seen.Count, d.Seen.Blocked, d.Seen.WouldBlock})
		}
		return out
	}
	W, B, A := events.WouldBlock, events.Blocked, events.Allowed
	assert.Equal(t, []row{
		{W, "example.com", "cache.example.com", "", "", 0, "cache.example.com", 1, 0, 1},
		{W, "example.com", "cache.example.com", "198.51.100.8", "tcp", 6379, "tcp/cache.example.com:6379", 1, 0, 1},
		{W, "example.com", "db.example.com", "2001:db8::7", "tcp", 5432, "tcp/db.example.com:5432", 1, 0, 1},
		{W, "example.net", "api.example.net", "198.51.100.10", "tcp", 8443, "api.example.net:8443", 1, 0, 1},
		{W, "xn--bcher-kva.example", "xn--bcher-kva.example", "198.51.100.11", "tcp", 443, "xn--bcher-kva.example", 1, 0, 1},
		{B, "", "", "203.0.113.9", "udp", 53, "udp/203.0.113.9:53", 1, 1, 0},
		{B, "example.com", "db.example.com", "198.51.100.7", "tcp", 5432, "tcp/db.example.com:5432", 1, 1, 0},
		{B, "example.org", "b.example.org", "198.51.100.9", "tcp", 443, "*.example.org", 1, 1, 0},
		{A, "", "", "203.0.113.10", "tcp", 123, "tcp/203.0.113.10:123", 1, 0, 0},
		{A, "example.com", "db.example.com", "", "", 0, "db.example.com", 1, 0, 0},
		{A, "example.org", "a.example.org", "198.51.100.12", "tcp", 443, "*.example.org", 2, 0, 1},
		{A, "example.org", "c.example.org", "198.51.100.9", "tcp", 80, "*.example.org", 1, 0, 0},
	}, rows(o.Destinations(Options{})))

	// In dns mode a name covers its connections: the entries follow.
	for _, d := range o.Destinations(Options{DNSMode: true}) {
		if d.Name == "db.example.com" || d.Name == "cache.example.com" {
			assert.Equal(t, d.Name, d.Entry)
		}
	}
	// Every entry is one Suggest gives, so the view matches the download.
	for _, opt := range []Options{{}, {DNSMode: true}, {WildcardMin: -1}} {
		suggested := values(Suggest(o, opt))
		for _, d := range o.Destinations(opt) {
			assert.Contains(t, suggested, d.Entry, "%+v", d)
		}
	}
	// The verdict is the latest, whatever the order events came in.
	late := observe(ev(5, events.HTTPS, events.Allowed, "x.example", "198.51.100.1:443"),
		ev(1, events.HTTPS, events.WouldBlock, "x.example", "198.51.100.2:443"))
	ds := late.Destinations(Options{})
	require.Len(t, ds, 1)
	assert.Equal(t, events.Allowed, ds[0].Verdict)
	assert.Equal(t, "198.51.100.1", ds[0].Addr.String(), "the address of the latest")
	assert.Empty(t, (&Observations{}).Destinations(Options{}))
}

func TestSuggestIDNDestination(t *testing.T) {
	o := observe(ev(0, events.HTTPS, events.WouldBlock, "Bücher.Example", "198.51.100.1:443"))
	ds := o.Destinations(Options{})
	require.Len(t, ds, 1)
	assert.Equal(t, "xn--bcher-kva.example", ds[0].Name, "ASCII in the data")
	assert.Equal(t, "xn--bcher-kva.example", ds[0].Domain)
	got := Suggest(o, Options{})
	assert.Equal(t, "bücher.example; seen 1 time, all would block", got[0].Comment(), "Unicode in the comment only")
}

// TestMerge: observations merged give what one set of the same events
// gives.
func TestMerge(t *testing.T) {
	all := richObservations()
	evs := []events.Event{}
	// Split the same events in two, by re-observing halves.
	answer := ev(0, events.DNS, events.Allowed, "db.example.com", "")
	answer.Detail = "198.51.100.7"
	evs = append(evs, answer,
		ev(2, events.Kernel, events.Blocked, "", "198.51.100.7:5432"),
		ev(5, events.HTTPS, events.WouldBlock, "a.example.org", "198.51.100.9:443"),
		ev(13, events.HTTPS, events.Allowed, "a.example.org", "198.51.100.12:443"),
	)
	whole := observe(evs...)
	first, second := observe(evs[1], evs[3]), observe(evs[0], evs[2])
	first.Merge(second)
	for _, opt := range []Options{{}, {DNSMode: true}} {
		assert.Equal(t, Suggest(whole, opt), Suggest(first, opt))
		assert.Equal(t, whole.Destinations(opt), first.Destinations(opt))
	}
	assert.Equal(t, whole.Events, first.Events)
	assert.Equal(t, whole.From, first.From)
	assert.Equal(t, whole.To, first.To)

	// Into empty observations, everything.
	var o Observations
	o.Merge(all)
	assert.Equal(t, Suggest(all, Options{}), Suggest(&o, Options{}))
	assert.Equal(t, all.Skipped, o.Skipped)

	// Within the receiver's bound.
	small := Observations{MaxDestinations: 2}
	small.Merge(all)
	assert.Len(t, small.dests, 2)
	assert.Positive(t, small.Overflow)
}

func FuzzObservationsJSON(f *testing.F) {
	data, err := json.Marshal(richObservations())
	require.NoError(f, err)
	f.Add(data)
	f.Add([]byte(`{"version":1,"destinations":[]}`))
	f.Add([]byte(`{"version":1,"destinations":[{"addr":"198.51.100.1","proto":"tcp","port":22,"verdict":"blocked","count":1,"blocked":1,"first":"2026-12-03T10:00:00Z","last":"2026-12-03T10:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var o Observations
		if json.Unmarshal(data, &o) != nil {
			return
		}
		out, err := json.Marshal(o)
		require.NoError(t, err)
		var back Observations
		require.NoError(t, json.Unmarshal(out, &back), "%s", out)
		again, err := json.Marshal(back)
		require.NoError(t, err)
		assert.Equal(t, string(out), string(again))
		assert.Equal(t, Suggest(&o, Options{}), Suggest(&back, Options{}))
	})
}
