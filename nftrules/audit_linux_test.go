package nftrules

import (
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTrafficAudit switches a live ruleset between enforce and audit
// through UpdateLists: auditing, what nothing allows and what the
// denylist names pass, logged as would-block; the guards hold; back to
// enforce, both are refused again, and the addresses pinned while
// auditing are gone.
func TestTrafficAudit(t *testing.T) {
	for _, mode := range []Mode{ModeHTTPS, ModeDNS} {
		t.Run(mode.String(), func(t *testing.T) {
			fd := trafficNS(t)
			c := openIn(t, fd)
			deny := []netip.Prefix{netip.MustParsePrefix("198.18.0.9/32")}
			cfg := Config{Mode: mode, DNSPort: 5353, Deny4: deny}
			r, err := Build(cfg)
			require.NoError(t, err)
			require.NoError(t, c.Apply(r))
			proxy := listenIn(t, fd, "tcp4", "127.0.0.1:8080")

			refused := func(what string) {
				t.Helper()
				assert.ErrorIs(t, dialIn(t, fd, "tcp4", "198.18.0.2:22", 0), syscall.ECONNREFUSED, "%s: not allowlisted", what)
				assert.ErrorIs(t, dialIn(t, fd, "udp6", "[fd00::2]:22", 0), syscall.EPERM, "%s: UDP, v6", what)
				assert.ErrorIs(t, dialIn(t, fd, "tcp4", "198.18.0.9:80", 0), syscall.ECONNREFUSED, "%s: denied", what)
			}
			refused("enforcing")
			auditing, err := openIn(t, fd).Auditing()
			require.NoError(t, err)
			assert.False(t, auditing)

			require.NoError(t, c.UpdateLists(Lists{Deny4: deny, Audit: true}))
			auditing, err = openIn(t, fd).Auditing()
			require.NoError(t, err)
			assert.True(t, auditing, "read back by another Conn, as health does")
			require.NoError(t, openIn(t, fd).Installed())
			// Let through: the packets go out to a veth with no
			// neighbour, so a TCP dial times out.
			for _, addr := range []string{"198.18.0.2:22", "[fd00::2]:22", "198.18.0.9:80"} {
				err := dialIn(t, fd, "tcp", addr, 0)
				assert.True(t, isTimeout(err), "auditing, %s: want a timeout, got %v", addr, err)
			}
			assert.NoError(t, dialIn(t, fd, "udp6", "[fd00::2]:22", 0))
			assert.False(t, accepted(proxy), "a denied address is not redirected, auditing or not")
			list := nftList(t, fd)
			assert.Contains(t, list, `log prefix "g0efilter would block: " group 100 accept`)
			assert.Contains(t, list, `ct state new log prefix "g0efilter would deny: " group 100 accept`)
			assert.NotContains(t, list, `log prefix "g0efilter blocked: " group 100 reject`)
			if mode == ModeHTTPS {
				// The proxies still decide the web ports, and a knock on
				// a proxy's port, not redirected, is still refused.
				require.NoError(t, dialIn(t, fd, "tcp4", "198.18.0.2:80", 0))
				assert.True(t, accepted(proxy), "port 80 still goes to the proxy")
				assert.ErrorIs(t, dialIn(t, fd, "tcp4", "127.0.0.1:8080", 0), syscall.ECONNREFUSED, "local service guarded")
			} else {
				// DoT stays dropped: a way around the DNS filter.
				err := dialIn(t, fd, "tcp4", "198.18.0.2:853", 0)
				assert.True(t, isTimeout(err), "DoT: want a timeout, got %v", err)
				require.NoError(t, c.Pin([]Pin{{Addr: netip.MustParseAddr("198.18.0.7"), Timeout: time.Hour}}))
				assert.Contains(t, nftListSet(t, fd, setPinned4), "198.18.0.7")
			}

			require.NoError(t, c.UpdateLists(Lists{Deny4: deny}))
			refused("enforcing again")
			// The description is as Build makes it for enforce mode.
			want, err := Build(cfg)
			require.NoError(t, err)
			assert.Equal(t, want.String(), c.Applied().String())
			assert.Equal(t, nftList(t, fd), c.Applied().String(), "the kernel holds what the description says")
			if mode == ModeDNS {
				assert.NotContains(t, nftListSet(t, fd, setPinned4), "198.18.0.7", "pins made while auditing are gone")
				assert.ErrorIs(t, dialIn(t, fd, "tcp4", "198.18.0.7:22", 0), syscall.ECONNREFUSED)
				// Pinned again, it passes: the Conn forgot its deadlines.
				require.NoError(t, c.Pin([]Pin{{Addr: netip.MustParseAddr("198.18.0.7"), Timeout: time.Hour}}))
				assert.True(t, isTimeout(dialIn(t, fd, "tcp4", "198.18.0.7:22", 0)))
			}
		})
	}
}
