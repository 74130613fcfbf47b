package main

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/dashboardapi"
	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/internal/e2e"
	"github.com/g0lab/g0efilter/internal/netnstest"
)

// decideRounds sends n allowed and n blocked HTTP requests through the
// filter: each allowed one is served, each blocked one refused, and each
// within a second, whatever is failing beside the data path. It returns
// the number of decisions made (2n).
func decideRounds(t *testing.T, pe *proxyEnv, n int) int {
	t.Helper()
	for range n {
		for _, name := range []string{"allowed.example", "blocked.example"} {
			start := time.Now()
			body, err := pe.get(fams[0].dest, "http://"+name+"/")
			if name == "allowed.example" {
				require.NoError(t, err, "an allowed request must be served")
				require.Equal(t, "served allowed.example", body)
			} else {
				require.Error(t, err, "a blocked request must be refused")
			}
			require.Less(t, time.Since(start), time.Second, "a decision waited on something else")
		}
	}
	return 2 * n
}

// decisions returns how many decisions the filter's metrics count.
func decisions(t *testing.T, pe *proxyEnv) int {
	t.Helper()
	n := 0.0
	for k, v := range metricValues(t, pe.Env) {
		if strings.HasPrefix(k, "g0efilter_decisions_total{") {
			n += v
		}
	}
	return int(n)
}

func dropped(t *testing.T, pe *proxyEnv, sink string) int {
	t.Helper()
	return int(metricValues(t, pe.Env)[`g0efilter_events_dropped_total{sink="`+sink+`"}`])
}

// dashboardInBox serves a dashboard on 127.0.0.1:8081 in the box, where
// DASHBOARD_HOST points; delay holds every request that long.
func dashboardInBox(t *testing.T, pe *proxyEnv, delay time.Duration) *dashboardapi.MemoryStore {
	store := dashboardapi.NewMemoryStore(0)
	srv := dashboardapi.NewServer(dashboardapi.ServerConfig{APIKey: "k3y", Store: store})
	ln := pe.ListenBox("tcp4", "127.0.0.1:8081")
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
		srv.ServeHTTP(w, r)
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { srv.Close(); hs.Close() })
	return store
}

var dashboardVars = map[string]string{
	"DASHBOARD_HOST":        "http://127.0.0.1:8081",
	"DASHBOARD_API_KEY":     "k3y",
	"DASHBOARD_START_DELAY": "0s",
	"DASHBOARD_QUEUE_SIZE":  "20",
	"METRICS_ADDR":          ":9464",
}

// waitAccounted waits until every decision is in the dashboard's store or
// counted as dropped: none is lost silently.
func waitAccounted(t *testing.T, pe *proxyEnv, store *dashboardapi.MemoryStore, within time.Duration) (stored, drops int) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		recs, _, err := store.Query(context.Background(), dashboardapi.Query{Limit: 10000})
		require.NoError(t, err)
		stored, drops = len(recs), dropped(t, pe, "dashboard")
		total := decisions(t, pe)
		if stored+drops == total {
			return stored, drops
		}
		require.True(t, time.Now().Before(deadline), "%d decisions, %d in the dashboard, %d dropped", total, stored, drops)
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFaultDashboardDown: while the dashboard cannot be reached, decisions
// go on at full speed; events wait in the shipper's queue, the rest are
// dropped and counted, and once the dashboard is up every decision is
// either in it or counted.
func TestFaultDashboardDown(t *testing.T) {
	pe := startProxyEnv(t, proxyPolicy, dashboardVars)
	n := decideRounds(t, pe, 30)
	pe.filter.WaitForOutput("dashboard unreachable, retrying")
	assert.Positive(t, dropped(t, pe, "dashboard"), "a queue of 20 cannot hold %d events", n)

	store := dashboardInBox(t, pe, 0)
	stored, drops := waitAccounted(t, pe, store, 30*time.Second)
	t.Logf("%d decisions: %d reached the dashboard, %d dropped and counted", n, stored, drops)
	assert.Positive(t, stored, "the queued events are shipped once the dashboard is up")
	pe.filter.WaitForOutput("dashboard reachable again")
}

// TestFaultDashboardSlow: a dashboard that takes two seconds per request
// slows no decision; what it cannot take in time is dropped and counted.
func TestFaultDashboardSlow(t *testing.T) {
	var store *dashboardapi.MemoryStore
	pe := startProxyEnvWith(t, proxyPolicy, dashboardVars, func(pe *proxyEnv) map[string]string {
		store = dashboardInBox(t, pe, 2*time.Second)
		return nil
	})
	n := decideRounds(t, pe, 30)
	stored, drops := waitAccounted(t, pe, store, 30*time.Second)
	t.Logf("%d decisions: %d reached the slow dashboard, %d dropped and counted", n, stored, drops)
	assert.Positive(t, drops)
	assert.Positive(t, stored)
}

// TestFaultGotifyDown: Gotify unreachable slows no decision, and the
// failure is logged once, not per event.
func TestFaultGotifyDown(t *testing.T) {
	pe := startProxyEnv(t, proxyPolicy, map[string]string{
		"NOTIFICATION_HOST": "http://127.0.0.1:8082", // nothing listens there
		"NOTIFICATION_KEY":  "t0ken",
		"METRICS_ADDR":      ":9464",
	})
	decideRounds(t, pe, 20)
	pe.filter.WaitForOutput("gotify: cannot deliver notification")
	time.Sleep(500 * time.Millisecond) // what the last decisions set off
	assert.Equal(t, 1, strings.Count(pe.filter.Output(), "gotify: cannot deliver notification"))
	assert.True(t, pe.filter.Running())
}

// silentUDP listens on addr in the upstream namespace and never answers:
// a resolver that is down without saying so.
func silentUDP(t *testing.T, env *e2e.Env, addr string) {
	t.Helper()
	var pc net.PacketConn
	var err error
	env.InUpstream(func() { pc, err = net.ListenPacket("udp", addr) })
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	})
	t.Cleanup(func() { pc.Close(); wg.Wait() })
}

// deadUpstreams are two resolvers, both down: one refuses (nothing listens:
// ICMP port unreachable), one is silent.
func deadUpstreams(t *testing.T, env *e2e.Env) string {
	silent := netip.AddrPortFrom(e2e.Upstream4[0], 5400)
	silentUDP(t, env, silent.String())
	return netip.AddrPortFrom(e2e.Upstream4[0], 5399).String() + "," + silent.String()
}

// TestFaultDNSUpstreamsDown: with every upstream resolver down, an allowed
// name gets SERVFAIL within the README's 4 seconds (two tries of 2s), a
// blocked one NXDOMAIN at once, and the proxies, which cannot check a name,
// block it quickly: nothing hangs, nothing is allowed.
func TestFaultDNSUpstreamsDown(t *testing.T) {
	t.Run("dns mode", func(t *testing.T) {
		de := startDNSEnv(t, nil)
		de.filter.Stop()
		de.filter = de.StartFilter(t, dnsPolicy, map[string]string{
			"FILTER_MODE": "dns", "DNS_UPSTREAMS": deadUpstreams(t, de.Env), "LOG_FILE": de.events,
		})
		de.filter.WaitForOutput("DNS server listening")
		for _, network := range []string{"udp", "tcp"} {
			start := time.Now()
			resp, err := de.query(t, network, "allowed.example", dns.TypeA, de.resolver)
			require.NoError(t, err)
			assert.Equal(t, dns.RcodeServerFailure, resp.Rcode, network)
			assert.Less(t, time.Since(start), 4500*time.Millisecond, network)

			start = time.Now()
			resp, err = de.query(t, network, "blocked.example", dns.TypeA, de.resolver)
			require.NoError(t, err)
			assert.Equal(t, dns.RcodeNameError, resp.Rcode, network)
			assert.Less(t, time.Since(start), time.Second, network)
		}
		assert.Empty(t, de.dns.Queries(), "the working resolver was never named")
	})
	t.Run("https mode", func(t *testing.T) {
		var upstreams string
		pe := startProxyEnvWith(t, proxyPolicy, nil, func(pe *proxyEnv) map[string]string {
			upstreams = deadUpstreams(t, pe.Env)
			return map[string]string{"DNS_UPSTREAMS": upstreams}
		})
		for _, scheme := range []string{"https", "http"} {
			start := time.Now()
			_, err := pe.get(fams[0].dest, scheme+"://allowed.example/")
			require.Error(t, err, "a name that cannot be checked is not forwarded")
			assert.Less(t, time.Since(start), 4500*time.Millisecond, scheme)
			e := pe.waitEvent(t, "allowed.example", events.Blocked, fams[0].dest)
			assert.Equal(t, events.ReasonResolve, e.Reason)
		}
		assert.Empty(t, pe.web.Requests(), "nothing may reach the servers")
	})
}

// TestFaultPolicyFile breaks the policy file in place, each way an
// operator or a tool might: the policy in force stays (allowed.example
// allowed, blocked.example refused), the fault is reported once, and the
// mended file, which now allows blocked.example, is picked up. (A file made
// unreadable is tested in package policy, as nobody: the filter here runs
// as root, which reads any file.)
func TestFaultPolicyFile(t *testing.T) {
	pe := startProxyEnv(t, proxyPolicy, nil)
	path := pe.filter.PolicyPath()
	wider := proxyPolicy + "    - \"blocked.example\"\n"
	for _, fault := range []struct {
		name   string
		break_ func()
		mend   func()
	}{
		{name: "deleted", break_: func() { require.NoError(t, os.Remove(path)) }},
		{name: "truncated to nothing", break_: func() { require.NoError(t, os.Truncate(path, 0)) }},
		{name: "truncated mid-line", break_: func() {
			cut := strings.Index(proxyPolicy, `"*.wild.exa`) + len(`"*.wild.exa`) // an open quote
			require.NoError(t, os.Truncate(path, int64(cut)))
		}},
		{
			name: "replaced by a directory",
			break_: func() {
				require.NoError(t, os.Remove(path))
				require.NoError(t, os.Mkdir(path, 0o755))
			},
			mend: func() { require.NoError(t, os.Remove(path)) },
		},
	} {
		t.Run(fault.name, func(t *testing.T) {
			reported := strings.Count(pe.filter.Output(), "policy not reloaded")
			fault.break_()
			waitCount(t, pe.filter, "policy not reloaded", reported+1)
			// Several polls (every 2s) later, still reported once.
			time.Sleep(2500 * time.Millisecond)
			assert.Equal(t, reported+1, strings.Count(pe.filter.Output(), "policy not reloaded"), "reported once")
			_, err := pe.get(fams[0].dest, "https://allowed.example/")
			assert.NoError(t, err, "the policy in force stays")
			_, err = pe.get(fams[0].dest, "https://blocked.example/")
			assert.Error(t, err, "the policy in force stays")

			if fault.mend != nil {
				fault.mend()
			}
			pe.filter.SetPolicy(wider)
			pe.waitAllowed(t, fams[0], "blocked.example")
			pe.filter.SetPolicy(proxyPolicy)
			waitRefused(t, pe, "blocked.example")
		})
	}
}

// waitCount waits until the filter's output holds substr n times.
func waitCount(t *testing.T, f *e2e.Filter, substr string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(f.Output(), substr) < n {
		require.True(t, time.Now().Before(deadline), "%q not %d times in the output", substr, n)
		time.Sleep(20 * time.Millisecond)
	}
}

// waitRefused waits until a new HTTPS connection to name is refused.
func waitRefused(t *testing.T, pe *proxyEnv, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := pe.get(fams[0].dest, "https://"+name+"/"); err != nil {
			return
		}
		require.True(t, time.Now().Before(deadline), "%s never refused", name)
		time.Sleep(50 * time.Millisecond)
	}
}

// fullDisk mounts a tmpfs of size bytes in a mount namespace of its own,
// held by a helper process, and returns a directory path into it that
// other processes can use (through /proc/<helper>/root). Nothing is
// mounted in the test's own namespace; the tmpfs goes with the helper and
// the last file open on it.
func fullDisk(t *testing.T, size int) string {
	t.Helper()
	netnstest.Require(t, "unshare", "mount") // util-linux; skipped without, failed under CI=true
	dir := t.TempDir()
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--",
		"sh", "-c", `mount -t tmpfs -o size="$1" g0e-full "$0" && echo mounted && exec sleep 600`, dir, strconv.Itoa(size))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "the helper did not mount the tmpfs")
	require.Equal(t, "mounted\n", line)
	return filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "root", dir)
}

// TestFaultLogFileDiskFull runs the filter with its LOG_FILE on a small
// tmpfs that fills up: decisions go on at full speed, the failure is
// logged once, every event is either in the file or counted as dropped,
// and once there is room again events are written again.
func TestFaultLogFileDiskFull(t *testing.T) {
	dir := fullDisk(t, 32<<10)
	logFile := filepath.Join(dir, "events.jsonl")
	pe := startProxyEnv(t, proxyPolicy, map[string]string{"LOG_FILE": logFile, "METRICS_ADDR": ":9464"})
	pe.events = logFile
	n := decideRounds(t, pe, 100) // about 350 bytes an event: 70 KB
	pe.filter.WaitForOutput("LOG_FILE: events cannot be written")

	// Every decision is in the file, whole, or counted.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(logFile)
		require.NoError(t, err)
		lines := strings.Count(string(b), "\n")
		drops, total := dropped(t, pe, "file"), decisions(t, pe)
		if lines+drops == total {
			t.Logf("%d decisions (%d by the requests): %d written, %d dropped and counted", total, n, lines, drops)
			assert.Positive(t, drops)
			break
		}
		require.True(t, time.Now().Before(deadline), "%d decisions, %d lines written, %d dropped", total, lines, drops)
		time.Sleep(100 * time.Millisecond)
	}
	assert.Equal(t, 1, strings.Count(pe.filter.Output(), "LOG_FILE: events cannot be written"), "reported once")

	// Room again: the next events are written.
	require.NoError(t, os.Truncate(logFile, 0))
	decideRounds(t, pe, 2)
	pe.filter.WaitForOutput("LOG_FILE: events are written again")
	// The file's writer runs behind the decisions: wait for the four.
	require.Eventually(t, func() bool { return len(pe.readEvents(t)) == 4 },
		5*time.Second, 20*time.Millisecond, "the four decisions written: %v", pe.readEvents(t))
}
