package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/dnsfilter"
	"github.com/g0lab/g0efilter/nftrules"
	"github.com/g0lab/g0efilter/policy"
)

func portsSnapshot(t *testing.T, doc string) *policy.Snapshot {
	t.Helper()
	p, err := policy.Parse("policy.yaml", []byte(doc))
	require.NoError(t, err)
	snap, err := policy.Compile(p)
	require.NoError(t, err)
	return snap
}

// TestProxiedPorts: the ports of names with a port but no protocol go to
// the TLS proxy, but for the HTTP ones; TLS_PORTS join them.
func TestProxiedPorts(t *testing.T) {
	snap := portsSnapshot(t, `allowlist:
  domains: ["*.example.org:8443", "a.example:8000-8010", "b.example:8005-8020", "c.example:443", "d.example:8080", "tcp/e.example:22"]
`)
	cfg := config{Mode: nftrules.ModeHTTPS, TLSPorts: []uint16{9443, 8021}, HTTPPorts: []uint16{8080, 8008}}
	tls, http := proxiedPorts(cfg, snap)
	assert.Equal(t, []nftrules.PortRange{{First: 8000, Last: 8007}, {First: 8009, Last: 8021}, {First: 8443, Last: 8443}, {First: 9443, Last: 9443}}, tls)
	assert.Equal(t, []nftrules.PortRange{{First: 8008, Last: 8008}, {First: 8080, Last: 8080}}, http)

	l := setLists(config{Mode: nftrules.ModeDNS}, snap)
	assert.Empty(t, l.TLSPorts, "dns mode has no proxies")
}

// TestAnswerPins: what an allowed answer pins, by mode and entry.
func TestAnswerPins(t *testing.T) {
	snap := portsSnapshot(t, `allowlist:
  domains: ["plain.example", "tcp/git.example:22", "udp/*.voip.example:5060-5061", "web.example:8443", "both.example", "tcp/both.example:22"]
`)
	addr := netip.MustParseAddr("198.18.7.7")
	answer := func(name string) dnsfilter.Answer {
		return dnsfilter.Answer{Name: name, Addrs: []dnsfilter.AddrTTL{{Addr: addr, TTL: time.Minute}}}
	}
	type pin struct {
		proto nftrules.Proto
		port  uint16
	}
	pins := func(cfg config, name string) []pin {
		var out []pin
		for _, p := range answerPins(cfg, snap, answer(name)) {
			assert.Equal(t, addr, p.Addr)
			assert.Equal(t, pinTimeout(cfg, time.Minute), p.Timeout)
			out = append(out, pin{p.Proto, p.Port})
		}
		return out
	}
	https := config{Mode: nftrules.ModeHTTPS, FilterDNS: true}
	dns := config{Mode: nftrules.ModeDNS, DNSPinning: true}
	assert.Empty(t, pins(https, "plain.example"), "https mode: the proxies decide")
	assert.Equal(t, []pin{{0, 0}}, pins(dns, "plain.example"))
	assert.Equal(t, []pin{{nftrules.TCP, 22}}, pins(https, "git.example"))
	assert.Equal(t, []pin{{nftrules.TCP, 22}}, pins(dns, "git.example"))
	assert.Equal(t, []pin{{nftrules.UDP, 5060}, {nftrules.UDP, 5061}}, pins(https, "a.voip.example"))
	assert.Empty(t, pins(https, "web.example"), "https mode: TLS on 8443 is the proxy's")
	assert.Equal(t, []pin{{nftrules.TCP, 8443}, {nftrules.UDP, 8443}}, pins(dns, "web.example"))
	assert.Equal(t, []pin{{0, 0}, {nftrules.TCP, 22}}, pins(dns, "both.example"))
	assert.Empty(t, pins(config{Mode: nftrules.ModeDNS}, "git.example"), "DNS_PINNING=false pins nothing")
	assert.Empty(t, pins(dns, "other.example"))

	// The resolver answers names that only an entry with a port allows.
	var h policy.Holder
	h.Store(snap)
	rule, ok := policy.Names{Holder: &h}.MatchHost("git.example")
	assert.True(t, ok)
	assert.Equal(t, "tcp/git.example:22", rule)
	_, ok = policy.Names{Holder: &h}.MatchHost("other.example")
	assert.False(t, ok)
}
