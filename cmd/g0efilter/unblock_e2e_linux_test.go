package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/dashboardapi"
	"github.com/g0lab/g0efilter/internal/e2e"
)

// unblockPolicy has comments that an unblock must keep.
const unblockPolicy = `# Egress for the demo workload.
allowlist:
  domains:
    # the one site it needs
    - "allowed.example"   # pinned by the team
`

// TestRemoteUnblock: a blocked HTTPS name is unblocked through the
// dashboard's API; within two poll intervals the policy file holds the
// entry, its comments intact, the name is allowed and the request reads
// applied.
func TestRemoteUnblock(t *testing.T) {
	const poll = 500 * time.Millisecond
	var base string
	pe := startProxyEnvWith(t, unblockPolicy, nil, func(pe *proxyEnv) map[string]string {
		srv := dashboardapi.NewServer(dashboardapi.ServerConfig{
			APIKey:   "k3y",
			Unblocks: dashboardapi.NewUnblocks(dashboardapi.UnblocksConfig{}),
			Auth:     dashboardapi.AuthConfig{Mode: dashboardapi.AuthNone}, // everyone an operator
		})
		ln := pe.ListenBox("tcp4", "0.0.0.0:8081")
		hs := &http.Server{Handler: srv}
		go hs.Serve(ln)
		t.Cleanup(func() { srv.Close(); hs.Close() })
		base = "http://127.0.0.1:8081"
		return map[string]string{
			"DASHBOARD_HOST":        base,
			"DASHBOARD_API_KEY":     "k3y",
			"DASHBOARD_START_DELAY": "0s",
			"ENABLE_REMOTE_UNBLOCK": "true",
			"UNBLOCK_POLL_INTERVAL": poll.String(),
		}
	})
	pe.filter.WaitForOutput("polling the dashboard for unblock requests")
	_, err := pe.get(fams[0].dest, "https://blocked.example/")
	require.Error(t, err, "blocked before the unblock")

	// The UI's request, made from the container network as through a
	// published port: the workload in the box may not reach the dashboard.
	ui := "http://" + netip.AddrPortFrom(e2e.Box4, 8081).String()
	resp, err := upstreamClient(pe.Env).Get(ui + "/api/v1/info")
	require.NoError(t, err)
	var info dashboardapi.Info
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&info))
	resp.Body.Close()
	body, _ := json.Marshal(map[string]string{"hostname": "e2e", "target": "Blocked.Example."})
	req, err := http.NewRequest(http.MethodPost, ui+"/api/v1/unblocks", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(dashboardapi.CSRFHeader, info.CSRFToken) // as the page sends it
	resp, err = upstreamClient(pe.Env).Do(req)
	require.NoError(t, err)
	var created dashboardapi.UnblockRequest
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&created))
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, "blocked.example", created.Target)
	start := time.Now()

	// Applied within two poll intervals (plus the reload's debounce).
	var state dashboardapi.UnblockRequest
	for {
		resp, err := upstreamClient(pe.Env).Get(ui + "/api/v1/unblocks/status?id=" + created.ID)
		require.NoError(t, err)
		var st struct {
			Requests []dashboardapi.UnblockRequest `json:"requests"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
		resp.Body.Close()
		require.Len(t, st.Requests, 1)
		state = st.Requests[0]
		if state.Final() {
			break
		}
		require.Less(t, time.Since(start), 2*poll+2*time.Second, "still %s", state.State)
		time.Sleep(50 * time.Millisecond)
	}
	require.Equal(t, dashboardapi.UnblockApplied, state.State, state.Error)
	assert.Less(t, time.Since(start), 2*poll+time.Second)

	b, err := os.ReadFile(pe.filter.PolicyPath())
	require.NoError(t, err)
	got := string(b)
	for _, line := range strings.Split(strings.TrimSpace(unblockPolicy), "\n") {
		assert.Contains(t, got, line, "the original lines and comments stay")
	}
	assert.Contains(t, got, `"blocked.example"`)

	pe.waitAllowed(t, fams[0], "blocked.example")
}
