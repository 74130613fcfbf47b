package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/nftrules"
)

// metricsText returns m as a scrape would.
func metricsText(m *metrics) string {
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// watchFilter is a filter as open leaves it for the policy at path, with
// its set updates going to updateSets, and its log in logs.
func watchFilter(t *testing.T, path string, updateSets func(nftrules.Lists) error, logs *safeBuffer) *filter {
	t.Helper()
	cfg, err := loadConfig(env(map[string]string{"POLICY_PATH": path}))
	require.NoError(t, err)
	snap, err := loadSnapshot(cfg)
	require.NoError(t, err)
	f := &filter{cfg: cfg, log: newLogger(logs, slog.LevelInfo), metrics: newMetrics(),
		updateSets: updateSets, retry: 10 * time.Millisecond}
	f.live.Store(snap)
	f.lists = setLists(f.cfg, snap)
	return f
}

// replacePolicy writes the policy file and renames it into place, as a
// deployment tool would: the watcher then never reads it half written
// (which, at its start, would end it).
func replacePolicy(t *testing.T, path, yaml string) {
	t.Helper()
	tmp := path + ".new"
	require.NoError(t, os.WriteFile(tmp, []byte(yaml), 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

// startWatch runs f.watch until the test ends.
func startWatch(t *testing.T, f *filter) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
}

// TestWatchRetriesFailedSetUpdate: an edit whose set update fails is
// applied again, with back-off, until it goes through; meanwhile the
// proxies stay on the policy the kernel has, and the metrics and the log
// say that an edit is pending.
func TestWatchRetriesFailedSetUpdate(t *testing.T) {
	path := writePolicy(t, policyOne)
	var logs safeBuffer
	type call struct {
		v4      []netip.Prefix
		allowed bool   // whether the proxies' policy allowed the new address
		pending string // the pending gauge's line when the call came
	}
	calls := make(chan call, 16)
	failures := 2
	var f *filter
	f = watchFilter(t, path, func(l nftrules.Lists) error {
		v4 := l.Allow4
		text := metricsText(f.metrics)
		pending := ""
		for line := range strings.SplitSeq(text, "\n") {
			if strings.HasPrefix(line, "g0efilter_policy_pending ") {
				pending = line
			}
		}
		calls <- call{v4: v4, allowed: matched(f.live.MatchAddr(netip.MustParseAddr("198.18.0.4"))), pending: pending}
		if failures > 0 {
			failures--
			return errors.New("netlink receive: no buffer space available")
		}
		return nil
	}, &logs)
	startWatch(t, f)

	replacePolicy(t, path, policyTwo)
	want := []netip.Prefix{netip.MustParsePrefix("198.18.0.3/32"), netip.MustParsePrefix("198.18.0.4/32")}
	for i, pending := range []string{"g0efilter_policy_pending 0", "g0efilter_policy_pending 1", "g0efilter_policy_pending 1"} {
		select {
		case c := <-calls:
			assert.Equal(t, want, c.v4, "call %d", i)
			assert.False(t, c.allowed, "call %d: the proxies moved ahead of the kernel", i)
			assert.Equal(t, pending, c.pending, "call %d", i)
		case <-time.After(10 * time.Second):
			t.Fatalf("set update %d not attempted", i+1)
		}
	}
	require.Eventually(t, func() bool { return matched(f.live.MatchAddr(netip.MustParseAddr("198.18.0.4"))) },
		10*time.Second, 5*time.Millisecond, "applied after the third attempt")
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "policy reloaded") },
		10*time.Second, 5*time.Millisecond)
	assert.Equal(t, want, f.lists.Allow4)

	out := logs.String()
	assert.Equal(t, 2, strings.Count(out, "policy not applied yet; the previous policy stays in force"), out)
	assert.Contains(t, out, "attempt 2; trying again in 20ms")
	assert.Contains(t, out, "no buffer space available")
	text := metricsText(f.metrics)
	for _, line := range []string{
		`g0efilter_policy_reloads_total{result="retry"} 2`,
		`g0efilter_policy_reloads_total{result="ok"} 1`,
		`g0efilter_policy_reloads_total{result="error"} 0`,
		"g0efilter_policy_pending 0",
	} {
		assert.Contains(t, text, line+"\n")
	}
	select {
	case c := <-calls:
		t.Errorf("another set update after success: %v", c.v4)
	default:
	}
}

// TestWatchLogsDomainCounts: an edit that changes only domains is counted
// in the reload's log line, and touches no set.
func TestWatchLogsDomainCounts(t *testing.T) {
	path := writePolicy(t, policyOne)
	var logs safeBuffer
	f := watchFilter(t, path, func(l nftrules.Lists) error {
		t.Errorf("set update for a domain edit: %+v", l)
		return nil
	}, &logs)
	startWatch(t, f)

	replacePolicy(t, path, "allowlist:\n  ips:\n    - \"198.18.0.3\"\n  domains:\n    - \"example.org\"\n    - \"*.example.net\"\n")
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "policy reloaded") },
		10*time.Second, 5*time.Millisecond)
	assert.Contains(t, logs.String(), "ipv4=1 ipv6=0 domains=2 denied=0 added=0 removed=0 domains_added=2 domains_removed=1")
	assert.True(t, matched(f.live.MatchHost("a.example.net")))
	assert.False(t, matched(f.live.MatchHost("github.com")))
}

// matched reports the verdict of a Match method, for assertions.
func matched[T any](_ T, ok bool) bool { return ok }
