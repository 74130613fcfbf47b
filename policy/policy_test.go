package policy

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden .err files in testdata/invalid")

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		file      string
		want      *Policy
		anyDomain bool
	}{
		{
			file: "full.yaml",
			want: &Policy{
				IPs: prefixes("1.1.1.1/32", "192.168.0.0/16", "2001:db8::1/128", "2001:db8:1::/48", "198.51.100.7/32"),
				Domains: []string{"github.com", "*.alpinelinux.org", "example.com", "xn--bcher-kva.example",
					"_acme-challenge.example.net"},
			},
		},
		{file: "any.yaml", want: &Policy{Domains: []string{"*"}}, anyDomain: true},
		{
			file: "ports.yaml",
			want: &Policy{
				IPs:     prefixes("1.1.1.1/32"),
				Domains: []string{"github.com"},
				AddrPorts: []AddrRule{
					{UDP, netip.MustParsePrefix("1.1.1.1/32"), Ports{53, 53}},
					{TCP, netip.MustParsePrefix("198.51.100.0/24"), Ports{5432, 5432}},
					{TCP, netip.MustParsePrefix("2001:db8::7/128"), Ports{8000, 8099}},
					{TCP, netip.MustParsePrefix("2001:db8::/32"), Ports{443, 443}},
					{AnyProto, netip.MustParsePrefix("192.0.2.9/32"), Ports{853, 853}},
					{UDP, netip.MustParsePrefix("192.0.2.10/32"), Ports{}},
				},
				NamePorts: []NameRule{
					{TCP, "github.com", Ports{22, 22}},
					{AnyProto, "*.example.com", Ports{8443, 8443}},
					{UDP, "*.voip.example", Ports{5060, 5061}},
				},
				DenyIPs:     prefixes("169.254.169.254/32", "10.0.0.0/8"),
				DenyDomains: []string{"*.evil.example.com"},
			},
		},
		{file: "nothing.yaml", want: &Policy{}},
		{file: "null-lists.yaml", want: &Policy{}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p, err := ReadFile(filepath.Join("testdata", "valid", tt.file))
			require.NoError(t, err)
			assert.Equal(t, tt.want, p)
			assert.Equal(t, tt.anyDomain, p.AllowsAnyDomain())
		})
	}
}

// TestParseInvalid checks every broken policy in testdata/invalid against the
// error it must give, kept beside it in a .err file (go test -update
// rewrites them; review the diff).
func TestParseInvalid(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "invalid", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			p, err := ReadFile(file)
			require.Error(t, err)
			assert.Nil(t, p, "a policy with mistakes must not be returned")

			var list ErrorList
			require.ErrorAs(t, err, &list)
			for _, e := range list {
				assert.Equal(t, file, e.Source)
				assert.NotEmpty(t, e.Err)
			}

			golden := strings.TrimSuffix(file, ".yaml") + ".err"
			got := err.Error() + "\n"
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "missing golden file; run go test -update and review it")
			assert.Equal(t, string(want), got)
		})
	}
}

func TestParseReportsEveryBadEntry(t *testing.T) {
	_, err := ReadFile(filepath.Join("testdata", "invalid", "bad-ips.yaml"))
	var list ErrorList
	require.ErrorAs(t, err, &list)
	require.Len(t, list, 7)
	for i, e := range list {
		assert.Equal(t, i+3, e.Line, "entry %d", i)
		assert.ErrorIs(t, e, ErrIP)
	}
	assert.Equal(t, "allowlist.ips[1]", list[1].Field)
	assert.Equal(t, "192.0.2.1:0", list[1].Value)
}

func TestParseErrorSentinels(t *testing.T) {
	tests := []struct {
		file string
		want error
	}{
		{"bad-ips.yaml", ErrIP},
		{"bad-domains.yaml", ErrDomain},
		{"unknown-keys.yaml", ErrUnknownKey},
		{"wrong-types.yaml", ErrType},
		{"wrong-item-types.yaml", ErrType},
		{"duplicate-key.yaml", ErrDuplicateKey},
		{"bad-indent.yaml", ErrSyntax},
		{"empty.yaml", ErrEmpty},
		{"two-documents.yaml", ErrSyntax},
		{"not-a-mapping.yaml", ErrType},
		{"alias.yaml", ErrType},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := ReadFile(filepath.Join("testdata", "invalid", tt.file))
			assert.ErrorIs(t, err, tt.want)
		})
	}
}

func TestReadFileMissing(t *testing.T) {
	_, err := ReadFile(filepath.Join(t.TempDir(), "absent.yaml"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), "absent.yaml")
}

func TestParseLists(t *testing.T) {
	ips, err := ParseIPList("ALLOWLIST_IPS", " 192.0.2.1 ,2001:db8::/32,, 192.0.2.1, ")
	require.NoError(t, err)
	assert.Equal(t, prefixes("192.0.2.1/32", "2001:db8::/32"), ips)

	domains, err := ParseDomainList("ALLOWLIST_DOMAINS", "GitHub.com., *.example.org,github.com")
	require.NoError(t, err)
	assert.Equal(t, []string{"github.com", "*.example.org"}, domains)

	_, err = ParseIPList("ALLOWLIST_IPS", "192.0.2.1,192.0.2.1:80,bogus")
	assert.EqualError(t, err, `ALLOWLIST_IPS: item 2 "192.0.2.1:80": invalid IP or CIDR: a protocol or port is not allowed here; write 192.0.2.1`+"\n"+
		`ALLOWLIST_IPS: item 3 "bogus": invalid IP or CIDR: not an IP address or CIDR prefix`)

	_, err = ParseDomainList("ALLOWLIST_DOMAINS", "ok.example, *bad.example")
	assert.EqualError(t, err, `ALLOWLIST_DOMAINS: item 2 "*bad.example": invalid domain: '*' is allowed only as the whole first label, as in *.example.com`)
	assert.ErrorIs(t, err, ErrDomain)

	empty, err := ParseDomainList("ALLOWLIST_DOMAINS", " , ")
	require.NoError(t, err)
	assert.Empty(t, empty)
}

func TestLoaderPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte("allowlist:\n  ips: [\"192.0.2.1\"]\n  domains: [\"file.example\"]\n"), 0o644))
	fileIPs := prefixes("192.0.2.1/32")
	envIPs := &List{Name: "ALLOWLIST_IPS", Value: "198.51.100.0/24"}
	envDomains := &List{Name: "ALLOWLIST_DOMAINS", Value: "env.example"}

	tests := []struct {
		name   string
		loader Loader
		want   *Policy
	}{
		{"file only", Loader{Path: path}, &Policy{IPs: fileIPs, Domains: []string{"file.example"}}},
		{"env IPs win", Loader{Path: path, IPs: envIPs}, &Policy{IPs: prefixes("198.51.100.0/24"), Domains: []string{"file.example"}}},
		{"env domains win", Loader{Path: path, Domains: envDomains}, &Policy{IPs: fileIPs, Domains: []string{"env.example"}}},
		{"set but empty clears", Loader{Path: path, Domains: &List{Name: "ALLOWLIST_DOMAINS"}}, &Policy{IPs: fileIPs}},
		{"both env: file not read", Loader{Path: filepath.Join(dir, "absent.yaml"), IPs: envIPs, Domains: envDomains},
			&Policy{IPs: prefixes("198.51.100.0/24"), Domains: []string{"env.example"}}},
		{"no file", Loader{Domains: envDomains}, &Policy{Domains: []string{"env.example"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.loader.Load()
			require.NoError(t, err)
			assert.Equal(t, tt.want, p)
		})
	}
}

func TestLoaderReportsAllSources(t *testing.T) {
	_, err := Loader{
		IPs:     &List{Name: "ALLOWLIST_IPS", Value: "nope"},
		Domains: &List{Name: "ALLOWLIST_DOMAINS", Value: "bad..name"},
	}.Load()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ALLOWLIST_IPS: item 1")
	assert.Contains(t, err.Error(), "ALLOWLIST_DOMAINS: item 1")
	assert.ErrorIs(t, err, ErrIP)
	assert.ErrorIs(t, err, ErrDomain)

	_, err = Loader{Path: filepath.Join(t.TempDir(), "absent.yaml"), IPs: &List{Name: "ALLOWLIST_IPS"}}.Load()
	assert.True(t, errors.Is(err, os.ErrNotExist), "the file is still needed for the list not overridden")
}

func TestLoaderMode(t *testing.T) {
	dir := t.TempDir()
	audited := filepath.Join(dir, "audit.yaml")
	plain := filepath.Join(dir, "plain.yaml")
	require.NoError(t, os.WriteFile(audited, []byte("mode: Audit\nallowlist:\n  domains: [a.example]\n"), 0o644))
	require.NoError(t, os.WriteFile(plain, []byte("allowlist:\n  domains: [a.example]\n"), 0o644))

	tests := []struct {
		name   string
		loader Loader
		want   Mode
	}{
		{"file states audit", Loader{Path: audited}, Audit},
		{"file wins over the default", Loader{Path: audited, Mode: Enforce}, Audit},
		{"default when the file states none", Loader{Path: plain, Mode: Audit}, Audit},
		{"neither", Loader{Path: plain}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.loader.Load()
			require.NoError(t, err)
			assert.Equal(t, tt.want, p.Mode)
			snap, err := Compile(p)
			require.NoError(t, err)
			assert.Equal(t, tt.want == Audit, snap.Audit())
			assert.Equal(t, tt.want.String(), snap.Mode().String())
			assert.Equal(t, snap.Mode(), snap.Policy().Mode, "the copy keeps the mode")
		})
	}

	var h Holder
	assert.False(t, h.Audit(), "a Holder with no policy enforces")
	snap, err := Compile(&Policy{Mode: Audit})
	require.NoError(t, err)
	h.Store(snap)
	assert.True(t, h.Audit())

	_, err = Compile(&Policy{Mode: "watch"})
	require.ErrorIs(t, err, ErrMode)
	m, err := ParseMode(" ENFORCE ")
	require.NoError(t, err)
	assert.Equal(t, Enforce, m)
	_, err = ParseMode("learn")
	require.ErrorIs(t, err, ErrMode)
}
