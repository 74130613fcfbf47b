package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMatchHostAtEveryOffset puts rules of every label length from 1 to 17,
// and one of 63, after prefixes of every length, so that each label is read
// both in whole words and in the partial word at the start of a name, and
// both from a name of eight bytes or more and from a shorter one.
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
		assert.True(t, s.AllowHost(strings.ToUpper(e)+"."), e)
		assert.False(t, s.AllowHost("x"+e), "x%s", e)
		assert.False(t, s.AllowHost("f"+e[1:]), "f%s", e[1:])
	}
	for _, w := range wild {
		for n := 1; n <= 17; n++ {
			name := strings.Repeat("p", n) + "." + w
			rule, ok := s.MatchHost(name)
			assert.True(t, ok, name)
			assert.Equal(t, "*."+w, rule, name)
			assert.True(t, s.AllowHost(strings.ToUpper(name)), name)
			assert.False(t, s.AllowHost(strings.Repeat("p", n)+"x"+w), "%sx%s", strings.Repeat("p", n), w)
		}
		assert.False(t, s.AllowHost(w), "a wildcard does not match its apex %s", w)
	}
}

// TestCompileGrowsTheTable compiles rules with many more suffixes than
// rules, so that the table outgrows its first size and is rebuilt while it
// fills, and checks that every rule still matches, under many seeds.
func TestCompileGrowsTheTable(t *testing.T) {
	var rules []string
	for i := range 200 {
		name := fmt.Sprintf("h%d.a.b.c.d.e.f.g.h.i.tld%d", i, i)
		if i%2 == 0 {
			name = "*." + name
		}
		rules = append(rules, name)
	}
	for range 20 {
		s := mustCompile(t, &Policy{Domains: rules})
		require.Greater(t, s.names.used, 2000, "every rule brings ten suffixes")
		require.Greater(t, len(s.names.slots), 2*(len(rules)+len(rules)/8), "the table grew")
		for i, r := range rules {
			base, wildcard := strings.CutPrefix(r, "*.")
			if wildcard {
				require.True(t, s.AllowHost("x."+base), r)
				require.False(t, s.AllowHost(base), r)
			} else {
				require.True(t, s.AllowHost(base), r)
				require.False(t, s.AllowHost("x."+base), r)
			}
			require.False(t, s.AllowHost(fmt.Sprintf("a.b.c.d.e.f.g.h.i.tld%d", i)), r)
		}
	}
}

// TestSuffixTableRefusesTagClash: two different suffixes with the same tag
// on one probe run would make a lookup read the wrong one's flags, so add
// reports the clash and the table is built again with another seed.
func TestSuffixTableRefusesTagClash(t *testing.T) {
	tb := newSuffixTable(4, 64)
	off := tb.addRule("one.example")
	h := uint64(0xabcdef<<40 | 5)
	require.True(t, tb.add(h, off, len("one.example"), flagExact))
	require.True(t, tb.add(h, off, len("one.example"), flagParent), "the same suffix again")

	off = tb.addRule("two.example")
	clash := h | 1<<20 // the same tag and the same first slot
	require.Equal(t, tag(h), tag(clash))
	assert.False(t, tb.add(clash, off, len("two.example"), flagExact))

	other := h ^ 1<<63 // another tag: no clash
	assert.True(t, tb.add(other, off, len("two.example"), flagExact))
}

// TestCompileRefusesOversizedDomains: the table addresses its keys with a
// fixed number of bits, so a policy whose domains take more bytes than
// that is an error, not a table that points at the wrong rules.
func TestCompileRefusesOversizedDomains(t *testing.T) {
	label := strings.Repeat("a", 63)
	name := strings.Join([]string{label, label, label, label[:58], "io"}, ".")
	require.Len(t, name, maxNameLen)
	domains := make([]string, maxKeys/len(name)+1)
	for i := range domains {
		domains[i] = name // one string shared by every entry: little memory
	}
	_, err := Compile(&Policy{Domains: domains})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrDomain)
	assert.Contains(t, err.Error(), "Domains: invalid domain: the domains take")
}
