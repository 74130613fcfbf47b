package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/internal/e2e"
	"github.com/g0lab/g0efilter/policy"
)

// TestSuggestReplay: a workload run against a policy that allows nothing
// is blocked at every step, or, auditing, gets through at every step, and
// leaves events; g0efilter suggest turns them into a policy; applied live
// and enforced, it lets the same run through, and nothing else.
func TestSuggestReplay(t *testing.T) {
	for _, mode := range []policy.Mode{policy.Enforce, policy.Audit} {
		t.Run(string(mode), func(t *testing.T) { suggestReplay(t, mode) })
	}
}

func suggestReplay(t *testing.T, mode policy.Mode) {
	env := e2e.New(t)
	names := []string{"x.tls.example", "plain.example", "other.example"}
	records := map[string][]netip.Addr{}
	for _, n := range names {
		records[n] = a3
	}
	pe := &proxyEnv{Env: env, web: env.WebServers(names...), dns: env.DNSServer(records)}
	env.Echo("tcp", ":7022")
	env.Echo("tcp", ":7023")
	env.RecordUDP(t, netip.MustParseAddrPort("[::]:7053"))
	pe.events = t.TempDir() + "/events.jsonl"
	pe.filter = env.StartFilter(t, "mode: "+string(mode)+"\nallowlist: {}\n", map[string]string{
		"DNS_UPSTREAMS": e2e.Upstream4[0].String(), "LOG_FILE": pe.events,
	})
	pe.filter.WaitForOutput("ruleset installed")

	// The run: TLS and HTTP by name, TCP and UDP to an address, from a
	// workload at Docker's default capabilities for the latter.
	hostile := func(proto string, to netip.AddrPort) bool {
		ok, _ := env.Hostile(t, e2e.AsNobody, proto, "-addr", to.String(), "-timeout", "1s")
		return ok
	}
	steps := []struct {
		name string
		do   func() bool
	}{
		{"https x.tls.example", func() bool { _, err := pe.get(a3[0], "https://x.tls.example/"); return err == nil }},
		{"http plain.example", func() bool { _, err := pe.get(a3[0], "http://plain.example/"); return err == nil }},
		{"tcp :7022", func() bool { return hostile("tcp", netip.AddrPortFrom(a3[0], 7022)) }},
		{"udp :7053", func() bool { return hostile("udp", netip.AddrPortFrom(a3[0], 7053)) }},
	}
	refused := events.Blocked
	if mode == policy.Audit {
		refused = events.WouldBlock
	}
	for _, s := range steps {
		assert.Equal(t, mode == policy.Audit, s.do(), "%s: blocked before, or through while auditing", s.name)
	}
	require.Eventually(t, func() bool {
		kernel := 0
		for _, e := range pe.readEvents(t) {
			if e.Component == events.Kernel && e.Action == refused {
				kernel++
			}
		}
		return kernel >= 2
	}, 5*time.Second, 50*time.Millisecond, "the kernel's events reached the LOG_FILE")

	code, suggested, errOut := runCmd(t, nil, "suggest", pe.events)
	require.Equal(t, 0, code, errOut)
	t.Logf("suggested:\n%s", suggested)
	p, err := policy.Parse("suggested", []byte(suggested))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"x.tls.example", "plain.example"}, p.Domains)
	assert.Len(t, p.AddrPorts, 2)

	pe.filter.SetPolicy("mode: enforce\n" + suggested)
	if mode == policy.Audit {
		pe.filter.WaitForOutput("enforce mode: the policy is enforced")
	}
	require.Eventually(t, func() bool { return steps[2].do() }, 10*time.Second, 100*time.Millisecond, "the suggested policy applies")
	for _, s := range steps {
		assert.True(t, s.do(), "%s: through with the suggested policy", s.name)
	}
	// And nothing else.
	_, err = pe.get(a3[0], "https://other.example/")
	assert.Error(t, err, "a name the run did not use")
	assert.False(t, hostile("tcp", netip.AddrPortFrom(a3[0], 7023)), "a port the run did not use")
	assert.False(t, hostile("udp", netip.AddrPortFrom(a3[0], 7022)), "a protocol the run did not use")
	assert.True(t, strings.Contains(suggested, "seen"), "entries carry their comments")
}
