package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/internal/e2e"
)

// TestMetrics scrapes METRICS_ADDR after an allowed and a blocked request
// and a broken policy edit.
func TestMetrics(t *testing.T) {
	pe := startProxyEnv(t, proxyPolicy, map[string]string{"METRICS_ADDR": ":9464"})
	pe.filter.WaitForOutput("metrics listening")
	_, err := pe.get(fams[0].dest, "https://allowed.example/")
	require.NoError(t, err)
	_, err = pe.get(fams[0].dest, "https://blocked.example/")
	require.Error(t, err)
	pe.filter.SetPolicy("allowlist:\n  domains: [\"bad..name\"]\n")
	pe.filter.WaitForOutput("policy not reloaded")

	// Scraped from the container network, as Prometheus would: the
	// workload in the box may not reach the port.
	client := upstreamClient(pe.Env)
	want := []string{
		`g0efilter_decisions_total{action="allowed",component="https",reason="allowlisted"} 1`,
		`g0efilter_decisions_total{action="blocked",component="https",reason="not allowlisted"} 1`,
		`g0efilter_policy_reloads_total{result="error"} 1`,
		`g0efilter_proxy_connections_total 2`,
		`g0efilter_events_dropped_total{sink="log"} 0`,
		`g0efilter_events_dropped_total{sink="file"} 0`,
		`g0efilter_proxy_bytes_total{direction="up"}`,
		`g0efilter_policy_last_reload_timestamp_seconds`,
	}
	deadline := time.Now().Add(5 * time.Second)
	var body string
	for {
		resp, err := client.Get("http://" + netip.AddrPortFrom(e2e.Box4, 9464).String() + "/metrics")
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		body = string(b)
		missing := 0
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "metrics lack some of %q:\n%s", want, body)
		time.Sleep(50 * time.Millisecond)
	}

	// Metrics are served on METRICS_ADDR only: not on the proxy ports.
	_, err = pe.DialContext(t.Context(), "tcp", netip.AddrPortFrom(e2e.Box4, 9464).String())
	assert.Error(t, err, "bound to 127.0.0.1 only")
}

// upstreamClient is an HTTP client whose connections start in the
// upstream namespace: someone on the container network.
func upstreamClient(env *e2e.Env) *http.Client {
	dial := func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		env.InUpstream(func() {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, addr)
		})
		return c, err
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dial}}
}
