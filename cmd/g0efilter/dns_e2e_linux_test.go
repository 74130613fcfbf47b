package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
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

// dnsEnv is a harness with an authoritative DNS server upstream and
// g0efilter in dns mode in the box, forwarding to it.
type dnsEnv struct {
	*proxyEnv
	resolver netip.AddrPort // what the box's clients think they ask
}

const dnsPolicy = `allowlist:
  domains:
    - "allowed.example"
    - "*.wild.example"
    - "big.example"
`

// bigAnswer has enough A records that its answer exceeds 512 bytes.
func bigAnswer() []netip.Addr {
	var out []netip.Addr
	for i := range 60 {
		out = append(out, netip.AddrFrom4([4]byte{198, 19, 0, byte(i + 1)}))
	}
	return out
}

func startDNSEnv(t *testing.T, vars map[string]string) *dnsEnv {
	env := e2e.New(t)
	pe := &proxyEnv{Env: env}
	pe.dns = env.DNSServer(map[string][]netip.Addr{
		"allowed.example": {e2e.Upstream4[1], e2e.Upstream6[1]},
		"a.wild.example":  {e2e.Upstream4[1], e2e.Upstream6[1]},
		"blocked.example": {e2e.Upstream4[1], e2e.Upstream6[1]},
		"big.example":     bigAnswer(),
	})
	pe.events = t.TempDir() + "/events.jsonl"
	all := map[string]string{
		"FILTER_MODE":   "dns",
		"DNS_UPSTREAMS": e2e.Upstream4[0].String(),
		"LOG_FILE":      pe.events,
	}
	for k, v := range vars {
		all[k] = v
	}
	pe.filter = env.StartFilter(t, dnsPolicy, all)
	pe.filter.WaitForOutput("DNS server listening")
	return &dnsEnv{proxyEnv: pe, resolver: netip.AddrPortFrom(e2e.Upstream4[0], 53)}
}

// query asks the upstream resolver's address from the box; the ruleset
// redirects the query to g0efilter's DNS server.
func (de *dnsEnv) query(t *testing.T, network, name string, qtype uint16, to netip.AddrPort) (*dns.Msg, error) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	c := &dns.Client{Net: network, Timeout: 5 * time.Second, Dialer: &net.Dialer{}}
	var resp *dns.Msg
	var err error
	de.InBox(func() { resp, _, err = c.Exchange(m, to.String()) })
	return resp, err
}

func TestDNSModeResolves(t *testing.T) {
	de := startDNSEnv(t, nil)
	for _, to := range []netip.AddrPort{de.resolver, netip.AddrPortFrom(e2e.Upstream6[0], 53)} {
		for _, network := range []string{"udp", "tcp"} {
			for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
				t.Run(fmt.Sprintf("%s/%s/%s", to.Addr(), network, dns.TypeToString[qt]), func(t *testing.T) {
					resp, err := de.query(t, network, "Allowed.Example.", qt, to)
					require.NoError(t, err)
					require.Equal(t, dns.RcodeSuccess, resp.Rcode)
					require.Len(t, resp.Answer, 1)
					want := e2e.Upstream4[1].String()
					if qt == dns.TypeAAAA {
						want = e2e.Upstream6[1].String()
					}
					assert.Contains(t, resp.Answer[0].String(), want)
				})
			}
		}
	}
	e := de.waitDNSEvent(t, "allowed.example", events.Allowed)
	assert.Equal(t, "allowed.example", e.Rule)
	assert.Equal(t, events.DNS, e.Component)
}

func (de *dnsEnv) waitDNSEvent(t *testing.T, name string, action events.Action) events.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, e := range de.readEvents(t) {
			if e.Component == events.DNS && e.Name == name && e.Action == action {
				return e
			}
		}
		require.True(t, time.Now().Before(deadline), "no %v DNS event for %s", action, name)
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDNSModeBlocksWithoutAskingUpstream(t *testing.T) {
	de := startDNSEnv(t, nil)
	for _, network := range []string{"udp", "tcp"} {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT} {
			resp, err := de.query(t, network, "blocked.example", qt, de.resolver)
			require.NoError(t, err)
			assert.Equal(t, dns.RcodeNameError, resp.Rcode)
			opt := resp.IsEdns0()
			require.NotNil(t, opt, "the answer must carry EDNS0 with the Extended DNS Error")
			var ede *dns.EDNS0_EDE
			for _, o := range opt.Option {
				if e, ok := o.(*dns.EDNS0_EDE); ok {
					ede = e
				}
			}
			require.NotNil(t, ede)
			assert.Equal(t, dns.ExtendedErrorCodeBlocked, ede.InfoCode)
		}
	}
	for _, q := range de.dns.Queries() {
		assert.NotEqual(t, "blocked.example.", strings.ToLower(q.Name), "a blocked name must never reach the upstream")
	}
	e := de.waitDNSEvent(t, "blocked.example", events.Blocked)
	assert.Equal(t, events.ReasonNotAllowlisted, e.Reason)
}

func TestDNSModeTruncatedThenTCP(t *testing.T) {
	requireTool(t, "dig")
	de := startDNSEnv(t, nil)
	out, err := exec.Command("ip", "netns", "exec", de.Box, "dig", "+noedns", "+tries=1", "+time=5",
		"@"+de.resolver.Addr().String(), "big.example", "A").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "Truncated, retrying in TCP mode")
	assert.Contains(t, string(out), "ANSWER: 60")
}

func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is not installed; .ci/run installs it", name)
	}
}

func TestDNSModeUpstreamDown(t *testing.T) {
	// Nothing listens on this port upstream.
	de := startDNSEnv(t, map[string]string{"DNS_UPSTREAMS": e2e.Upstream4[0].String() + ":5399"})
	start := time.Now()
	resp, err := de.query(t, "udp", "allowed.example", dns.TypeA, de.resolver)
	require.NoError(t, err)
	assert.Equal(t, dns.RcodeServerFailure, resp.Rcode)
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestDNSModePinning(t *testing.T) {
	de := startDNSEnv(t, map[string]string{"DNS_PIN_MIN_TTL": "1s", "DNS_PIN_GRACE": "1s"})
	de.dns.SetTTL(1)
	de.Echo("tcp", ":7000")
	eachFam(t, func(t *testing.T, f fam) {
		pinned := e2e.Upstream4[1]
		unresolved := e2e.Upstream4[2]
		qt := dns.TypeA
		if f.name == "IPv6" {
			pinned, unresolved, qt = e2e.Upstream6[1], e2e.Upstream6[2], dns.TypeAAAA
		}
		to := netip.AddrPortFrom(pinned, 7000).String()

		_, err := de.Dial(f.tcp, to, 2*time.Second)
		require.ErrorIs(t, err, syscall.ECONNREFUSED, "before any answer, the address is not reachable")

		resp, err := de.query(t, "udp", "a.wild.example", qt, de.resolver)
		require.NoError(t, err)
		require.Equal(t, dns.RcodeSuccess, resp.Rcode)
		c, err := de.Dial(f.tcp, to, 2*time.Second)
		require.NoError(t, err, "a pinned address is reachable on any port")
		c.Close()

		_, err = de.Dial(f.tcp, netip.AddrPortFrom(unresolved, 7000).String(), 2*time.Second)
		require.ErrorIs(t, err, syscall.ECONNREFUSED, "an address no allowed answer gave stays blocked")

		// DoT is dropped, even to a pinned address.
		_, err = de.Dial(f.tcp, netip.AddrPortFrom(pinned, 853).String(), time.Second)
		var ne net.Error
		require.True(t, errors.As(err, &ne) && ne.Timeout(), "DoT must be dropped, got %v", err)

		// The pin expires after TTL (1s, the floor) plus grace (1s).
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := de.Dial(f.tcp, to, 2*time.Second)
			if err != nil {
				require.ErrorIs(t, err, syscall.ECONNREFUSED)
				break
			}
			c.Close()
			require.True(t, time.Now().Before(deadline), "the pin did not expire")
			time.Sleep(200 * time.Millisecond)
		}
	})
}

func TestDNSModeWithDig(t *testing.T) {
	requireTool(t, "dig")
	de := startDNSEnv(t, nil)
	for _, args := range [][]string{
		{"allowed.example", "A", "+short"},
		{"allowed.example", "AAAA", "+short", "+tcp"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", de.Box, "dig", "@" + de.resolver.Addr().String()}, args...)...).CombinedOutput()
		cancel()
		require.NoError(t, err, "%s", out)
		want := e2e.Upstream4[1].String()
		if args[1] == "AAAA" {
			want = e2e.Upstream6[1].String()
		}
		assert.Equal(t, want, strings.TrimSpace(string(out)))
	}
	out, err := exec.Command("ip", "netns", "exec", de.Box, "dig", "@"+de.resolver.Addr().String(), "blocked.example", "A").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "status: NXDOMAIN")
	assert.Contains(t, string(out), "EDE: 15 (Blocked)")
}

// TestDNSModeDNSOnly checks DNS_PINNING=false: DNS is still filtered, DoT
// still dropped, but connections to any address go through, as in the
// original product.
func TestDNSModeDNSOnly(t *testing.T) {
	de := startDNSEnv(t, map[string]string{"DNS_PINNING": "false"})
	de.Echo("tcp", ":7000")
	resp, err := de.query(t, "udp", "blocked.example", dns.TypeA, de.resolver)
	require.NoError(t, err)
	assert.Equal(t, dns.RcodeNameError, resp.Rcode)
	c, err := de.Dial("tcp4", netip.AddrPortFrom(e2e.Upstream4[2], 7000).String(), 2*time.Second)
	require.NoError(t, err, "without pinning, an unresolved address is reachable")
	c.Close()
	_, err = de.Dial("tcp4", netip.AddrPortFrom(e2e.Upstream4[2], 853).String(), time.Second)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "DoT must be dropped, got %v", err)
}

// TestDNSModeWinsOverDockerDNAT simulates Docker's embedded resolver: a
// NAT chain of its own, at the usual priority, that sends the container's
// queries to 127.0.0.11 on to another port. The filter's redirect must
// still get them; otherwise the workload's DNS would bypass the filter.
func TestDNSModeWinsOverDockerDNAT(t *testing.T) {
	env := e2e.New(t)
	docker := `table ip docker_sim {
	chain output {
		type nat hook output priority -100; policy accept;
		ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:5355
		ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:5355
	}
}
`
	cmd := exec.Command("ip", "netns", "exec", env.Box, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(docker)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)

	pe := &proxyEnv{Env: env}
	pe.dns = env.DNSServer(map[string][]netip.Addr{"allowed.example": {e2e.Upstream4[1]}})
	pe.filter = env.StartFilter(t, dnsPolicy, map[string]string{
		"FILTER_MODE":   "dns",
		"DNS_UPSTREAMS": e2e.Upstream4[0].String(),
	})
	pe.filter.WaitForOutput("DNS server listening")
	de := &dnsEnv{proxyEnv: pe}
	docker53 := netip.MustParseAddrPort("127.0.0.11:53")
	for _, network := range []string{"udp", "tcp"} {
		resp, err := de.query(t, network, "blocked.example", dns.TypeA, docker53)
		require.NoError(t, err, "%s: the query must reach the filter, not the simulated Docker port", network)
		assert.Equal(t, dns.RcodeNameError, resp.Rcode)
		resp, err = de.query(t, network, "allowed.example", dns.TypeA, docker53)
		require.NoError(t, err)
		assert.Equal(t, dns.RcodeSuccess, resp.Rcode)
	}
}

// TestHTTPSModeFilterDNS: with FILTER_DNS=true, https mode sends the
// workload's DNS through the filtering resolver too, while the proxies'
// own name checks still reach the upstream; without it, DNS to a resolver
// that is not allowlisted is refused.
func TestHTTPSModeFilterDNS(t *testing.T) {
	for _, filter := range []bool{false, true} {
		t.Run(fmt.Sprintf("FILTER_DNS=%v", filter), func(t *testing.T) {
			pe := startProxyEnv(t, proxyPolicy, map[string]string{"FILTER_DNS": fmt.Sprint(filter)})
			de := &dnsEnv{proxyEnv: pe, resolver: netip.AddrPortFrom(e2e.Upstream4[0], 53)}
			resp, err := de.query(t, "udp", "blocked.example", dns.TypeA, de.resolver)
			if !filter {
				require.Error(t, err, "the upstream resolver is not allowlisted")
				body, err := pe.get(fams[0].dest, "https://allowed.example/")
				require.NoError(t, err, "the proxy's own lookups still work")
				assert.Equal(t, "served allowed.example", body)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, dns.RcodeNameError, resp.Rcode)
			resp, err = de.query(t, "tcp", "allowed.example", dns.TypeAAAA, de.resolver)
			require.NoError(t, err)
			require.Equal(t, dns.RcodeSuccess, resp.Rcode)
			require.Len(t, resp.Answer, 1)
			for _, q := range pe.dns.Queries() {
				assert.NotEqual(t, "blocked.example.", q.Name, "a blocked name never reaches the upstream")
			}
			body, err := pe.get(fams[1].dest, "https://allowed.example/")
			require.NoError(t, err)
			assert.Equal(t, "served allowed.example", body)
			de.waitDNSEvent(t, "blocked.example", events.Blocked)
		})
	}
}
