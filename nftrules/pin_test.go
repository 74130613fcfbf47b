package nftrules

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPlanPins(t *testing.T) {
	addr := netip.MustParseAddr
	now := time.Unix(1000, 0)
	known := map[netip.Addr]time.Time{
		addr("192.0.2.9"):   now.Add(time.Minute),                      // a longer pin stands
		addr("2001:db8::9"): now.Add(2*time.Second + time.Microsecond), // rounded up to the millisecond
		addr("192.0.2.8"):   now.Add(-time.Second),                     // expired
	}
	v4, v6, err := planPins([]Pin{
		{addr("192.0.2.1"), 0},
		{addr("2001:db8::1"), -time.Second},
		{addr("::ffff:192.0.2.1"), 5 * time.Second}, // the same address as the first
		{addr("192.0.2.2"), 48 * time.Hour},
		{addr("192.0.2.3"), 2500 * time.Millisecond},
		{addr("192.0.2.9"), 10 * time.Second},
		{addr("2001:db8::9"), time.Second},
		{addr("192.0.2.8"), 2 * time.Second},
		{addr("fe80::1%eth0"), 3 * time.Second},
		{addr("192.0.2.1"), time.Second},
	}, now, known)
	require.NoError(t, err)
	assert.Equal(t, []pinned{
		{addr("192.0.2.1"), 5 * time.Second},
		{addr("192.0.2.2"), MaxPinTimeout},
		{addr("192.0.2.3"), 2500 * time.Millisecond},
		{addr("192.0.2.9"), time.Minute},
		{addr("192.0.2.8"), 2 * time.Second},
	}, v4)
	assert.Equal(t, []pinned{
		{addr("2001:db8::1"), MinPinTimeout},
		{addr("2001:db8::9"), 2*time.Second + time.Millisecond},
		{addr("fe80::1"), 3 * time.Second},
	}, v6)

	_, _, err = planPins([]Pin{{addr("192.0.2.1"), time.Second}, {}}, now, nil)
	require.ErrorIs(t, err, ErrConfig)
	v4, v6, err = planPins(nil, now, known)
	require.NoError(t, err)
	assert.Empty(t, v4)
	assert.Empty(t, v6)
}
