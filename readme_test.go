package g0efilter_test

import (
	"net/netip"
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/policy"
)

// The README names the Go version the module needs (go.mod's go line),
// wherever it names one.
func TestReadmeGoVersion(t *testing.T) {
	mod, err := os.ReadFile("go.mod")
	require.NoError(t, err)
	goLine := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	require.NotNil(t, goLine, "go.mod has no go line")
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	named := regexp.MustCompile(`Go (1\.\d+(?:\.\d+)?)\b|needs (1\.\d+(?:\.\d+)?)\b`).FindAllStringSubmatch(string(readme), -1)
	require.NotEmpty(t, named, "the README names no Go version")
	for _, m := range named {
		v := m[1] + m[2]
		assert.Equal(t, string(goLine[1]), v, "README: %q", m[0])
	}
}

// The README's policy example parses, and means what its table says.
func TestReadmePolicyExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	section := regexp.MustCompile("(?s)### The policy\n\n```yaml\n(.*?)```").FindSubmatch(readme)
	require.NotNil(t, section, "no policy example under ### The policy")
	p, err := policy.Parse("README.md", section[1])
	require.NoError(t, err)
	snap, err := policy.Compile(p)
	require.NoError(t, err)
	rule, ok := snap.MatchHostPort("github.com", policy.TCP, 22)
	assert.True(t, ok)
	assert.Equal(t, "tcp/github.com:22", rule)
	_, ok = snap.MatchHostPort("github.com", policy.UDP, 22)
	assert.False(t, ok)
	_, ok = snap.MatchHostPort("a.example.com", policy.TCP, 8443)
	assert.True(t, ok)
	rule, ok = snap.MatchAddrPort(netip.MustParseAddr("9.9.9.9"), policy.UDP, 53)
	assert.True(t, ok)
	assert.Equal(t, "udp/9.9.9.9:53", rule)
	_, ok = snap.MatchAddrPort(netip.MustParseAddr("9.9.9.9"), policy.TCP, 53)
	assert.False(t, ok)
	_, ok = snap.MatchAddrPort(netip.MustParseAddr("2001:db8::7"), policy.TCP, 8099)
	assert.True(t, ok)
	_, ok = snap.MatchHost("x.evil.alpinelinux.org")
	assert.False(t, ok, "denied under an allowed wildcard")
}
