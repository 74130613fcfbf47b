//go:build !linux

package dnsfilter

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A mark cannot be set here: every query fails before any socket is made.
func TestUpstreamMarkUnsupported(t *testing.T) {
	u := &Upstream{Servers: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:53")}, Mark: 1}
	m := new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeA)
	_, err := u.Exchange(context.Background(), m)
	require.ErrorIs(t, err, ErrMarkUnsupported)
	assert.Nil(t, (&Upstream{}).dialer(time.Time{}).Control)
}
