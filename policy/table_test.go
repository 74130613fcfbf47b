package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMatchHostAtEveryOffset puts rules of every label length from 1 to 17,
// and one of 63, after prefixes of every length, and checks that each
// matches itself, in any case, and no name one byte off.
func TestMatchHostAtEveryOffset(t *testing.T) {
	var exact, wild []string
	for n := 1; n <= 17; n++ {
		exact = append(exact, strings.Repeat("e", n)+".io")
		wild = append(wild, strings.Repeat("w", n)+".dev")
	}
	exact = append(exact, strings.Repeat("e", 63)+".io")
	wild = append(wild, strings.Repeat("w", 63)+".dev")
	rules := append([]string{}, exact...)
	for _, w := range wild {
		rules = append(rules, "*."+w)
	}
	s := mustCompile(t, &Policy{Domains: rules})

	for _, e := range exact {
		rule, ok := s.MatchHost(e)
		assert.True(t, ok, e)
		assert.Equal(t, e, rule)
		assert.True(t, matched(s.MatchHost(strings.ToUpper(e)+".")), e)
		assert.False(t, matched(s.MatchHost("x"+e)), "x%s", e)
		assert.False(t, matched(s.MatchHost("f"+e[1:])), "f%s", e[1:])
	}
	for _, w := range wild {
		for n := 1; n <= 17; n++ {
			name := strings.Repeat("p", n) + "." + w
			rule, ok := s.MatchHost(name)
			assert.True(t, ok, name)
			assert.Equal(t, "*."+w, rule, name)
			assert.True(t, matched(s.MatchHost(strings.ToUpper(name))), name)
			assert.False(t, matched(s.MatchHost(strings.Repeat("p", n)+"x"+w)), "%sx%s", strings.Repeat("p", n), w)
		}
		assert.False(t, matched(s.MatchHost(w)), "a wildcard does not match its apex %s", w)
	}
}

// TestMatchHostManySuffixes compiles rules that share long chains of
// suffixes, half of them wildcards, and checks that every rule matches what
// it allows and nothing else: a name is never taken for one of its
// suffixes, nor a suffix for another.
func TestMatchHostManySuffixes(t *testing.T) {
	var rules []string
	for i := range 200 {
		name := fmt.Sprintf("h%d.a.b.c.d.e.f.g.h.i.tld%d", i, i)
		if i%2 == 0 {
			name = "*." + name
		}
		rules = append(rules, name)
	}
	s := mustCompile(t, &Policy{Domains: rules})
	for i, r := range rules {
		base, wildcard := strings.CutPrefix(r, "*.")
		if wildcard {
			rule, ok := s.MatchHost("x." + base)
			require.True(t, ok, r)
			require.Equal(t, r, rule)
			require.False(t, matched(s.MatchHost(base)), r)
		} else {
			rule, ok := s.MatchHost(base)
			require.True(t, ok, r)
			require.Equal(t, r, rule)
			require.False(t, matched(s.MatchHost("x."+base)), r)
		}
		require.False(t, matched(s.MatchHost(fmt.Sprintf("a.b.c.d.e.f.g.h.i.tld%d", i))), r)
		require.False(t, matched(s.MatchHost(fmt.Sprintf("h%d.a.b.c.d.e.f.g.h.i.tld%d", i+1, i))), r)
	}
}

// TestCompileRefusesOversizedDomains: a policy whose domains take more than
// 256 MiB is an error.
func TestCompileRefusesOversizedDomains(t *testing.T) {
	label := strings.Repeat("a", 63)
	name := strings.Join([]string{label, label, label, label[:58], "io"}, ".")
	require.Len(t, name, maxNameLen)
	domains := make([]string, maxDomainBytes/len(name)+1)
	for i := range domains {
		domains[i] = name // one string shared by every entry: little memory
	}
	_, err := Compile(&Policy{Domains: domains})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrDomain)
	assert.Contains(t, err.Error(), "Domains: invalid domain: the domains take")
}
