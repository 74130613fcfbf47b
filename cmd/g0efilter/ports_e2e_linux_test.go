package main

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/internal/e2e"
)

// The upstream addresses of the port tests: a3 is allowed on some ports,
// a4 is denied.
var (
	a3 = []netip.Addr{e2e.Upstream4[1], e2e.Upstream6[1]}
	a4 = []netip.Addr{e2e.Upstream4[2], e2e.Upstream6[2]}
)

const portsAddrPolicy = `allowlist:
  ips:
    - "tcp/198.18.0.3:7000"
    - "udp/198.18.0.3:7053"
    - "tcp/198.18.0.3:7100-7199"
    - "tcp/[fd00:18::3]:7000"
    - "udp/[fd00:18::3]:7053"
    - "tcp/[fd00:18::3]:7100-7199"
    - "tcp/198.18.0.0/24:7300"
    - "tcp/[fd00:18::]/64:7300"
denylist:
  ips: ["198.18.0.4", "fd00:18::4"]
`

// TestPortsAddresses: address entries with protocols and ports, in the
// kernel, for a workload at Docker's default capabilities (root and
// nobody): open on their protocol and ports and refused on the others, a
// range, a denied address inside an allowed prefix, and a reload.
func TestPortsAddresses(t *testing.T) {
	env := e2e.New(t)
	tcpPorts := []int{7000, 7001, 7053, 7100, 7199, 7200, 7300}
	for _, p := range tcpPorts {
		env.Echo("tcp", fmt.Sprintf(":%d", p))
	}
	udp := env.RecordUDP(t, netip.MustParseAddrPort("[::]:7053"))
	env.RecordUDP(t, netip.MustParseAddrPort("[::]:7000"))
	logFile := t.TempDir() + "/events.jsonl"
	pe := &proxyEnv{Env: env, events: logFile}
	pe.filter = env.StartFilter(t, portsAddrPolicy, map[string]string{
		"DNS_UPSTREAMS": e2e.Upstream4[0].String(), "LOG_FILE": logFile,
	})
	pe.filter.WaitForOutput("ruleset installed")

	reach := func(proto string, a netip.Addr, port uint16) (bool, string) {
		var ok bool
		var line string
		for _, as := range users {
			o, l := env.Hostile(t, as, proto, "-addr", netip.AddrPortFrom(a, port).String(), "-timeout", "1s")
			if as == users[0] {
				ok, line = o, l
			}
			assert.Equal(t, ok, o, "%s to %v:%d: root and nobody alike (%s / %s)", proto, a, port, line, l)
		}
		return ok, line
	}
	for i, fam := range []string{"IPv4", "IPv6"} {
		t.Run(fam, func(t *testing.T) {
			for _, c := range []struct {
				proto string
				port  uint16
				open  bool
			}{
				{"tcp", 7000, true}, {"tcp", 7001, false},
				{"udp", 7053, true}, {"tcp", 7053, false}, {"udp", 7000, false},
				{"tcp", 7100, true}, {"tcp", 7199, true}, {"tcp", 7200, false},
				{"tcp", 7300, true},
			} {
				ok, line := reach(c.proto, a3[i], c.port)
				assert.Equal(t, c.open, ok, "%s to %v:%d: %s", c.proto, a3[i], c.port, line)
			}
			// Inside the allowed prefix, but denied.
			ok, line := reach("tcp", a4[i], 7300)
			assert.False(t, ok, "denied %v:7300: %s", a4[i], line)
		})
	}
	assert.Equal(t, 2*len(users), udp.Count(), "the allowed UDP pings arrived, and only those: %v", udp.Payloads())
	require.Eventually(t, func() bool {
		for _, e := range pe.readEvents(t) {
			if e.Component == events.Kernel && e.Reason == events.ReasonDenied && e.Destination == netip.AddrPortFrom(a4[0], 7300) {
				return true
			}
		}
		return false
	}, 5*time.Second, 50*time.Millisecond, "a kernel event for the denied address")

	// A reload moves the port: the new one opens, the old one closes; and
	// the denylist drops one address, which the prefix entry then opens.
	pe.filter.SetPolicy(strings.NewReplacer(":7000\"", ":7001\"", `"198.18.0.4", `, "").Replace(portsAddrPolicy))
	require.Eventually(t, func() bool {
		ok, _ := env.Hostile(t, e2e.AsNobody, "tcp", "-addr", netip.AddrPortFrom(a3[0], 7001).String(), "-timeout", "1s")
		return ok
	},
		10*time.Second, 100*time.Millisecond, "7001 opens after the reload")
	for i := range a3 {
		ok, line := reach("tcp", a3[i], 7001)
		assert.True(t, ok, "%v:7001 after the reload: %s", a3[i], line)
		ok, line = reach("tcp", a3[i], 7000)
		assert.False(t, ok, "%v:7000 after the reload: %s", a3[i], line)
	}
	ok, line := reach("tcp", a4[0], 7300)
	assert.True(t, ok, "%v:7300 no longer denied: %s", a4[0], line)
	ok, line = reach("tcp", a4[1], 7300)
	assert.False(t, ok, "%v:7300 still denied: %s", a4[1], line)
}

const portsNamePolicy = `allowlist:
  domains:
    - "tcp/ssh.example:7022"
    - "*.tls.example:9443"
    - "plain.example"
denylist:
  domains: ["bad.tls.example"]
`

// portNames are served by the web servers and resolve to a3.
var portNames = []string{"ssh.example", "x.tls.example", "bad.tls.example", "plain.example", "other.example"}

// startPortsNameEnv starts the filter in mode with portsNamePolicy, a DNS
// server for portNames, web servers answering for them (TLS on 9443 and
// 9444 too) and echo servers on 7022 and 7023.
func startPortsNameEnv(t *testing.T, mode string) *proxyEnv {
	env := e2e.New(t)
	records := map[string][]netip.Addr{}
	for _, n := range portNames {
		records[n] = a3
	}
	pe := &proxyEnv{Env: env, web: env.WebServers(portNames...), dns: env.DNSServer(records)}
	pe.web.Also(9443, true)
	pe.web.Also(9444, true)
	env.Echo("tcp", ":7022")
	env.Echo("tcp", ":7023")
	pe.events = t.TempDir() + "/events.jsonl"
	pe.filter = env.StartFilter(t, portsNamePolicy, map[string]string{
		"FILTER_MODE": mode, "DNS_UPSTREAMS": e2e.Upstream4[0].String(), "LOG_FILE": pe.events,
		"DNS_PIN_MIN_TTL": "1s", "DNS_PIN_GRACE": "1s",
	})
	pe.filter.WaitForOutput("ruleset installed")
	return pe
}

// resolve asks the box's resolver (redirected to the filter) for name's
// addresses of family i and returns the answer's rcode.
func (pe *proxyEnv) resolve(t *testing.T, name string, i int) int {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), []uint16{dns.TypeA, dns.TypeAAAA}[i])
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second, Dialer: &net.Dialer{}}
	var resp *dns.Msg
	var err error
	pe.InBox(func() { resp, _, err = c.Exchange(m, netip.AddrPortFrom(e2e.Upstream4[0], 53).String()) })
	require.NoError(t, err)
	return resp.Rcode
}

// TestPortsNamesHTTPS: in https mode, a name with a protocol and a port
// (SSH-like TCP on 7022) opens only after the workload resolved it through
// the filter, and only on that port; a name with a port and no protocol is
// TLS on that port decided by SNI, as on 443; the denylist wins under an
// allowed wildcard in the proxy and the resolver; a reload moves both.
func TestPortsNamesHTTPS(t *testing.T) {
	pe := startPortsNameEnv(t, "https")
	for i, fam := range []string{"IPv4", "IPv6"} {
		t.Run(fam, func(t *testing.T) {
			ssh := netip.AddrPortFrom(a3[i], 7022).String()
			_, err := pe.Dial(fams[i].tcp, ssh, 2*time.Second)
			require.ErrorIs(t, err, syscall.ECONNREFUSED, "refused before the workload resolved the name")

			require.Equal(t, dns.RcodeSuccess, pe.resolve(t, "ssh.example", i))
			c, err := pe.Dial(fams[i].tcp, ssh, 2*time.Second)
			require.NoError(t, err, "open once resolved")
			got, err := e2e.RoundTrip(c, []byte("SSH-2.0-test\r\n"), 2*time.Second)
			require.NoError(t, err)
			assert.Equal(t, "SSH-2.0-test\r\n", string(got))
			_, err = pe.Dial(fams[i].tcp, netip.AddrPortFrom(a3[i], 7023).String(), 2*time.Second)
			assert.ErrorIs(t, err, syscall.ECONNREFUSED, "the name's other ports stay closed")

			// TLS on 9443 by SNI: the entry's names only, not on 443.
			body, err := pe.get(a3[i], "https://x.tls.example:9443/")
			require.NoError(t, err)
			assert.Equal(t, "served x.tls.example", body)
			_, err = pe.get(a3[i], "https://other.example:9443/")
			assert.Error(t, err, "a name no entry allows on 9443")
			_, err = pe.get(a3[i], "https://x.tls.example/")
			assert.Error(t, err, "x.tls.example is allowed on 9443 only")
			body, err = pe.get(a3[i], "https://plain.example/")
			require.NoError(t, err, "a name without a port is allowed on 443")
			assert.Equal(t, "served plain.example", body)
			_, err = pe.get(a3[i], "https://plain.example:9443/")
			assert.Error(t, err, "and not on another port")

			// Denied under the allowed wildcard: by the proxy and the
			// resolver.
			_, err = pe.get(a3[i], "https://bad.tls.example:9443/")
			assert.Error(t, err)
			assert.Equal(t, dns.RcodeNameError, pe.resolve(t, "bad.tls.example", i))
		})
	}
	e := pe.waitEvent(t, "bad.tls.example", events.Blocked, a3[0])
	assert.Equal(t, events.ReasonDenied, e.Reason)
	e = pe.waitEvent(t, "x.tls.example", events.Allowed, a3[0])
	assert.Equal(t, "*.tls.example:9443", e.Rule)

	// A reload moves both entries to other ports.
	pe.filter.SetPolicy(strings.NewReplacer(":7022", ":7023", ":9443", ":9444").Replace(portsNamePolicy))
	require.Eventually(t, func() bool {
		_, err := pe.get(a3[0], "https://x.tls.example:9444/")
		return err == nil
	}, 10*time.Second, 100*time.Millisecond, "TLS on 9444 after the reload")
	_, err := pe.get(a3[0], "https://x.tls.example:9443/")
	assert.Error(t, err, "9443 is no longer the TLS proxy's")
	require.Equal(t, dns.RcodeSuccess, pe.resolve(t, "ssh.example", 0))
	c, err := pe.Dial("tcp4", netip.AddrPortFrom(a3[0], 7023).String(), 2*time.Second)
	require.NoError(t, err, "the new port opens once resolved")
	c.Close()
}

// TestPortsNamesDNS: in dns mode, a name with a port opens that port of
// its addresses only; a name without one opens every port.
func TestPortsNamesDNS(t *testing.T) {
	pe := startPortsNameEnv(t, "dns")
	for i, fam := range []string{"IPv4", "IPv6"} {
		t.Run(fam, func(t *testing.T) {
			require.Equal(t, dns.RcodeSuccess, pe.resolve(t, "ssh.example", i))
			c, err := pe.Dial(fams[i].tcp, netip.AddrPortFrom(a3[i], 7022).String(), 2*time.Second)
			require.NoError(t, err)
			c.Close()
			_, err = pe.Dial(fams[i].tcp, netip.AddrPortFrom(a3[i], 7023).String(), 2*time.Second)
			assert.ErrorIs(t, err, syscall.ECONNREFUSED, "only the entry's port")

			require.Equal(t, dns.RcodeSuccess, pe.resolve(t, "plain.example", i))
			c, err = pe.Dial(fams[i].tcp, netip.AddrPortFrom(a3[i], 7023).String(), 2*time.Second)
			require.NoError(t, err, "a name without a port pins every port of its addresses")
			c.Close()
			assert.Equal(t, dns.RcodeNameError, pe.resolve(t, "bad.tls.example", i))
		})
	}
}
