package nftrules

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/internal/netnstest"
)

// normalise collapses runs of white space, so that a rendering and nft's
// listing compare equal whatever their line wrapping.
func normalise(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, ", ", ",")
}

// elementKeys describes set elements as comparable strings.
func elementKeys(elems []nftables.SetElement) []string {
	out := make([]string, 0, len(elems))
	for _, e := range elems {
		if a, ok := netip.AddrFromSlice(e.Key); ok {
			out = append(out, fmt.Sprintf("%v end=%v", a, e.IntervalEnd))
			continue
		}
		// A port, or a concatenation with its key end.
		out = append(out, fmt.Sprintf("%x-%x end=%v", e.Key, e.KeyEnd, e.IntervalEnd))
	}
	sort.Strings(out)
	return out
}

// checkInstalled reads the table back through netlink and compares it with
// the description want.
func checkInstalled(t *testing.T, fd int, want *Ruleset) {
	t.Helper()
	nc, err := nftables.New(nftables.WithNetNSFd(fd))
	require.NoError(t, err)

	tables, err := nc.ListTablesOfFamily(nftables.TableFamilyINet)
	require.NoError(t, err)
	require.Len(t, tables, 1, "exactly one inet table")
	table := tables[0]
	require.Equal(t, TableName, table.Name)

	chains, err := nc.ListChainsOfTableFamily(nftables.TableFamilyINet)
	require.NoError(t, err)
	require.Len(t, chains, len(want.chains))
	byName := map[string]*nftables.Chain{}
	for _, c := range chains {
		byName[c.Name] = c
	}
	for _, wc := range want.chains {
		c := byName[wc.Name]
		require.NotNil(t, c, "chain %s", wc.Name)
		if wc.Type == chainRegular {
			assert.Nil(t, c.Hooknum, "regular chain %s", wc.Name)
		} else {
			assert.Equal(t, *nftChain(table, &wc).Hooknum, *c.Hooknum, "hook of %s", wc.Name)
			assert.Equal(t, nftables.ChainPriority(wc.Priority), *c.Priority)
		}
		rules, err := nc.GetRules(table, c)
		require.NoError(t, err)
		require.Len(t, rules, len(wc.Rules), "rules in %s", wc.Name)
		sets := map[string]*nftables.Set{}
		for i := range want.sets {
			sets[want.sets[i].Name] = nftSet(table, &want.sets[i])
		}
		for i, r := range rules {
			exprs, err := ruleExprs(wc.Rules[i], sets)
			require.NoError(t, err)
			assert.Equal(t, exprTypes(exprs), exprTypes(r.Exprs), "chain %s rule %d (%s)", wc.Name, i, wc.Rules[i])
		}
	}

	// The netdev table, when there is one, has the egress chains.
	netdev, err := nc.ListChainsOfTableFamily(nftables.TableFamilyNetdev)
	require.NoError(t, err)
	require.Len(t, netdev, len(want.egress))
	for i, c := range netdev {
		assert.Equal(t, want.egress[i].Name, c.Name)
		assert.Equal(t, *nftables.ChainHookEgress, *c.Hooknum)
		// The device is checked in nft's listing: v0.3.0 of
		// google/nftables does not read it back.
	}

	sets, err := nc.GetSets(table)
	require.NoError(t, err)
	require.Len(t, sets, len(want.sets))
	for _, s := range sets {
		ws := want.set(s.Name)
		require.NotNil(t, ws, "set %s", s.Name)
		assert.Equal(t, ws.Interval, s.Interval, "set %s interval", s.Name)
		assert.Equal(t, ws.Timeout, s.HasTimeout, "set %s timeout", s.Name)
		got, err := nc.GetSetElements(s)
		require.NoError(t, err)
		want := slices.Concat(setElements(ws.Elements, ws.Interval), serviceElements(ws.Services), portElements(ws.Ports))
		assert.Equal(t, elementKeys(want), elementKeys(got), "set %s elements", s.Name)
	}
}

// exprTypes lists the types of es, but for the socket and byteorder
// expressions, which v0.3.0 of google/nftables does not read back (nft's
// listing in the tests checks them).
func exprTypes(es []expr.Any) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		switch e.(type) {
		case *expr.Socket, *expr.Byteorder:
		default:
			out = append(out, fmt.Sprintf("%T", e))
		}
	}
	return out
}

func TestApplyReadBack(t *testing.T) {
	for name, cfg := range goldenConfigs() {
		t.Run(name, func(t *testing.T) {
			fd := netnstest.New(t)
			c := openIn(t, fd)
			r, err := Build(cfg)
			require.NoError(t, err)
			require.NoError(t, c.Apply(r))
			checkInstalled(t, fd, r)
			assert.Equal(t, normalise(r.String()), normalise(nftRun(t, fd, "list", "ruleset")),
				"dry run must match what is installed")
		})
	}
}

// manyPrefixes returns n disjoint, non-adjacent IPv4 /25s and IPv6 /48s,
// sorted, starting at the n-th one of each for a given offset.
func manyPrefixes(n, offset int) (v4, v6 []netip.Prefix) {
	for i := offset; i < offset+n; i++ {
		v4 = append(v4, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 25))
		a := [16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 16), byte(i >> 8), byte(i)}
		v6 = append(v6, netip.PrefixFrom(netip.AddrFrom16(a), 56))
	}
	return v4, v6
}

func ruleHandles(t *testing.T, fd int) []uint64 {
	t.Helper()
	nc, err := nftables.New(nftables.WithNetNSFd(fd))
	require.NoError(t, err)
	table := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
	var out []uint64
	for _, name := range []string{chainNATOut, chainOutput} {
		rules, err := nc.GetRules(table, &nftables.Chain{Name: name, Table: table})
		require.NoError(t, err)
		for _, r := range rules {
			out = append(out, r.Handle)
		}
	}
	return out
}

func TestReapplyReplaces(t *testing.T) {
	fd := netnstest.New(t)
	cfgs := goldenConfigs()
	// A first connection stands for a previous run of the filter.
	first, err := Build(cfgs["dns"])
	require.NoError(t, err)
	require.NoError(t, openIn(t, fd).Apply(first))

	c := openIn(t, fd)
	for _, name := range []string{"https", "https", "https_empty", "dns", "https"} {
		r, err := Build(cfgs[name])
		require.NoError(t, err)
		require.NoError(t, c.Apply(r), name)
		checkInstalled(t, fd, r)
		assert.Equal(t, normalise(r.String()), normalise(nftList(t, fd)), name)
	}
}

func TestUpdateSets(t *testing.T) {
	fd := netnstest.New(t)
	c := openIn(t, fd)
	require.ErrorIs(t, c.UpdateSets(nil, nil), ErrNotApplied)

	r, err := Build(goldenConfigs()["https"])
	require.NoError(t, err)
	require.NoError(t, c.Apply(r))
	before := ruleHandles(t, fd)

	v4 := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/1"), netip.MustParsePrefix("203.0.113.7/32"), netip.MustParsePrefix("255.255.255.0/24")}
	v6 := []netip.Prefix{netip.MustParsePrefix("::/0")}
	require.NoError(t, c.UpdateSets(v4, v6))
	assert.Equal(t, before, ruleHandles(t, fd), "rules must not be touched")
	assert.Equal(t, v4, c.Applied().set(SetAllow4).Elements)
	assert.Len(t, r.set(SetAllow4).Elements, 4, "the applied description is not changed in place")
	checkInstalled(t, fd, c.Applied())
	assert.Equal(t, normalise(c.Applied().String()), normalise(nftList(t, fd)))

	// Emptying the sets.
	require.NoError(t, c.UpdateSets(nil, nil))
	checkInstalled(t, fd, c.Applied())

	// Bad input changes nothing.
	require.ErrorIs(t, c.UpdateSets(v6, nil), ErrConfig)
	checkInstalled(t, fd, c.Applied())
}

func TestLargeSets(t *testing.T) {
	fd := netnstest.New(t)
	c := openIn(t, fd)
	v4, v6 := manyPrefixes(10000, 0)

	start := time.Now()
	r, err := Build(Config{Allow4: v4, Allow6: v6})
	require.NoError(t, err)
	require.NoError(t, c.Apply(r))
	t.Logf("apply with 10k+10k prefixes: %v", time.Since(start))
	checkInstalled(t, fd, r)

	v4, v6 = manyPrefixes(10000, 5000)
	start = time.Now()
	require.NoError(t, c.UpdateSets(v4, v6))
	t.Logf("update to 10k+10k other prefixes: %v", time.Since(start))
	checkInstalled(t, fd, c.Applied())
}

// msPerOp reports the mean wall time of an operation in milliseconds,
// the unit of the target (10k CIDRs in < 50 ms).
func msPerOp(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
}

func BenchmarkApply10k(b *testing.B) {
	v4, v6 := manyPrefixes(10000, 0)
	for _, bc := range []struct {
		name   string
		v4, v6 []netip.Prefix
	}{{"v4", v4, nil}, {"v4+v6", v4, v6}} {
		b.Run(bc.name, func(b *testing.B) {
			fd := netnstest.New(b)
			c := openIn(b, fd)
			r, err := Build(Config{Allow4: bc.v4, Allow6: bc.v6})
			require.NoError(b, err)
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Apply(r); err != nil {
					b.Fatal(err)
				}
			}
			msPerOp(b)
		})
	}
}

// BenchmarkUpdateSets10k alternates between two allowlists of 10k
// prefixes per family that differ entirely ("all"), by half ("half") or
// by one prefix ("one").
func BenchmarkUpdateSets10k(b *testing.B) {
	a4, a6 := manyPrefixes(10000, 0)
	h4, h6 := manyPrefixes(10000, 5000)
	x4, x6 := manyPrefixes(10000, 10000)
	o4 := append(append([]netip.Prefix(nil), a4...), netip.MustParsePrefix("203.0.113.0/24"))
	for _, bc := range []struct {
		name       string
		v4, v6     []netip.Prefix
		alt4, alt6 []netip.Prefix
	}{
		{"v4/all", a4, nil, x4, nil},
		{"v4/half", a4, nil, h4, nil},
		{"v4/one", a4, nil, o4, nil},
		{"v4+v6/all", a4, a6, x4, x6},
		{"v4+v6/half", a4, a6, h4, h6},
		{"v4+v6/one", a4, a6, o4, a6},
	} {
		b.Run(bc.name, func(b *testing.B) {
			fd := netnstest.New(b)
			c := openIn(b, fd)
			r, err := Build(Config{Allow4: bc.v4, Allow6: bc.v6})
			require.NoError(b, err)
			require.NoError(b, c.Apply(r))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				v4, v6 := bc.alt4, bc.alt6
				if i%2 == 1 {
					v4, v6 = bc.v4, bc.v6
				}
				i++
				if err := c.UpdateSets(v4, v6); err != nil {
					b.Fatal(err)
				}
			}
			msPerOp(b)
		})
	}
}

func TestInstalled(t *testing.T) {
	fd := netnstest.New(t)
	c := openIn(t, fd)
	require.ErrorContains(t, c.Installed(), "no table inet g0efilter", "nothing applied yet")

	r, err := Build(Config{})
	require.NoError(t, err)
	require.NoError(t, c.Apply(r))
	require.NoError(t, c.Installed())
	require.NoError(t, openIn(t, fd).Installed(), "another connection sees it too")

	// A table of that name without the filter's chains is not the filter.
	nftRun(t, fd, "delete", "table", "inet", TableName)
	nftRun(t, fd, "add", "table", "inet", TableName)
	require.ErrorContains(t, c.Installed(), "has no chain")
}
