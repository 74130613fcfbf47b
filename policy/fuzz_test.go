package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seedFiles adds every policy in testdata to a fuzz corpus.
func seedFiles(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*", "*.yaml"))
	require.NoError(f, err)
	for _, file := range files {
		data, err := os.ReadFile(file)
		require.NoError(f, err)
		f.Add(data)
	}
}

// FuzzParse checks that any input either fails with located errors or yields
// a policy whose every entry is canonical and compiles.
func FuzzParse(f *testing.F) {
	seedFiles(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			require.Nil(t, p)
			var list ErrorList
			require.ErrorAs(t, err, &list)
			require.NotEmpty(t, list)
			for _, e := range list {
				require.Equal(t, "fuzz.yaml", e.Source)
				require.NotNil(t, e.Err)
			}
			return
		}
		for _, d := range p.Domains {
			n, err := NormalizeDomain(d)
			require.NoError(t, err, d)
			require.Equal(t, d, n, "parsed domains are canonical")
		}
		for _, pfx := range p.IPs {
			require.True(t, pfx.IsValid())
			require.Equal(t, pfx.Masked(), pfx)
			require.False(t, pfx.Addr().Is4In6())
		}
		s, err := Compile(p)
		require.NoError(t, err)
		for _, d := range p.Domains {
			name := strings.TrimPrefix(d, "*.")
			if strings.HasPrefix(d, "*.") {
				name = "x." + name
			}
			if len(name) <= maxNameLen && d != AnyDomain {
				require.True(t, matched(s.MatchHost(name)), "%q allows %q", d, name)
			}
		}
		for _, pfx := range p.IPs {
			require.True(t, matched(s.MatchAddr(pfx.Addr())), pfx.String())
		}
	})
}

// FuzzNormalizeDomain checks that normalising is idempotent, that Compile's
// quick canonical check never accepts what the full rules refuse, and that a
// compiled rule matches the name it came from.
func FuzzNormalizeDomain(f *testing.F) {
	for _, s := range []string{
		"example.com", "*.Example.COM.", "*", "bücher.example", "xn--bcher-kva.example",
		"a..b", "192.0.2.1", "[::1]", "exa mple", "-a.b", "例え.テスト", "_x.example", "a.1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizeDomain(in)
		if isCanonical(in) {
			// Compile's fast path must agree with the full rules.
			require.NoError(t, err, "%q passed the quick check", in)
			require.Equal(t, in, out)
		}
		if err != nil {
			require.ErrorIs(t, err, ErrDomain)
			return
		}
		again, err := NormalizeDomain(out)
		require.NoError(t, err)
		require.Equal(t, out, again, "idempotent")
		if out == AnyDomain {
			return
		}
		name, wildcard := strings.CutPrefix(out, "*.")
		require.LessOrEqual(t, len(name), maxNameLen)
		s, err := Compile(&Policy{Domains: []string{out}})
		require.NoError(t, err)
		if wildcard {
			require.False(t, matched(s.MatchHost(name)), "a wildcard does not match its apex")
			if len(name) < maxNameLen-2 {
				require.True(t, matched(s.MatchHost("a."+name)))
			}
		} else {
			require.True(t, matched(s.MatchHost(name)))
			require.True(t, matched(s.MatchHost(strings.ToUpper(name)+".")))
		}
	})
}

// fuzzRules is the policy FuzzMatchHost matches against: nested wildcards,
// exact names inside wildcards, and names that share suffixes.
var fuzzRules = []string{
	"github.com", "*.alpinelinux.org", "*.example.com", "api.example.com",
	"*.b.example.com", "c.b.example.com", "deep.a.b.example.net", "*.co.uk", "_x.example",
	"a.io", "*.b.io", "longerthaneight.io", "*.alsolongerthan8.io",
}

// FuzzMatchHost compares the matcher with an obviously correct linear scan
// on arbitrary input, which covers case, dots and junk bytes.
func FuzzMatchHost(f *testing.F) {
	for _, s := range []string{
		"github.com", "GITHUB.COM.", "x.alpinelinux.org", "alpinelinux.org", "c.b.example.com",
		"x.c.b.example.com", "a.b.example.net", "bbc.co.uk", "co.uk", "github.com..", "\x00",
		"api.example.com", "API.example.com", "_X.example", "1.2.3.4", "a.b.example.com",
		"a.io", "x.b.io", "LongerThanEight.io", "x.alsolongerthan8.io", "xx.b.io.",
	} {
		f.Add(s)
	}
	s := mustCompile(f, &Policy{Domains: fuzzRules})
	f.Fuzz(func(t *testing.T, name string) {
		for i := 0; i < len(name); i++ {
			if name[i] >= 0x80 {
				return // the IDNA path is covered by FuzzNormalizeDomain
			}
		}
		rule, ok := s.MatchHost(name)
		wantRule, wantOK := linearMatch(fuzzRules, name)
		assert.Equal(t, wantOK, ok, "%q", name)
		assert.Equal(t, wantRule, rule, "%q", name)
	})
}

// linearMatch is the reference matcher: validate the way RFC 1035 reads,
// then try every rule, preferring an exact match and then the longest
// wildcard.
func linearMatch(rules []string, name string) (string, bool) {
	name = strings.TrimSuffix(name, ".")
	if len(name) == 0 || len(name) > 253 {
		return "", false
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || strings.Trim(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			return "", false
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "", false
	}
	name = strings.ToLower(name)
	best := ""
	for _, r := range rules {
		if r == name {
			return r, true
		}
		if base, ok := strings.CutPrefix(r, "*."); ok && strings.HasSuffix(name, "."+base) && len(r) > len(best) {
			best = r
		}
	}
	return best, best != ""
}
