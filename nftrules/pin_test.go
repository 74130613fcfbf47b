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
	key := func(s string) pinKey { return pinKey{addr: addr(s)} }
	known := map[pinKey]time.Time{
		key("192.0.2.9"):   now.Add(time.Minute),                      // pinned long enough
		key("2001:db8::9"): now.Add(2*time.Second + time.Microsecond), // not long enough for its Need
		key("192.0.2.8"):   now.Add(-time.Second),                     // expired
		key("192.0.2.10"):  now.Add(30 * time.Second),
		key("192.0.2.11"):  now.Add(30 * time.Second),
	}
	plan, err := planPins([]Pin{
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
		{key("192.0.2.1"), 5 * time.Second},
		{key("192.0.2.2"), MaxPinTimeout},
		{key("192.0.2.3"), 2500 * time.Millisecond},
		{key("192.0.2.8"), 2 * time.Second},
		{key("192.0.2.11"), 70 * time.Second},
		{key("192.0.2.12"), 2*time.Second + time.Millisecond},
	}, plan.v4, "192.0.2.9 and 192.0.2.10 are pinned long enough already")
	assert.Equal(t, []pinned{
		{key("2001:db8::1"), MinPinTimeout},
		{key("2001:db8::9"), 3 * time.Second}, // its Need
		{key("fe80::1"), 3 * time.Second},
	}, plan.v6)

	_, err = planPins([]Pin{{Addr: addr("192.0.2.1"), Timeout: time.Second}, {}}, now, nil)
	require.ErrorIs(t, err, ErrConfig)
	_, err = planPins([]Pin{{Addr: addr("192.0.2.1"), Proto: 1, Port: 22}}, now, nil)
	require.ErrorIs(t, err, ErrConfig)
	plan, err = planPins(nil, now, known)
	require.NoError(t, err)
	assert.Zero(t, plan.len())

	// Pins of a port are apart from the address's, and from each other.
	known[pinKey{addr("192.0.2.1"), TCP, 22}] = now.Add(time.Minute)
	plan, err = planPins([]Pin{
		{Addr: addr("192.0.2.1"), Proto: TCP, Port: 22, Timeout: 10 * time.Second}, // pinned long enough
		{Addr: addr("192.0.2.1"), Proto: UDP, Port: 22, Timeout: 10 * time.Second},
		{Addr: addr("2001:db8::1"), Proto: TCP, Port: 22, Timeout: 10 * time.Second},
		{Addr: addr("192.0.2.1"), Timeout: 10 * time.Second},
	}, now, known)
	require.NoError(t, err)
	assert.Equal(t, []pinned{{pinKey{addr("192.0.2.1"), UDP, 22}, 10 * time.Second}}, plan.ports4)
	assert.Equal(t, []pinned{{pinKey{addr("2001:db8::1"), TCP, 22}, 10 * time.Second}}, plan.ports6)
	assert.Equal(t, []pinned{{key("192.0.2.1"), 10 * time.Second}}, plan.v4)
}
