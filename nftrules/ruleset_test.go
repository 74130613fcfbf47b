package nftrules

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func pfx(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestBuildErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"v6 in Allow4":             {Allow4: pfx("2001:db8::/32")},
		"v4 in Allow6":             {Allow6: pfx("10.0.0.0/8")},
		"mapped v4 in v6":          {Allow6: pfx("::ffff:10.0.0.0/104")},
		"overlap":                  {Allow4: pfx("10.0.0.0/8", "10.1.0.0/16")},
		"unsorted":                 {Allow4: pfx("10.1.0.0/16", "10.0.0.0/16")},
		"duplicate":                {Allow6: pfx("2001:db8::/32", "2001:db8::/32")},
		"invalid prefix":           {Allow4: []netip.Prefix{{}}},
		"unknown mode":             {Mode: 7},
		"long log prefix":          {LogPrefix: strings.Repeat("x", 128)},
		"long allow prefix":        {AllowLogPrefix: strings.Repeat("x", 128)},
		"long pinned prefix":       {Mode: ModeDNS, PinnedLogPrefix: strings.Repeat("x", 128)},
		"allow prefix as blocked":  {AllowLogPrefix: DefaultLogPrefix},
		"pinned prefix as blocked": {Mode: ModeDNS, LogPrefix: "x: ", PinnedLogPrefix: "x: "},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Build(cfg)
			require.ErrorIs(t, err, ErrConfig)
		})
	}
}

func TestBuildDefaults(t *testing.T) {
	r, err := Build(Config{Allow4: pfx("10.0.0.1/8")})
	require.NoError(t, err)
	assert.Equal(t, pfx("10.0.0.0/8"), r.set(SetAllow4).Elements, "host bits are masked")
	s := r.String()
	for _, want := range []string{"redirect to :8080", "redirect to :8443", "meta mark 0x00006700", "group 100",
		`prefix "g0efilter blocked: "`, `prefix "g0efilter allowed: "`} {
		assert.Contains(t, s, want)
	}
	assert.NotContains(t, s, "@pinned4")
	assert.NotContains(t, s, "@pinned6")
	assert.Nil(t, r.set(setPinned4), "https mode pins no address on every port")
	assert.NotNil(t, r.set(setPinnedPorts4), "but it pins addresses on a name's ports")

	r, err = Build(Config{Mode: ModeDNS})
	require.NoError(t, err)
	assert.Contains(t, r.String(), "redirect to :53")
	require.NotNil(t, r.set(setPinned6))
	assert.True(t, r.set(setPinned6).Timeout)
	assert.Contains(t, r.String(), `ip6 daddr @pinned6 ct state new log prefix "g0efilter pinned: " group 100 accept`)

	// Prefixes that go unused need not differ.
	_, err = Build(Config{QuietAllowed: true, AllowLogPrefix: DefaultLogPrefix})
	require.NoError(t, err)
	_, err = Build(Config{PinnedLogPrefix: DefaultLogPrefix})
	require.NoError(t, err, "https mode has no pinned rules")
}

// The nat chain of a dns mode ruleset: the filter's own sockets first,
// then DNS to the local server.
func TestBuildDNSNAT(t *testing.T) {
	r, err := Build(Config{Mode: ModeDNS, Allow4: pfx("1.1.1.1/32")})
	require.NoError(t, err)
	var got []string
	for _, c := range r.chains {
		if c.Name == chainNATOut {
			for _, rule := range c.Rules {
				got = append(got, rule.String())
			}
		}
	}
	assert.Equal(t, []string{"jump own", "udp dport 53 redirect to :53", "tcp dport 53 redirect to :53"}, got)
}

// Allowed connections are logged once, in the filter chain, when they are
// new; QuietAllowed logs blocked ones only. Either way a destination in a
// set is accepted whatever its conntrack state.
func TestBuildAllowLog(t *testing.T) {
	for _, cfg := range []Config{
		{Allow4: pfx("10.0.0.0/8")},
		{Mode: ModeDNS, AllowLogPrefix: "a: ", PinnedLogPrefix: "p: ", NflogGroup: 9},
		{QuietAllowed: true},
		{Mode: ModeDNS, QuietAllowed: true},
	} {
		t.Run(fmt.Sprintf("%v quiet=%v", cfg.Mode, cfg.QuietAllowed), func(t *testing.T) {
			r, err := Build(cfg)
			require.NoError(t, err)
			d := cfg.withDefaults()
			nat, filter := r.chain(chainNATOut), r.chain(chainOutput)
			for _, rule := range nat.Rules {
				assert.Nil(t, rule.Log, "nat rule %q: the filter chain logs", rule)
			}
			sets := map[string]string{SetAllow4: d.AllowLogPrefix, SetAllow6: d.AllowLogPrefix}
			if cfg.Mode == ModeDNS {
				sets[setPinned4], sets[setPinned6] = d.PinnedLogPrefix, d.PinnedLogPrefix
			}
			for set, prefix := range sets {
				var logged, plain int
				for _, rule := range filter.Rules {
					if len(rule.Match) == 0 {
						continue
					}
					in, ok := rule.Match[0].(destInSet)
					if !ok || in.Set != set {
						continue
					}
					require.Equal(t, accept, rule.Verdict, "%q", rule)
					if rule.Log == nil {
						assert.Len(t, rule.Match, 1, "%q", rule)
						plain++
						continue
					}
					assert.Equal(t, []match{in, ctState{ctNew}}, rule.Match)
					assert.Equal(t, logStmt{Prefix: prefix, Group: d.NflogGroup}, *rule.Log)
					logged++
				}
				assert.Equal(t, 1, plain, "set %s: one unlogged accept", set)
				want := 1
				if cfg.QuietAllowed {
					want = 0
				}
				assert.Equal(t, want, logged, "set %s: logged accepts", set)
			}
		})
	}
}

// The rules that the design rests on, by mode.
func TestBuildInvariants(t *testing.T) {
	for _, mode := range []Mode{ModeHTTPS, ModeDNS} {
		t.Run(mode.String(), func(t *testing.T) {
			r, err := Build(Config{Mode: mode})
			require.NoError(t, err)
			require.Len(t, r.chains, 8)
			own, nat, filter, input := r.chain(chainOwn), r.chain(chainNATOut), r.chain(chainOutput), r.chain(chainInput)
			pre, fwd := r.chain(chainPrerouting), r.chain(chainForward)
			assert.Equal(t, hookPrerouting, pre.Hook)
			assert.Less(t, pre.Priority, int32(-200), "before conntrack")
			assert.Equal(t, hookForward, fwd.Hook)
			assert.Equal(t, drop, fwd.Policy, "nothing is routed through")
			assert.Equal(t, chainRegular, own.Type)
			assert.Equal(t, []rule{{Match: []match{markEq{DefaultBypassMark}}, Verdict: accept}}, own.Rules,
				"without a cgroup, the mark alone")
			// The local service ports refuse whatever does not come
			// through loopback.
			assert.Equal(t, hookInput, input.Hook)
			for _, p := range (Config{Mode: mode}).withDefaults().servicePorts() {
				assert.Contains(t, input.Rules, rule{Match: []match{iifNotLoopback{}, p}, Verdict: drop})
			}
			assert.Equal(t, chainNAT, nat.Type)
			assert.Less(t, nat.Priority, filter.Priority, "nat runs before filter")
			assert.Equal(t, drop, filter.Policy, "fail closed")
			// Spoofed sources go first, before a forged packet can pass
			// as part of an established connection.
			assert.Equal(t, []match{userSocket{}, srcNotLocal{}}, filter.Rules[0].Match)
			assert.Equal(t, drop, filter.Rules[0].Verdict)
			assert.Equal(t, rule{Match: []match{ctState{ctEstablished | ctRelated}}, Verdict: accept}, filter.Rules[1])
			last := filter.Rules[len(filter.Rules)-1]
			assert.Equal(t, rule{Match: []match{ctState{ctNew}}, Verdict: verdict{Kind: verdictJump, Chain: chainBlock}}, last,
				"a new connection that nothing allowed goes to the block chain")
			for _, c := range []*chain{r.chain(chainBlock), r.chain(chainDeny)} {
				for _, rl := range c.Rules {
					assert.NotEqual(t, accept, rl.Verdict, "%s: enforcing, %q", c.Name, rl)
					assert.NotNil(t, rl.Log, "%s: %q", c.Name, rl)
				}
			}
			// The filter's own packets are told apart before any
			// redirect, and before anything else in the filter chain
			// but established connections.
			jump := rule{Verdict: verdict{Kind: verdictJump, Chain: chainOwn}}
			assert.Equal(t, jump, nat.Rules[0])
			assert.Equal(t, jump, filter.Rules[2])
		})
	}
}

// Auditing, the block and deny chains log and accept; everything else is
// as enforcing: the guards hold.
func TestBuildAudit(t *testing.T) {
	for _, mode := range []Mode{ModeHTTPS, ModeDNS} {
		t.Run(mode.String(), func(t *testing.T) {
			enforce, err := Build(Config{Mode: mode, OwnCgroup: 7, GuardPorts: []uint16{9090}})
			require.NoError(t, err)
			audit, err := Build(Config{Mode: mode, OwnCgroup: 7, GuardPorts: []uint16{9090}, Audit: true})
			require.NoError(t, err)
			require.Len(t, audit.chains, len(enforce.chains))
			for i, c := range audit.chains {
				if c.Name == chainBlock || c.Name == chainDeny {
					continue
				}
				assert.Equal(t, enforce.chains[i], c, "chain %s is the same in both modes", c.Name)
			}
			assert.Equal(t, []rule{{Log: &logStmt{Prefix: WouldBlockLogPrefix, Group: DefaultNflogGroup}, Verdict: accept}},
				audit.chain(chainBlock).Rules)
			assert.Equal(t, []rule{
				{Match: []match{ctState{ctNew}}, Log: &logStmt{Prefix: WouldDenyLogPrefix, Group: DefaultNflogGroup}, Verdict: accept},
				{Verdict: accept},
			}, audit.chain(chainDeny).Rules)
			assert.Contains(t, audit.String(), `log prefix "g0efilter would block: " group 100 accept`)
		})
	}
}

func TestDiffPrefixes(t *testing.T) {
	old := pfx("10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24", "192.168.0.0/16")
	cur := pfx("10.0.0.0/23", "10.0.2.0/24", "172.16.0.0/12")
	removed, added := diffPrefixes(old, cur)
	assert.Equal(t, pfx("10.0.0.0/24", "10.0.1.0/24", "192.168.0.0/16"), removed)
	assert.Equal(t, pfx("10.0.0.0/23", "172.16.0.0/12"), added)

	removed, added = diffPrefixes(old, old)
	assert.Empty(t, removed)
	assert.Empty(t, added)
	removed, added = diffPrefixes(nil, cur)
	assert.Empty(t, removed)
	assert.Equal(t, cur, added)
}

func TestMode(t *testing.T) {
	assert.Equal(t, "https", ModeHTTPS.String())
	assert.Equal(t, "dns", ModeDNS.String())
	assert.Equal(t, "Mode(9)", Mode(9).String())
}
