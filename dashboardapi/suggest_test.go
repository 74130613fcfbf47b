package dashboardapi

import (
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/policy"
)

// TestSuggest: GET /api/v1/suggest gives, for one filter, a policy that
// allows what its stored events show, as a YAML download; other filters'
// events are not in it.
func TestSuggest(t *testing.T) {
	s := newTestServer(t, ServerConfig{})
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	ev := func(host, name, dst string, c events.Component) events.Event {
		e := events.Event{Time: at, Host: host, Component: c, Action: events.Blocked, Protocol: "tcp",
			Name: name, Reason: events.ReasonNotAllowlisted}
		if dst != "" {
			e.Destination = netip.MustParseAddrPort(dst)
		}
		return e
	}
	w := do(s, http.MethodPost, "/api/v1/logs", ingestBody(t,
		ev("web-1", "a.example.com", "198.51.100.1:443", events.HTTPS),
		ev("web-1", "b.example.com", "198.51.100.1:443", events.HTTPS),
		ev("web-1", "c.example.com", "198.51.100.1:443", events.HTTPS),
		ev("web-1", "", "203.0.113.9:5432", events.Kernel),
		ev("web-2", "other.example", "198.51.100.2:443", events.HTTPS),
	), "X-Api-Key", testKey)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())

	w = do(s, http.MethodGet, "/api/v1/suggest?hostname=web-1", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, "application/yaml; charset=utf-8", w.Header().Get("Content-Type"))
	assert.Contains(t, w.Header().Get("Content-Disposition"), `filename="policy.yaml"`)
	p, err := policy.Parse("suggested", w.Body.Bytes())
	require.NoError(t, err, w.Body.String())
	assert.Equal(t, []string{"*.example.com"}, p.Domains)
	require.Len(t, p.AddrPorts, 1)
	assert.Equal(t, "tcp/203.0.113.9:5432", p.AddrPorts[0].String())
	assert.Contains(t, w.Body.String(), "from 4 events of web-1")
	assert.NotContains(t, w.Body.String(), "other.example")

	assert.Equal(t, http.StatusBadRequest, do(s, http.MethodGet, "/api/v1/suggest", "").Code)
	w = do(s, http.MethodGet, "/api/v1/suggest?hostname=nobody", "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Contains(t, w.Body.String(), "allowlist: {}")
}
