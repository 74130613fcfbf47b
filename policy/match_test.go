package policy

import (
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustCompile(t testing.TB, p *Policy) *Snapshot {
	t.Helper()
	s, err := Compile(p)
	require.NoError(t, err)
	return s
}

func TestMatchHost(t *testing.T) {
	s := mustCompile(t, &Policy{Domains: []string{
		"github.com", "*.alpinelinux.org", "*.example.com", "api.example.com",
		"deep.a.b.example.net", "*.b.example.net", "xn--bcher-kva.example", "_acme.example.org",
	}})
	tests := []struct {
		name string
		rule string // "" means blocked
	}{
		{"github.com", "github.com"},
		{"GitHub.COM", "github.com"},
		{"github.com.", "github.com"},
		{"api.github.com", ""}, // an exact rule covers only itself
		{"hub.com", ""},
		{"com", ""},
		{"alpinelinux.org", ""}, // a wildcard does not cover the apex
		{"dl-cdn.alpinelinux.org", "*.alpinelinux.org"},
		{"a.b.c.d.alpinelinux.org", "*.alpinelinux.org"}, // any depth
		{"DL-CDN.AlpineLinux.ORG.", "*.alpinelinux.org"},
		{"xalpinelinux.org", ""},               // a suffix match must fall on a label boundary
		{"api.example.com", "api.example.com"}, // exact beats wildcard
		{"www.api.example.com", "*.example.com"},
		{"b.example.net", ""},
		{"x.b.example.net", "*.b.example.net"},
		{"deep.a.b.example.net", "deep.a.b.example.net"},
		{"a.b.example.net", "*.b.example.net"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"XN--BCHER-KVA.example.", "xn--bcher-kva.example"},
		{"bücher.example", ""}, // names on the wire are ASCII; see NormalizeDomain
		{"_acme.example.org", "_acme.example.org"},
		// Hostile input is never allowed.
		{"", ""},
		{".", ""},
		{"github.com..", ""},
		{".github.com", ""},
		{"github..com", ""},
		{"github.com:443", ""},
		{"github.com/x", ""},
		{"git hub.com", ""},
		{"github.com\x00", ""},
		{"x\x00.alpinelinux.org", ""},
		{"x\xff.alpinelinux.org", ""},
		{"x_\x7f.alpinelinux.org", ""}, // DEL hashes like '_' and must still be refused
		{"\x7facme.example.org", ""},
		{"GITHUB.COM\x00", ""},
		{"x..alpinelinux.org", ""},
		{"..alpinelinux.org", ""},
		{"*.alpinelinux.org", ""},
		{"x." + strings.Repeat("a", 64) + ".alpinelinux.org", ""},
		{strings.Repeat("a.", 126) + "alpinelinux.org", ""}, // over 253 bytes
		{"192.0.2.1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule, ok := s.MatchHost(tt.name)
			assert.Equal(t, tt.rule, rule)
			assert.Equal(t, tt.rule != "", ok)
			assert.Equal(t, ok, matched(s.MatchHost(tt.name)))
		})
	}
}

func TestMatchHostAnyDomain(t *testing.T) {
	s := mustCompile(t, &Policy{Domains: []string{"*", "github.com"}})
	assert.True(t, s.AllowsAnyDomain())
	rule, ok := s.MatchHost("anything.example")
	assert.True(t, ok)
	assert.Equal(t, AnyDomain, rule)
	rule, _ = s.MatchHost("github.com")
	assert.Equal(t, "github.com", rule, "the most specific rule explains the decision")
	assert.False(t, matched(s.MatchHost("bad..name")), "'*' allows every name, not every string")
	assert.False(t, matched(s.MatchHost("192.0.2.1")), "'*' allows names, not addresses")
}

func TestMatchAddr(t *testing.T) {
	s := mustCompile(t, &Policy{IPs: prefixes(
		"10.0.0.0/8", "10.1.0.0/16", "192.0.2.7/32", "198.51.100.0/24",
		"2001:db8::/32", "2001:db8:1::/48", "fd00::1/128",
	)})
	tests := []struct {
		addr string
		rule string
	}{
		{"10.0.0.0", "10.0.0.0/8"},
		{"10.255.255.255", "10.0.0.0/8"},
		{"10.1.2.3", "10.0.0.0/8"}, // the widest of nested rules
		{"11.0.0.0", ""},
		{"9.255.255.255", ""},
		{"192.0.2.7", "192.0.2.7/32"},
		{"192.0.2.8", ""},
		{"198.51.100.255", "198.51.100.0/24"},
		{"198.51.101.0", ""},
		{"::ffff:10.9.9.9", "10.0.0.0/8"}, // IPv4-mapped matches as IPv4
		{"2001:db8:ffff::1", "2001:db8::/32"},
		{"2001:db9::", ""},
		{"fd00::1", "fd00::1/128"},
		{"fd00::2", ""},
		{"fd00::1%eth0", "fd00::1/128"},
		{"::", ""},
		{"0.0.0.0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			rule, ok := s.MatchAddr(netip.MustParseAddr(tt.addr))
			assert.Equal(t, tt.rule != "", ok)
			assert.Equal(t, ok, matched(s.MatchAddr(netip.MustParseAddr(tt.addr))))
			if ok {
				assert.Equal(t, tt.rule, rule.String())
			}
		})
	}
	assert.False(t, matched(s.MatchAddr(netip.Addr{})))
}

func TestPrefixesAreDisjoint(t *testing.T) {
	s := mustCompile(t, &Policy{IPs: prefixes("10.1.0.0/16", "10.0.0.0/8", "192.0.2.1/32", "2001:db8:1::/48", "2001:db8::/32", "::/0")})
	v4, v6 := s.Prefixes()
	assert.Equal(t, prefixes("10.0.0.0/8", "192.0.2.1/32"), v4)
	assert.Equal(t, prefixes("::/0"), v6)
}

func TestCompileNormalisesHandBuiltPolicies(t *testing.T) {
	p := &Policy{
		IPs:     []netip.Prefix{netip.MustParsePrefix("::ffff:192.0.2.0/120")},
		Domains: []string{"GitHub.com.", "*.Example.ORG", "bücher.example"},
	}
	s := mustCompile(t, p)
	assert.Equal(t, []string{"github.com", "*.example.org", "xn--bcher-kva.example"}, s.Policy().Domains)
	assert.Equal(t, prefixes("192.0.2.0/24"), s.Policy().IPs)
	assert.True(t, matched(s.MatchHost("github.com")))

	p.Domains[0] = "changed.example"
	assert.True(t, matched(s.MatchHost("github.com")), "the snapshot does not share the caller's slices")

	_, err := Compile(&Policy{
		IPs:     []netip.Prefix{netip.MustParsePrefix("10.0.0.1/8"), {}},
		Domains: []string{"ok.example", "bad..example"},
	})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrDomain)
	assert.ErrorIs(t, err, ErrIP)
	assert.Contains(t, err.Error(), `Domains[1] "bad..example"`)
	assert.Contains(t, err.Error(), `IPs[0] "10.0.0.1/8"`)
}

func TestHolder(t *testing.T) {
	var h Holder
	assert.False(t, matched(h.MatchHost("github.com")), "an empty holder allows nothing")
	assert.False(t, matched(h.MatchAddr(netip.MustParseAddr("192.0.2.1"))))
	assert.NotNil(t, h.Load())

	first := mustCompile(t, &Policy{Domains: []string{"github.com"}})
	second := mustCompile(t, &Policy{Domains: []string{"example.com"}, IPs: prefixes("192.0.2.0/24")})
	h.Store(first)
	assert.True(t, matched(h.MatchHost("github.com")))
	h.Store(nil)
	assert.Same(t, first, h.Load(), "storing nil keeps the policy in force")

	// Readers racing a writer see one whole snapshot or the other.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := h.Load()
				gh, ex := matched(s.MatchHost("github.com")), matched(s.MatchHost("example.com"))
				if gh == ex {
					t.Errorf("mixed snapshot: github=%v example=%v", gh, ex)
					return
				}
			}
		})
	}
	for i := range 1000 {
		if i%2 == 0 {
			h.Store(second)
		} else {
			h.Store(first)
		}
	}
	close(stop)
	wg.Wait()

	h.Store(second)
	rule, ok := h.MatchHost("example.com")
	assert.True(t, ok)
	assert.Equal(t, "example.com", rule)
	pfx, ok := h.MatchAddr(netip.MustParseAddr("192.0.2.9"))
	assert.True(t, ok)
	assert.Equal(t, "192.0.2.0/24", pfx.String())
}

func TestMatchDoesNotAllocate(t *testing.T) {
	s := mustCompile(t, &Policy{Domains: []string{"*.example.com", "github.com"}, IPs: prefixes("10.0.0.0/8", "2001:db8::/32")})
	for _, name := range []string{"github.com", "a.b.example.com", "GitHub.COM.", "Www.Example.Com", "nope.example.org", "bad..name"} {
		assert.Zero(t, testing.AllocsPerRun(100, func() { s.MatchHost(name) }), name)
	}
	for _, a := range []string{"10.1.2.3", "2001:db8::1", "192.0.2.1", "::ffff:10.0.0.1"} {
		addr := netip.MustParseAddr(a)
		assert.Zero(t, testing.AllocsPerRun(100, func() { s.MatchAddr(addr) }), a)
	}
}

// The denylist wins over the allowlist, for names and addresses.
func TestDenylist(t *testing.T) {
	p, err := ReadFile("testdata/valid/deny.yaml")
	require.NoError(t, err)
	assert.Equal(t, prefixes("169.254.169.254/32", "10.9.0.0/16", "2001:db8:bad::/48"), p.DenyIPs)
	assert.Equal(t, []string{"*.evil.example.com", "secret.example.com"}, p.DenyDomains)
	s := mustCompile(t, p)

	for name, want := range map[string]string{
		"www.example.com":      "*.example.com",
		"a.evil.example.com":   "",
		"A.B.EVIL.example.com": "",
		"evil.example.com":     "*.example.com", // the wildcard covers subdomains only
		"secret.example.com":   "",
		"x.secret.example.com": "*.example.com",
	} {
		rule, ok := s.MatchHost(name)
		assert.Equal(t, want != "", ok, name)
		assert.Equal(t, want, rule, name)
		denyRule, denied := s.DenyHost(name)
		assert.Equal(t, want == "", denied, name)
		if denied {
			assert.NotEmpty(t, denyRule, name)
		}
	}
	for addr, want := range map[string]string{
		"10.1.2.3":        "10.0.0.0/8",
		"10.9.1.1":        "",
		"169.254.169.254": "",
		"2001:db8::1":     "2001:db8::/32",
		"2001:db8:bad::1": "",
	} {
		a := netip.MustParseAddr(addr)
		rule, ok := s.MatchAddr(a)
		assert.Equal(t, want != "", ok, addr)
		if ok {
			assert.Equal(t, want, rule.String(), addr)
		}
		_, denied := s.DenyAddr(a)
		assert.Equal(t, want == "", denied, addr)
	}
	v4, v6 := s.DenyPrefixes()
	assert.Equal(t, prefixes("10.9.0.0/16", "169.254.169.254/32"), v4)
	assert.Equal(t, prefixes("2001:db8:bad::/48"), v6)
	assert.Zero(t, testing.AllocsPerRun(100, func() { s.MatchHost("a.evil.example.com") }))

	_, err = Compile(&Policy{DenyDomains: []string{"*"}})
	assert.ErrorIs(t, err, ErrDomain)
	_, err = Loader{DenyDomains: &List{Name: "DENYLIST_DOMAINS", Value: "ok.example,*"}}.Load()
	assert.ErrorContains(t, err, "DENYLIST_DOMAINS")
	p, err = Loader{DenyIPs: &List{Name: "DENYLIST_IPS", Value: "169.254.169.254, fd00::/8"}}.Load()
	require.NoError(t, err)
	assert.Equal(t, prefixes("169.254.169.254/32", "fd00::/8"), p.DenyIPs)
}

// matched reports the verdict of a Match method, for assertions.
func matched[T any](_ T, ok bool) bool { return ok }
