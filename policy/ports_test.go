package policy

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseAddrEntry(t *testing.T) {
	tests := []struct {
		in   string
		want AddrRule
	}{
		{"1.1.1.1", AddrRule{Prefix: netip.MustParsePrefix("1.1.1.1/32")}},
		{"2001:db8::/32", AddrRule{Prefix: netip.MustParsePrefix("2001:db8::/32")}},
		{"udp/1.1.1.1:53", AddrRule{UDP, netip.MustParsePrefix("1.1.1.1/32"), Ports{53, 53}}},
		{"Tcp/198.51.100.0/24:5432", AddrRule{TCP, netip.MustParsePrefix("198.51.100.0/24"), Ports{5432, 5432}}},
		{"tcp/[2001:db8::7]:8000-8099", AddrRule{TCP, netip.MustParsePrefix("2001:db8::7/128"), Ports{8000, 8099}}},
		{"[2001:db8::/32]:443", AddrRule{AnyProto, netip.MustParsePrefix("2001:db8::/32"), Ports{443, 443}}},
		{"[2001:db8::]/32:443", AddrRule{AnyProto, netip.MustParsePrefix("2001:db8::/32"), Ports{443, 443}}},
		{"udp/2001:db8::1", AddrRule{UDP, netip.MustParsePrefix("2001:db8::1/128"), Ports{}}},
		{"[::ffff:192.0.2.1]:80", AddrRule{AnyProto, netip.MustParsePrefix("192.0.2.1/32"), Ports{80, 80}}},
	}
	for _, tt := range tests {
		got, err := ParseAddrEntry(tt.in)
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
		again, err := ParseAddrEntry(got.String())
		require.NoError(t, err, "canonical form %q of %q", got.String(), tt.in)
		assert.Equal(t, got, again, "round trip of %q", tt.in)
	}
	for _, bad := range []string{"tcp/", "tcp/1.1.1.1:", "icmp/1.1.1.1", "1.1.1.1:1-", "[2001:db8::1]x", "tcp/[2001:db8::1]:0", "1.1.1.1:2-1"} {
		_, err := ParseAddrEntry(bad)
		assert.ErrorIs(t, err, ErrIP, bad)
	}
}

func TestParseNameEntry(t *testing.T) {
	tests := []struct {
		in   string
		want NameRule
	}{
		{"github.com", NameRule{Pattern: "github.com"}},
		{"tcp/GitHub.com.:22", NameRule{TCP, "github.com", Ports{22, 22}}},
		{"*.example.com:8443", NameRule{AnyProto, "*.example.com", Ports{8443, 8443}}},
		{"udp/*.voip.example:5060-5061", NameRule{UDP, "*.voip.example", Ports{5060, 5061}}},
		{"*.example.com:1-65535", NameRule{AnyProto, "*.example.com", Ports{1, 65535}}},
	}
	for _, tt := range tests {
		got, err := ParseNameEntry(tt.in)
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
		if !got.Ports.All() {
			again, err := ParseNameEntry(got.String())
			require.NoError(t, err)
			assert.Equal(t, got, again)
		}
	}
	for _, bad := range []string{"tcp/github.com", "tcp/github.com:0", "udp/x.example:1-300", "*:443", "https://github.com:443", "github.com:22:23", "gre/github.com:1"} {
		_, err := ParseNameEntry(bad)
		assert.ErrorIs(t, err, ErrDomain, bad)
	}
}

func TestServicesDisjoint(t *testing.T) {
	rules := []AddrRule{
		{AnyProto, netip.MustParsePrefix("10.0.0.0/8"), Ports{1, 100}},
		{TCP, netip.MustParsePrefix("10.2.0.0/16"), Ports{20, 30}},     // held by the first: left out
		{UDP, netip.MustParsePrefix("10.0.0.0/8"), Ports{}},            // every UDP port: holds the first's UDP part
		{TCP, netip.MustParsePrefix("2001:db8::/32"), Ports{443, 443}}, // another family
		{TCP, netip.MustParsePrefix("10.0.0.0/8"), Ports{101, 200}},    // beside the first
		{TCP, netip.MustParsePrefix("10.3.0.0/16"), Ports{1000, 1000}}, // inside the prefix, apart in ports
	}
	got, _, err := services(rules)
	require.NoError(t, err)
	assert.Equal(t, []Service{
		{TCP, netip.MustParsePrefix("10.0.0.0/8"), Ports{1, 100}},
		{TCP, netip.MustParsePrefix("10.0.0.0/8"), Ports{101, 200}},
		{TCP, netip.MustParsePrefix("10.3.0.0/16"), Ports{1000, 1000}},
		{TCP, netip.MustParsePrefix("2001:db8::/32"), Ports{443, 443}},
		{UDP, netip.MustParsePrefix("10.0.0.0/8"), Ports{1, 65535}},
	}, got)
}

func TestServicesOverlapInPart(t *testing.T) {
	rules := []AddrRule{
		{TCP, netip.MustParsePrefix("192.0.2.0/24"), Ports{443, 443}},
		{TCP, netip.MustParsePrefix("10.0.0.0/8"), Ports{1, 100}},
		{AnyProto, netip.MustParsePrefix("10.1.0.0/16"), Ports{50, 200}},
	}
	_, bad, err := services(rules)
	require.ErrorIs(t, err, ErrIP)
	assert.Equal(t, 2, bad)
	assert.Contains(t, err.Error(), "tcp/10.0.0.0/8:1-100 and 10.1.0.0/16:50-200 overlap in part")
}

func TestMatchHostPort(t *testing.T) {
	snap, err := Compile(&Policy{
		Domains: []string{"github.com"},
		NamePorts: []NameRule{
			{TCP, "github.com", Ports{22, 22}},
			{AnyProto, "*.example.com", Ports{8443, 8443}},
			{UDP, "*.voip.example.com", Ports{5060, 5061}},
		},
		DenyDomains: []string{"bad.example.com"},
	})
	require.NoError(t, err)
	tests := []struct {
		name  string
		proto Proto
		port  uint16
		rule  string
	}{
		{"github.com", TCP, 22, "tcp/github.com:22"},
		{"GITHUB.com.", TCP, 22, "tcp/github.com:22"},
		{"github.com", UDP, 22, ""},
		{"github.com", TCP, 443, ""}, // the plain entry is MatchHost's
		{"www.example.com", TCP, 8443, "*.example.com:8443"},
		{"www.example.com", UDP, 8443, "*.example.com:8443"},
		{"example.com", TCP, 8443, ""},
		{"bad.example.com", TCP, 8443, ""}, // denied
		{"a.voip.example.com", UDP, 5061, "udp/*.voip.example.com:5060-5061"},
		{"a.voip.example.com", TCP, 8443, "*.example.com:8443"},
		{"a..example.com", TCP, 8443, ""},
		{"1.2.3.4", TCP, 8443, ""},
	}
	for _, tt := range tests {
		rule, ok := snap.MatchHostPort(tt.name, tt.proto, tt.port)
		assert.Equal(t, tt.rule != "", ok, "%s %v/%d", tt.name, tt.proto, tt.port)
		assert.Equal(t, tt.rule, rule, "%s %v/%d", tt.name, tt.proto, tt.port)
	}
	assert.Equal(t, []NameRule{
		{UDP, "*.voip.example.com", Ports{5060, 5061}},
		{AnyProto, "*.example.com", Ports{8443, 8443}},
	}, snap.MatchNamePorts("x.voip.example.com"))
	assert.Nil(t, snap.MatchNamePorts("bad.example.com"))
	assert.Equal(t, []Ports{{8443, 8443}}, snap.ProxiedPorts())
}

func TestLoaderListsWithPorts(t *testing.T) {
	p, err := Loader{
		IPs:     &List{Name: "ALLOWLIST_IPS", Value: "1.1.1.1, udp/1.1.1.1:53, tcp/[2001:db8::7]:22"},
		Domains: &List{Name: "ALLOWLIST_DOMAINS", Value: "github.com,tcp/github.com:22"},
	}.Load()
	require.NoError(t, err)
	assert.Equal(t, prefixes("1.1.1.1/32"), p.IPs)
	assert.Equal(t, []AddrRule{
		{UDP, netip.MustParsePrefix("1.1.1.1/32"), Ports{53, 53}},
		{TCP, netip.MustParsePrefix("2001:db8::7/128"), Ports{22, 22}},
	}, p.AddrPorts)
	assert.Equal(t, []NameRule{{TCP, "github.com", Ports{22, 22}}}, p.NamePorts)

	_, err = Loader{
		IPs:     &List{Name: "ALLOWLIST_IPS", Value: "tcp/10.0.0.0/8:1-100,tcp/10.1.0.0/16:50-200"},
		Domains: &List{Name: "ALLOWLIST_DOMAINS", Value: "tcp/github.com"},
		DenyIPs: &List{Name: "DENYLIST_IPS", Value: "tcp/10.0.0.1:22"},
	}.Load()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `ALLOWLIST_IPS: item 2 "tcp/10.1.0.0/16:50-200": invalid IP or CIDR: tcp/10.0.0.0/8:1-100 and tcp/10.1.0.0/16:50-200 overlap in part`)
	assert.Contains(t, err.Error(), `ALLOWLIST_DOMAINS: item 1 "tcp/github.com": invalid domain: a name with a protocol needs a port`)
	assert.Contains(t, err.Error(), `DENYLIST_IPS: item 1 "tcp/10.0.0.1:22": invalid IP or CIDR: a protocol or port is not allowed here; write 10.0.0.1`)
}

func TestMatchAddrPort(t *testing.T) {
	p, err := Parse("p.yaml", []byte(`
allowlist:
  ips: ["udp/1.1.1.1:53", "tcp/198.51.100.0/24:5432", "[2001:db8::7]:8000-8099"]
denylist:
  ips: ["198.51.100.66"]
`))
	require.NoError(t, err)
	snap, err := Compile(p)
	require.NoError(t, err)
	for _, tt := range []struct {
		addr  string
		proto Proto
		port  uint16
		rule  string
	}{
		{"1.1.1.1", UDP, 53, "udp/1.1.1.1:53"},
		{"1.1.1.1", TCP, 53, ""},
		{"::ffff:1.1.1.1", UDP, 53, "udp/1.1.1.1:53"},
		{"198.51.100.9", TCP, 5432, "tcp/198.51.100.0/24:5432"},
		{"198.51.100.66", TCP, 5432, ""}, // denied
		{"2001:db8::7", UDP, 8050, "[2001:db8::7]:8000-8099"},
		{"2001:db8::7", TCP, 8100, ""},
	} {
		rule, ok := snap.MatchAddrPort(netip.MustParseAddr(tt.addr), tt.proto, tt.port)
		assert.Equal(t, tt.rule, rule, "%s %v/%d", tt.addr, tt.proto, tt.port)
		assert.Equal(t, tt.rule != "", ok)
	}
}

// FuzzEntries checks that an entry either fails with the package's error
// or has a canonical form that parses back to the same entry.
func FuzzEntries(f *testing.F) {
	for _, s := range []string{"1.1.1.1", "udp/1.1.1.1:53", "tcp/[2001:db8::7]:8000-8099", "[2001:db8::]/32:443",
		"tcp/github.com:22", "*.example.com:8443", "TCP/x.example.:1-256", "udp/[::ffff:1.2.3.4]:9", "tcp/a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if r, err := ParseAddrEntry(s); err != nil {
			require.ErrorIs(t, err, ErrIP)
		} else {
			require.True(t, r.Prefix.IsValid())
			require.Equal(t, r.Prefix.Masked(), r.Prefix)
			again, err := ParseAddrEntry(r.String())
			require.NoError(t, err, "canonical %q of %q", r.String(), s)
			require.Equal(t, r, again)
		}
		if r, err := ParseNameEntry(s); err != nil {
			require.ErrorIs(t, err, ErrDomain)
		} else if !r.Ports.All() {
			again, err := ParseNameEntry(r.String())
			require.NoError(t, err, "canonical %q of %q", r.String(), s)
			require.Equal(t, r, again)
		}
	})
}

// FuzzParsePorts checks that a parsed policy's entries with ports compile
// and allow what they say: each name entry its name on its first port,
// each address entry its first address on its first port (unless denied).
func FuzzParsePorts(f *testing.F) {
	seedFiles(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			return // FuzzParse checks the errors
		}
		s, err := Compile(p)
		require.NoError(t, err)
		for _, r := range p.NamePorts {
			name := strings.TrimPrefix(r.Pattern, "*.")
			if strings.HasPrefix(r.Pattern, "*.") {
				name = "x." + name
			}
			proto := r.Proto
			if proto == AnyProto {
				proto = TCP
			}
			_, denied := s.DenyHost(name)
			if len(name) <= maxNameLen && !denied {
				_, ok := s.MatchHostPort(name, proto, r.Ports.First)
				require.True(t, ok, "%v allows %s", r, name)
			}
		}
		for _, r := range p.AddrPorts {
			proto, port := r.Proto, r.Ports.First
			if proto == AnyProto {
				proto = UDP
			}
			if port == 0 {
				port = 1
			}
			if _, denied := s.DenyAddr(r.Prefix.Addr()); !denied {
				_, ok := s.MatchAddrPort(r.Prefix.Addr(), proto, port)
				require.True(t, ok, "%v allows its address", r)
			}
		}
	})
}

// TestEditorPorts: the Editor adds entries with protocols and ports as it
// adds the others, and refuses what the file already holds.
func TestEditorPorts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`# mine
allowlist:
  ips:
    - "1.1.1.1"   # a resolver
  domains:
    - "github.com"
denylist:
  domains: ["bad.example"]
`), 0o644))
	e := &Editor{Path: path}
	for _, entry := range []string{"TCP/GitHub.com:22", "*.example.org:8443"} {
		added, err := e.AddDomain(entry)
		require.NoError(t, err, entry)
		assert.True(t, added, entry)
	}
	added, err := e.AddIP("udp/[2001:db8::53]:53")
	require.NoError(t, err)
	assert.True(t, added)
	added, err = e.AddDomain("tcp/github.com:22")
	require.NoError(t, err)
	assert.False(t, added, "already there")
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, `# mine
allowlist:
  ips:
    - "1.1.1.1"   # a resolver
    - "udp/[2001:db8::53]:53"
  domains:
    - "github.com"
    - "tcp/github.com:22"
    - "*.example.org:8443"
denylist:
  domains: ["bad.example"]
`, string(got))
}
