package main

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/internal/e2e"
)

// auditPolicy allows one name; it denies another name and the third
// upstream address of each family, and nothing allows the second's
// other ports.
const auditPolicy = `allowlist:
  domains:
    - "allowed.example"
denylist:
  ips: ["198.18.0.4", "fd00:18::4"]
  domains: ["wild.example"]
`

// auditCase is one thing the policy refuses: try does it from the box
// and reports whether it got through; match picks out its events.
type auditCase struct {
	name  string
	try   func(t *testing.T) (bool, string)
	match func(e events.Event) bool
}

// countRefusals counts the events of c by action, once they stop
// coming: the would-block or blocked events of one case.
func countRefusals(t *testing.T, pe *proxyEnv, c auditCase, action events.Action) int {
	t.Helper()
	count := func() int {
		n := 0
		for _, e := range pe.readEvents(t) {
			if e.Action.Refused() && c.match(e) {
				require.Equal(t, action, e.Action, "%s: %+v", c.name, e)
				n++
			}
		}
		return n
	}
	require.Eventually(t, func() bool { return count() > 0 }, 5*time.Second, 50*time.Millisecond,
		"%s: a %v event; events: %+v", c.name, action, pe.readEvents(t))
	time.Sleep(300 * time.Millisecond) // a second event, if any, comes by now
	return count()
}

// waitModeEvent waits for the event that says the filter's mode is now
// the one of reason.
func (pe *proxyEnv) waitModeEvent(t *testing.T, reason events.Reason) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, e := range pe.readEvents(t) {
			if e.Component == events.Policy && e.Action == events.Changed && e.Reason == reason {
				return true
			}
		}
		return false
	}, 10*time.Second, 50*time.Millisecond, "an event says: %s", reason)
}

// health runs "g0efilter health" in the box.
func health(t *testing.T, env *e2e.Env) string {
	out, err := exec.Command("ip", "netns", "exec", env.Box, e2e.Binary(t), "health").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return string(out)
}

// TestAuditHTTPS: with ENFORCE=audit, every refusal of https mode (by the
// TLS and HTTP proxies, the resolver and the kernel, denied or not
// allowlisted) lets the traffic through and yields exactly one
// would-block event; the guards still hold. A "mode: enforce" edit of
// the policy file then blocks each case again, without a restart.
func TestAuditHTTPS(t *testing.T) {
	pe := startProxyEnv(t, auditPolicy, map[string]string{"ENFORCE": "audit", "METRICS_ADDR": ":9464"})
	pe.Echo("tcp", ":7000")
	udp := pe.RecordUDP(t, netip.MustParseAddrPort("[::]:7053"))
	quic := pe.RecordUDP(t, netip.MustParseAddrPort("[::]:443"))
	pe.filter.WaitForOutput("AUDIT MODE: nothing is blocked")
	assert.Contains(t, health(t, pe.Env), "mode: AUDIT: NOTHING IS BLOCKED")
	pe.waitModeEvent(t, events.ReasonAuditMode)

	resolver := netip.AddrPortFrom(e2e.Upstream4[0], 53)
	de := &dnsEnv{proxyEnv: pe, resolver: resolver}
	var cases []auditCase
	for _, f := range fams {
		denied, resolverAddr := e2e.Upstream4[2], e2e.Upstream4[0]
		qtype := dns.TypeA
		if f.name == "IPv6" {
			denied, resolverAddr, qtype = e2e.Upstream6[2], e2e.Upstream6[0], dns.TypeAAAA
		}
		web := func(scheme, name string, to netip.Addr) func(t *testing.T) (bool, string) {
			return func(t *testing.T) (bool, string) {
				body, err := pe.get(to, scheme+"://"+name+"/")
				if err != nil {
					return false, err.Error()
				}
				return strings.Contains(body, name), body
			}
		}
		named := func(component events.Component, name string, to netip.Addr) func(events.Event) bool {
			return func(e events.Event) bool {
				return e.Component == component && e.Name == name && e.Destination.Addr() == to
			}
		}
		toAddr := func(proto string, to netip.AddrPort, reason events.Reason) func(events.Event) bool {
			return func(e events.Event) bool {
				return e.Component == events.Kernel && e.Protocol == proto && e.Destination == to && e.Reason == reason
			}
		}
		hostile := func(proto string, to netip.AddrPort) func(t *testing.T) (bool, string) {
			return func(t *testing.T) (bool, string) {
				return pe.Hostile(t, e2e.AsNobody, proto, "-addr", to.String(), "-timeout", "1s")
			}
		}
		tcp := netip.AddrPortFrom(f.dest, 7000)
		udpTo := netip.AddrPortFrom(f.dest, 7053)
		deniedTo := netip.AddrPortFrom(denied, 7000)
		cases = append(cases,
			auditCase{f.name + " TLS, not allowlisted", web("https", "blocked.example", f.dest),
				named(events.HTTPS, "blocked.example", f.dest)},
			auditCase{f.name + " TLS, denied name", web("https", "wild.example", f.dest),
				named(events.HTTPS, "wild.example", f.dest)},
			auditCase{f.name + " HTTP, not allowlisted", web("http", "blocked.example", f.dest),
				named(events.HTTP, "blocked.example", f.dest)},
			// The web servers answer on every upstream address, the
			// resolver's too, where allowed.example does not live.
			auditCase{f.name + " TLS, allowed name at another address", web("https", "allowed.example", resolverAddr),
				named(events.HTTPS, "allowed.example", resolverAddr)},
			auditCase{f.name + " QUIC", hostile("udp", netip.AddrPortFrom(f.dest, 443)),
				toAddr("udp", netip.AddrPortFrom(f.dest, 443), events.ReasonNotAllowlisted)},
			auditCase{f.name + " TCP, not allowlisted", hostile("tcp", tcp),
				toAddr("tcp", tcp, events.ReasonNotAllowlisted)},
			auditCase{f.name + " UDP, not allowlisted", hostile("udp", udpTo),
				toAddr("udp", udpTo, events.ReasonNotAllowlisted)},
			auditCase{f.name + " TCP, denied address", hostile("tcp", deniedTo),
				toAddr("tcp", deniedTo, events.ReasonDenied)},
			auditCase{f.name + " DNS, not allowlisted", func(t *testing.T) (bool, string) {
				resp, err := de.query(t, "udp", "blocked.example", qtype, resolver)
				if err != nil {
					return false, err.Error()
				}
				return resp.Rcode == dns.RcodeSuccess && len(resp.Answer) > 0, resp.String()
			}, func(e events.Event) bool {
				return e.Component == events.DNS && e.Name == "blocked.example" && e.QType == dns.TypeToString[qtype]
			}},
		)
	}

	for _, c := range cases {
		ok, line := c.try(t)
		assert.True(t, ok, "auditing, %s gets through: %s", c.name, line)
		assert.Equal(t, 1, countRefusals(t, pe, c, events.WouldBlock), "auditing, %s: exactly one would-block event", c.name)
	}
	assert.Equal(t, 2, udp.Count(), "the UDP pings arrived")
	assert.Equal(t, 2, quic.Count(), "the UDP 443 pings arrived")

	// Allowed traffic is reported as allowed, and the guards hold.
	body, err := pe.get(fams[0].dest, "https://allowed.example/")
	require.NoError(t, err)
	assert.Contains(t, body, "allowed.example")
	pe.waitEvent(t, "allowed.example", events.Allowed, fams[0].dest)
	for _, addr := range []string{"127.0.0.1:8443", "127.0.0.1:9464"} {
		ok, line := pe.Hostile(t, e2e.AsNobody, "tcp", "-addr", addr, "-timeout", "1s")
		assert.False(t, ok, "auditing, a knock on %s is still refused: %s", addr, line)
	}
	he := &hostileEnv{Env: pe.Env, filter: pe.filter, events: pe.events}
	ok, line := pe.Hostile(t, e2e.AsNobody, "tcp", "-addr", netip.AddrPortFrom(fams[0].other, 7000).String(),
		"-mark", he.mark(t), "-timeout", "1s")
	assert.False(t, ok, "auditing, a forged mark is still dropped: %s", line)
	he.waitReason(t, events.ReasonForgedMark, 1)
	assert.Contains(t, scrape(t, he), "g0efilter_audit_mode 1")
	assert.Contains(t, scrape(t, he), `g0efilter_decisions_total{action="would-block",component="https",reason="not allowlisted"}`)

	// The file's mode wins over ENFORCE: enforcing, each case is refused
	// again, without a restart, with one blocked event each.
	pe.filter.SetPolicy("mode: enforce\n" + auditPolicy)
	pe.waitModeEvent(t, events.ReasonEnforceMode)
	assert.Contains(t, health(t, pe.Env), "mode: enforce")
	assert.Contains(t, scrape(t, he), "g0efilter_audit_mode 0")
	before := pe.readEvents(t)
	for _, c := range cases {
		ok, line := c.try(t)
		assert.False(t, ok, "enforcing, %s is refused: %s", c.name, line)
		n := 0
		require.Eventually(t, func() bool {
			n = 0
			for _, e := range pe.readEvents(t)[len(before):] {
				if c.match(e) && e.Action == events.Blocked {
					n++
				}
			}
			return n > 0
		}, 5*time.Second, 50*time.Millisecond, "enforcing, %s: a blocked event", c.name)
	}
	for _, e := range pe.readEvents(t)[len(before):] {
		assert.NotEqual(t, events.WouldBlock, e.Action, "enforcing, no would-block: %+v", e)
	}
	assert.Equal(t, 2, udp.Count(), "no UDP ping arrived while enforcing")
	assert.Equal(t, 2, quic.Count(), "no UDP 443 ping arrived while enforcing")
	for _, e := range pe.readEvents(t) {
		assert.Equal(t, "e2e", e.Host, "every event names the filter: %+v", e)
	}
}

// TestAuditDNS: in dns mode, auditing, a refused name is answered and
// reported once, and its addresses are pinned, so that connecting to
// them is not reported a second time; an address nothing answered for is
// reported by the kernel. Switching to enforce refuses the name again,
// and the address pinned while auditing is closed at once.
func TestAuditDNS(t *testing.T) {
	observed := t.TempDir() + "/observed.json"
	de := startDNSEnv(t, map[string]string{"ENFORCE": "audit", "OBSERVED_FILE": observed})
	de.Echo("tcp", ":7000")
	de.filter.WaitForOutput("AUDIT MODE: nothing is blocked")
	assert.Contains(t, health(t, de.Env), "mode: AUDIT")
	answered := netip.AddrPortFrom(e2e.Upstream4[1], 7000)
	unanswered := netip.AddrPortFrom(e2e.Upstream4[2], 7000)

	resp, err := de.query(t, "udp", "blocked.example", dns.TypeA, de.resolver)
	require.NoError(t, err)
	require.Equal(t, dns.RcodeSuccess, resp.Rcode, "auditing, a refused name is answered: %v", resp)
	question := auditCase{name: "blocked.example", match: func(e events.Event) bool {
		return e.Component == events.DNS && e.Name == "blocked.example"
	}}
	assert.Equal(t, 1, countRefusals(t, de.proxyEnv, question, events.WouldBlock))

	ok, line := de.Hostile(t, e2e.AsNobody, "tcp", "-addr", answered.String(), "-timeout", "1s")
	assert.True(t, ok, "auditing, the answered address is reachable: %s", line)
	ok, line = de.Hostile(t, e2e.AsNobody, "tcp", "-addr", unanswered.String(), "-timeout", "1s")
	assert.True(t, ok, "auditing, an address nothing answered for is reachable: %s", line)
	unansweredCase := auditCase{name: "unanswered", match: func(e events.Event) bool {
		return e.Component == events.Kernel && e.Destination == unanswered
	}}
	assert.Equal(t, 1, countRefusals(t, de.proxyEnv, unansweredCase, events.WouldBlock))
	for _, e := range de.readEvents(t) {
		if e.Destination == answered {
			assert.Equal(t, events.Allowed, e.Action, "the connection to the pinned address is not reported twice: %+v", e)
		}
	}

	de.filter.SetPolicy("mode: enforce\n" + dnsPolicy)
	de.filter.WaitForOutput("enforce mode: the policy is enforced")
	require.Eventually(t, func() bool {
		ok, _ := de.Hostile(t, e2e.AsNobody, "tcp", "-addr", answered.String(), "-timeout", "1s")
		return !ok
	}, 10*time.Second, 100*time.Millisecond, "the pin made while auditing is gone")
	resp, err = de.query(t, "udp", "blocked.example", dns.TypeA, de.resolver)
	require.NoError(t, err)
	assert.Equal(t, dns.RcodeNameError, resp.Rcode, "enforcing, the name is refused again, not served from the cache")
	ok, line = de.Hostile(t, e2e.AsNobody, "tcp", "-addr", unanswered.String(), "-timeout", "1s")
	assert.False(t, ok, "enforcing: %s", line)
	// An allowed name still opens its addresses.
	resp, err = de.query(t, "udp", "allowed.example", dns.TypeA, de.resolver)
	require.NoError(t, err)
	require.Equal(t, dns.RcodeSuccess, resp.Rcode)
	ok, line = de.Hostile(t, e2e.AsNobody, "tcp", "-addr", answered.String(), "-timeout", "1s")
	assert.True(t, ok, "pinned again by an allowed answer: %s", line)

	// The filter kept a record of what the workload did, written at
	// exit, and suggest reads it by default.
	require.Equal(t, 0, de.filter.Stop())
	code, out, errOut := runCmd(t, map[string]string{"FILTER_MODE": "dns", "OBSERVED_FILE": observed}, "suggest")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `- "blocked.example"`, out)
	assert.Contains(t, out, `- "tcp/198.18.0.4:7000"`, "reached without a name: %s", out)
	assert.Contains(t, out, "would block", "the comments count what was audited: %s", out)
}
