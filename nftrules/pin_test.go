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
		addr("192.0.2.9"):   now.Add(time.Minute),                      // pinned long enough
		addr("2001:db8::9"): now.Add(2*time.Second + time.Microsecond), // not long enough for its Need
		addr("192.0.2.8"):   now.Add(-time.Second),                     // expired
		addr("192.0.2.10"):  now.Add(30 * time.Second),
		addr("192.0.2.11"):  now.Add(30 * time.Second),
	}
	v4, v6, err := planPins([]Pin{
		{Addr: addr("192.0.2.1"), Timeout: 0},
		{Addr: addr("2001:db8::1"), Timeout: -time.Second},
		{Addr: addr("::ffff:192.0.2.1"), Timeout: 5 * time.Second}, // the same address as the first
		{Addr: addr("192.0.2.2"), Timeout: 48 * time.Hour},
		{Addr: addr("192.0.2.3"), Timeout: 2500 * time.Millisecond},
		{Addr: addr("192.0.2.9"), Timeout: 10 * time.Second},
		{Addr: addr("2001:db8::9"), Timeout: time.Second, Need: 3 * time.Second},
		{Addr: addr("192.0.2.8"), Timeout: 2 * time.Second},
		{Addr: addr("fe80::1%eth0"), Timeout: 3 * time.Second},
		{Addr: addr("192.0.2.1"), Timeout: time.Second},
		{Addr: addr("192.0.2.10"), Timeout: 70 * time.Second, Need: 20 * time.Second}, // pinned long enough
		{Addr: addr("192.0.2.11"), Timeout: 70 * time.Second, Need: 40 * time.Second}, // not
		{Addr: addr("192.0.2.12"), Timeout: 2*time.Second + time.Microsecond},         // rounded up to the millisecond
	}, now, known)
	require.NoError(t, err)
	assert.Equal(t, []pinned{
		{addr("192.0.2.1"), 5 * time.Second},
		{addr("192.0.2.2"), MaxPinTimeout},
		{addr("192.0.2.3"), 2500 * time.Millisecond},
		{addr("192.0.2.8"), 2 * time.Second},
		{addr("192.0.2.11"), 70 * time.Second},
		{addr("192.0.2.12"), 2*time.Second + time.Millisecond},
	}, v4, "192.0.2.9 and 192.0.2.10 are pinned long enough already")
	assert.Equal(t, []pinned{
		{addr("2001:db8::1"), MinPinTimeout},
		{addr("2001:db8::9"), 3 * time.Second}, // its Need
		{addr("fe80::1"), 3 * time.Second},
	}, v6)

	_, _, err = planPins([]Pin{{Addr: addr("192.0.2.1"), Timeout: time.Second}, {}}, now, nil)
	require.ErrorIs(t, err, ErrConfig)
	v4, v6, err = planPins(nil, now, known)
	require.NoError(t, err)
	assert.Empty(t, v4)
	assert.Empty(t, v6)
}
