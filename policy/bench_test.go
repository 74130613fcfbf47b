package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

// The benchmarks compare the compiled matcher with two baselines measured in
// the same run: a linear scan that normalises every pattern on every call
// (the common approach in egress filters), and a single Go map lookup over a
// map of the same size (the floor for any hash-based matcher).
//
//	go test ./policy -run '^$' -bench . -benchmem -count 5

var benchSizes = []int{10, 1_000, 100_000}

// benchRules returns n deterministic domain rules: about a third are
// wildcards, the rest exact names, under a handful of public suffixes.
func benchRules(n int) []string {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	suffixes := []string{"com", "net", "org", "io", "dev", "co.uk", "com.au"}
	rules := make([]string, 0, n)
	for i := range n {
		name := fmt.Sprintf("%s%d.%s", randLabel(r, 4, 10), i, suffixes[r.IntN(len(suffixes))])
		if r.IntN(3) == 0 {
			name = "*." + name
		}
		rules = append(rules, name)
	}
	return rules
}

func randLabel(r *rand.Rand, min, max int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, min+r.IntN(max-min+1))
	for i := range b {
		b[i] = letters[r.IntN(len(letters))]
	}
	return string(b)
}

// benchNames returns count names to look up: half are allowed by rules
// (exact names, or one or two labels below a wildcard), half are not (same
// shapes, unknown labels).
func benchNames(rules []string, count int, seed uint64) []string {
	return benchNamesMix(rules, count, seed, 2)
}

// refusedNames returns count names that no rule allows, shaped like the
// allowed ones.
func refusedNames(rules []string, count int, seed uint64) []string {
	return benchNamesMix(rules, count, seed, 1)
}

// benchNamesMix makes one name in every period a refused one. Every name
// is a string of its own, as one read from the network is: an exact name
// that shared the rule's bytes would let the map baseline skip comparing
// them (Go compares strings with equal pointers without reading them).
func benchNamesMix(rules []string, count int, seed uint64, period int) []string {
	r := rand.New(rand.NewPCG(2, seed))
	names := make([]string, count)
	for i := range names {
		rule := rules[r.IntN(len(rules))]
		base, wildcard := strings.CutPrefix(rule, "*.")
		switch {
		case i%period == period-1:
			names[i] = randLabel(r, 4, 10) + "x." + base[strings.IndexByte(base, '.')+1:]
		case wildcard && r.IntN(2) == 0:
			names[i] = randLabel(r, 2, 8) + "." + randLabel(r, 2, 8) + "." + base
		case wildcard:
			names[i] = "www." + base
		default:
			names[i] = strings.Clone(base)
		}
	}
	return names
}

// benchPools are the names the host benchmarks look up: a hot set of 16,
// which stays in the CPU's caches, and two sets of 65536 that do not, one
// half allowed and one all refused. Sizes are powers of two.
func benchPools(rules []string) []struct {
	name  string
	names []string
} {
	return []struct {
		name  string
		names []string
	}{
		{"hot", benchNames(rules, 16, 3)},
		{"random", benchNames(rules, 1<<16, 4)},
		{"random-refused", refusedNames(rules, 1<<16, 5)},
	}
}

func BenchmarkMatchHost(b *testing.B) {
	for _, n := range benchSizes {
		rules := benchRules(n)
		s, err := Compile(&Policy{Domains: rules})
		if err != nil {
			b.Fatal(err)
		}
		for _, pool := range benchPools(rules) {
			b.Run(fmt.Sprintf("rules=%d/%s", n, pool.name), func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					s.MatchHost(pool.names[i&(len(pool.names)-1)])
				}
			})
		}
	}
}

// BenchmarkMatchHostMixedCase measures names that need case folding, as a
// hostile or sloppy client may send them.
func BenchmarkMatchHostMixedCase(b *testing.B) {
	rules := benchRules(1_000)
	s, err := Compile(&Policy{Domains: rules})
	if err != nil {
		b.Fatal(err)
	}
	names := benchNames(rules, 16, 3)
	for i, n := range names {
		names[i] = strings.ToUpper(n) + "."
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.MatchHost(names[i%len(names)])
	}
}

// BenchmarkLinearScan is the common approach: every call normalises every
// pattern and compares it with the name.
func BenchmarkLinearScan(b *testing.B) {
	for _, n := range benchSizes {
		rules := benchRules(n)
		hot := benchNames(rules, 16, 3)
		b.Run(fmt.Sprintf("rules=%d/hot", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				linearScan(rules, hot[i%len(hot)])
			}
		})
	}
}

func linearScan(patterns []string, host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, p := range patterns {
		p = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(p), "."))
		if suffix, ok := strings.CutPrefix(p, "*"); ok {
			if strings.HasSuffix(host, suffix) {
				return true
			}
		} else if host == p {
			return true
		}
	}
	return false
}

// BenchmarkMapLookup is one Go map lookup per name over a map holding as
// many names as there are rules: the floor for a hash-based matcher.
func BenchmarkMapLookup(b *testing.B) {
	for _, n := range benchSizes {
		rules := benchRules(n)
		m := make(map[string]struct{}, len(rules))
		for _, r := range rules {
			m[strings.TrimPrefix(r, "*.")] = struct{}{}
		}
		for _, pool := range benchPools(rules) {
			b.Run(fmt.Sprintf("rules=%d/%s", n, pool.name), func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					_ = m[pool.names[i&(len(pool.names)-1)]]
				}
			})
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	domains := &Policy{Domains: benchRules(100_000)}
	ips := &Policy{}
	for i := range 10_000 {
		ips.IPs = append(ips.IPs, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24))
	}
	for _, bc := range []struct {
		name string
		p    *Policy
	}{{"domains=100000", domains}, {"ips=10000", ips}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Compile(bc.p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMatchAddr(b *testing.B) {
	p := &Policy{}
	for i := range 10_000 {
		p.IPs = append(p.IPs, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24))
	}
	s, err := Compile(p)
	if err != nil {
		b.Fatal(err)
	}
	addrs := []netip.Addr{netip.MustParseAddr("10.3.4.5"), netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.MatchAddr(addrs[i%len(addrs)])
	}
}
