package policytest

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/policy"
)

// The added entries compile, keep to their ranges and domains, and each
// form allows what it says.
func TestAddEveryForm(t *testing.T) {
	p := &policy.Policy{Domains: []string{"*.allowed.example"}}
	AddEveryForm(p)
	s, err := policy.Compile(p)
	require.NoError(t, err)
	ok := func(_ any, ok bool) bool { return ok }
	assert.True(t, ok(s.MatchHost("www1.allowed.example")))
	assert.False(t, ok(s.MatchHost("bench.example")))
	assert.False(t, ok(s.MatchAddr(netip.MustParseAddr("198.18.0.3"))))
	assert.True(t, ok(s.MatchHost("host7.example.net")))
	assert.True(t, ok(s.MatchHost("a.zone7.example.org")))
	assert.False(t, ok(s.MatchHost("bad7.zone7.example.org")), "denied")
	assert.True(t, ok(s.MatchHostPort("ssh7.example.com", policy.TCP, 22)))
	assert.True(t, ok(s.MatchHostPort("a.tls7.example.com", policy.TCP, 8444)))
	assert.True(t, ok(s.MatchAddrPort(netip.MustParseAddr("100.64.0.7"), policy.UDP, 1500)))
	assert.True(t, ok(s.MatchAddr(netip.MustParseAddr("10.0.7.1"))))
	assert.True(t, ok(s.DenyAddr(netip.MustParseAddr("172.16.0.7"))))
}
