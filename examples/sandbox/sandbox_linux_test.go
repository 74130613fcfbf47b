//go:build linux

package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/dashboardapi"
	"github.com/g0lab/g0efilter/events"

	"github.com/g0lab/g0efilter/internal/netnstest"
)

const (
	// upTimeout covers building both binaries, which on a cold build
	// cache (a fresh CI machine) takes far longer than the rest.
	upTimeout = 3 * time.Minute
	// eventsTimeout bounds the wait for the events once the sandbox is
	// up; the traffic's first round starts at once.
	eventsTimeout = 20 * time.Second
	pollEvery     = 200 * time.Millisecond
)

// TestSandbox runs the sandbox as the README's command does, on a free
// port of the machine's loopback, and checks through the dashboard's API,
// reached through the sandbox's forwarder, that the traffic generator's
// allowed and blocked attempts arrive — by name over TLS and by address in
// the kernel — and that nothing is left behind once it stops.
func TestSandbox(t *testing.T) {
	netnstest.Require(t, "ip")
	before, err := listSandboxNamespaces()
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Info, 1)
	cfg := config{
		Listen:   "127.0.0.1:0",
		Duration: upTimeout + eventsTimeout, // a bound, should the test lose track of it
		Interval: 500 * time.Millisecond,
		Out:      t.Output(),
		Ready:    func(i Info) { ready <- i },
	}
	var runErr error
	stopped := make(chan struct{})
	go func() {
		runErr = run(ctx, cfg)
		close(stopped)
	}()
	// On every path, a failed assertion included, the sandbox is torn
	// down before the test ends.
	stop := func() error {
		cancel()
		<-stopped
		return runErr
	}
	t.Cleanup(func() { _ = stop() })

	var info Info
	select {
	case info = <-ready:
	case <-stopped:
		t.Fatalf("the sandbox ended before it was up: %v", runErr)
	case <-time.After(upTimeout):
		t.Fatalf("the sandbox was not up after %v", upTimeout)
	}

	// Signed in with the account the sandbox printed; without it the
	// dashboard lets nobody read.
	anonymous, err := http.Get(info.Dashboard + "/api/v1/logs")
	require.NoError(t, err)
	anonymous.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, anonymous.StatusCode)
	browser := signIn(t, info)

	// Watch first: auditing, the names and the address the policy
	// refuses get through, reported as would-block.
	seen := func(refused events.Action, since time.Time) (allowed, named, kernel bool) {
		deadline := time.Now().Add(eventsTimeout)
		for !(allowed && named && kernel) && time.Now().Before(deadline) {
			for _, r := range readLogs(t, browser, info.Dashboard) {
				ev := r.Event
				if ev.Host != filterHostname || ev.Time.Before(since) {
					continue
				}
				switch {
				case ev.Action == events.Allowed && ev.Name == "allowed.sandbox.test":
					allowed = true
				case ev.Action == refused && ev.Name == "blocked.sandbox.test":
					named = true
				case ev.Action == refused && ev.Component == events.Kernel &&
					(ev.Destination.Addr() == rawAddr4 || ev.Destination.Addr() == rawAddr6):
					kernel = true
				}
			}
			time.Sleep(pollEvery)
		}
		return allowed, named, kernel
	}
	allowed, named, kernel := seen(events.WouldBlock, time.Time{})
	assert.True(t, allowed, "no allowed event for allowed.sandbox.test reached the dashboard")
	assert.True(t, named, "no would-block event for blocked.sandbox.test reached the dashboard")
	assert.True(t, kernel, "no would-block kernel event for the direct-IP target reached the dashboard")

	// Then suggest, as the instructions say: the policy lacks the names
	// the traffic used.
	pol := filepath.Join(info.Dir, filePolicy)
	out, err := exec.Command(info.Filter, "suggest", "--diff", pol, filepath.Join(info.Dir, fileEvents)).CombinedOutput()
	require.Error(t, err, "suggest --diff exits 1 when something is missing: %s", out)
	// Four names below sandbox.test were seen: a wildcard stands for the
	// two that the policy lacks.
	assert.Contains(t, string(out), `+    - "*.sandbox.test"`)
	assert.Contains(t, string(out), "blocked.sandbox.test, tracker.sandbox.test")
	assert.Contains(t, string(out), `+    - "tcp/198.18.100.9:9000"`)

	// Then enforce, with the printed command: the same traffic is blocked.
	out, err = exec.Command("sh", "-c", sedCommand("", pol, "mode: audit", "mode: enforce")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	switched := time.Now()
	allowed, named, kernel = seen(events.Blocked, switched)
	assert.True(t, allowed, "enforcing, allowed.sandbox.test is still allowed")
	assert.True(t, named, "enforcing, no blocked event for blocked.sandbox.test reached the dashboard")
	assert.True(t, kernel, "enforcing, no blocked kernel event for the direct-IP target reached the dashboard")

	require.NoError(t, stop(), "teardown")

	after, err := listSandboxNamespaces()
	require.NoError(t, err)
	for _, ns := range after {
		assert.Contains(t, before, ns, "namespace %s left behind", ns)
	}
	assert.False(t, slices.Contains(after, info.Box) || slices.Contains(after, info.Net))
	assert.NoDirExists(t, filepath.Join(etcNetns, info.Box))
	assert.NoDirExists(t, info.Dir)
}

// signIn signs in to the sandbox's dashboard as a person would.
func signIn(t *testing.T, info Info) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(info.Dashboard+"/login", url.Values{"user": {info.User}, "password": {info.Password}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "signed in, the form leads to the page")
	return c
}

// readLogs returns the dashboard's newest events.
func readLogs(t *testing.T, c *http.Client, base string) []dashboardapi.Record {
	t.Helper()
	resp, err := c.Get(base + "/api/v1/logs")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var lr dashboardapi.LogsResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&lr))
	return lr.Events
}

func TestNsswitchFilesDNS(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) string {
		p := filepath.Join(dir, "nsswitch.conf")
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		return p
	}

	got, ok := nsswitchFilesDNS(write("passwd: files systemd\nhosts: files myhostname resolve [!UNAVAIL=return] dns\nnetworks: files\n"))
	require.True(t, ok)
	assert.Equal(t, "passwd: files systemd\n"+
		"hosts: files dns # the g0efilter sandbox: the box's resolv.conf, not systemd-resolved\n"+
		"networks: files\n", string(got))

	_, ok = nsswitchFilesDNS(write("hosts: files mdns4_minimal [NOTFOUND=return] dns\n"))
	assert.False(t, ok, "no resolve module: the machine's file serves the box as it is")

	_, ok = nsswitchFilesDNS(filepath.Join(dir, "missing"))
	assert.False(t, ok)
}
