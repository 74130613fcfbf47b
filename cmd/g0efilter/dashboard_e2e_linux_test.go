package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/dashboardapi"
	"github.com/g0lab/g0efilter/events"
)

// TestShipsToDashboard runs a dashboard server in the box, where Compose
// puts it (the filter's namespace), and checks that an allowed and a
// blocked decision reach it.
func TestShipsToDashboard(t *testing.T) {
	pe := startProxyEnvWith(t, proxyPolicy, nil, func(pe *proxyEnv) map[string]string {
		store := dashboardapi.NewMemoryStore(0)
		srv := dashboardapi.NewServer(dashboardapi.ServerConfig{APIKey: "k3y", Store: store})
		ln := pe.ListenBox("tcp4", "127.0.0.1:8081")
		hs := &http.Server{Handler: srv}
		go hs.Serve(ln)
		t.Cleanup(func() { srv.Close(); hs.Close() })
		pe.store = store
		return map[string]string{
			"DASHBOARD_HOST":        "http://127.0.0.1:8081",
			"DASHBOARD_API_KEY":     "k3y",
			"DASHBOARD_START_DELAY": "0s",
		}
	})
	_, err := pe.get(fams[0].dest, "https://allowed.example/")
	require.NoError(t, err)
	_, err = pe.get(fams[0].dest, "https://blocked.example/")
	require.Error(t, err)

	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, _, err := pe.store.Query(context.Background(), dashboardapi.Query{Component: events.HTTPS})
		require.NoError(t, err)
		var allowed, blocked bool
		for _, r := range recs {
			allowed = allowed || (r.Event.Name == "allowed.example" && r.Event.Action == events.Allowed)
			blocked = blocked || (r.Event.Name == "blocked.example" && r.Event.Action == events.Blocked)
			assert.Equal(t, "e2e", r.Event.Host)
		}
		if allowed && blocked {
			return
		}
		require.True(t, time.Now().Before(deadline), "the dashboard has %+v", recs)
		time.Sleep(50 * time.Millisecond)
	}
}
