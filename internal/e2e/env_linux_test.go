//go:build linux

package e2e_test

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/internal/e2e"
)

// netnsID names the network namespace of the calling thread.
func netnsID(t *testing.T) string {
	t.Helper()
	id, err := os.Readlink("/proc/thread-self/ns/net")
	require.NoError(t, err)
	return id
}

func TestTopology(t *testing.T) {
	var box, up string
	t.Run("env", func(t *testing.T) {
		env := e2e.New(t)
		box, up = env.Box, env.Upstream
		assert.Regexp(t, `^g0e-box-[0-9a-f]{8}$`, box)
		assert.Regexp(t, `^g0e-up-[0-9a-f]{8}$`, up)

		// No way out: no default route, nothing but the pair's subnets.
		for _, ns := range []string{box, up} {
			for _, fam := range []string{"-4", "-6"} {
				out, err := exec.Command("ip", "-n", ns, fam, "route", "show", "table", "all").CombinedOutput()
				require.NoError(t, err, "%s", out)
				assert.NotContains(t, string(out), "default", "%s %s", ns, fam)
				for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
					assert.Regexp(t, `^(local |broadcast |multicast |anycast )?(198\.18\.0\.|127\.|::1|fd00:18::|fe80::|ff00::)`, line, "%s %s", ns, fam)
				}
			}
		}

		// Each helper runs in its namespace and comes back.
		var inBox, inUp string
		env.InBox(func() { inBox = netnsID(t) })
		env.InUpstream(func() { inUp = netnsID(t) })
		assert.NotEqual(t, inBox, inUp)
		env.InBox(func() { assert.Equal(t, inBox, netnsID(t)) })
		host := netnsID(t)
		assert.NotEqual(t, host, inBox)
		assert.NotEqual(t, host, inUp)

		// Without a filter, every upstream address answers from the box.
		env.Echo("tcp", ":7000")
		for _, a := range append(append([]netip.Addr{}, e2e.Upstream4...), e2e.Upstream6...) {
			c, err := env.Dial("tcp", hostPort(a, 7000), time.Second)
			require.NoError(t, err, "%s", a)
			echoes(t, c, fmt.Sprint(a))
		}
	})
	if box == "" {
		t.Skip("the environment was not created")
	}
	// The namespaces are gone once the test ends.
	for _, ns := range []string{box, up} {
		_, err := os.Stat("/run/netns/" + ns)
		assert.True(t, os.IsNotExist(err), "namespace %s left behind", ns)
	}
}
