package dashboardapi

import (
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/events"
)

// observedEvents are a workload's events on filter web-1 (and one of
// web-2's), from at on, one a second: names through the proxies that
// would be blocked (audit mode), blocked and allowed, three under
// example.com; a connection to an address a DNS answer gave for a name;
// a name on another port; an address reached without a name; and what is
// no reason to allow anything.
func observedEvents(at time.Time) []events.Event {
	var evs []events.Event
	add := func(c events.Component, a events.Action, name, dst string, edit ...func(*events.Event)) {
		e := events.Event{Time: at.Add(time.Duration(len(evs)) * time.Second), Host: "web-1", Component: c, Action: a,
			Protocol: "tcp", Name: name, Reason: events.ReasonNotAllowlisted}
		if a == events.Allowed {
			e.Reason = events.ReasonAllowlisted
		}
		if dst != "" {
			e.Destination = netip.MustParseAddrPort(dst)
		}
		for _, f := range edit {
			f(&e)
		}
		evs = append(evs, e)
	}
	add(events.HTTPS, events.WouldBlock, "api.example.com", "198.51.100.1:443")
	add(events.HTTPS, events.Allowed, "www.example.com", "198.51.100.1:443")
	add(events.HTTPS, events.WouldBlock, "cdn.example.com", "198.51.100.1:443")
	add(events.HTTPS, events.WouldBlock, "api.example.com", "198.51.100.1:443")
	add(events.HTTPS, events.Blocked, "ads.tracker.example", "198.51.100.2:443")
	add(events.HTTPS, events.Allowed, "github.com", "140.82.121.4:443")
	add(events.Kernel, events.Blocked, "", "203.0.113.9:5432")
	add(events.DNS, events.Allowed, "db.example.net", "", func(e *events.Event) { e.Detail, e.Protocol = "198.51.100.7", "udp" })
	add(events.Kernel, events.WouldBlock, "", "198.51.100.7:5432")
	add(events.HTTPS, events.WouldBlock, "api.example.org", "198.51.100.3:8443")
	add(events.HTTPS, events.Blocked, "evil.example", "198.51.100.4:443", func(e *events.Event) { e.Reason = events.ReasonDenied })
	add(events.HTTPS, events.Blocked, "other.example", "198.51.100.5:443", func(e *events.Event) { e.Host = "web-2" })
	return evs
}

// TestObserved: GET /api/v1/observed gives one filter's destinations by
// registrable domain, would-block first, each with the entry of the
// suggested policy that allows it and what Allow would ask for.
func TestObserved(t *testing.T) {
	s := newTestServer(t, ServerConfig{})
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	w := do(s, http.MethodPost, "/api/v1/logs", ingestBody(t, observedEvents(at)...), "X-Api-Key", testKey)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())

	w = do(s, http.MethodGet, "/api/v1/observed?hostname=web-1", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
	got := decode[ObservedResponse](t, w)
	assert.Equal(t, "web-1", got.Hostname)
	assert.Equal(t, 11, got.Events)
	assert.Equal(t, 1, got.Skipped, "the denied name")
	assert.False(t, got.Partial)
	assert.Equal(t, at, got.From)
	assert.Equal(t, at.Add(10*time.Second), got.To)

	type row struct {
		Verdict       events.Action
		What          string
		Proto         string
		Port          uint16
		Entry, Target string
		Count, B, WB  int
	}
	rows := func(g ObservedGroup) []row {
		var out []row
		for _, d := range g.Destinations {
			what := d.Name
			if what == "" {
				what = d.Addr
			}
			out = append(out, row{d.Verdict, what, d.Proto, d.Port, d.Entry, d.Target, d.Count, d.Blocked, d.WouldBlock})
		}
		return out
	}
	var domains []string
	for _, g := range got.Groups {
		domains = append(domains, g.Domain+":"+g.Verdict.String())
	}
	assert.Equal(t, []string{"example.com:would-block", "example.net:would-block", "example.org:would-block",
		"tracker.example:blocked", ":blocked", "github.com:allowed"}, domains,
		"would-block first, then blocked (addresses without a name after the names), then allowed")
	require.Len(t, got.Groups, 6)
	W, B, A := events.WouldBlock, events.Blocked, events.Allowed
	assert.Equal(t, []row{
		{W, "api.example.com", "tcp", 443, "*.example.com", "api.example.com", 2, 0, 2},
		{W, "cdn.example.com", "tcp", 443, "*.example.com", "cdn.example.com", 1, 0, 1},
		{A, "www.example.com", "tcp", 443, "*.example.com", "www.example.com", 1, 0, 0},
	}, rows(got.Groups[0]))
	assert.Equal(t, 4, got.Groups[0].Count)
	assert.Equal(t, 3, got.Groups[0].WouldBlock)
	assert.Equal(t, []row{
		{W, "db.example.net", "tcp", 5432, "tcp/db.example.net:5432", "tcp/db.example.net:5432", 1, 0, 1},
		{A, "db.example.net", "", 0, "db.example.net", "db.example.net", 1, 0, 0},
	}, rows(got.Groups[1]), "a connection to an address answered for a name; Allow asks for the entry, with its port")
	assert.Equal(t, "198.51.100.7", got.Groups[1].Destinations[0].Addr)
	assert.Empty(t, got.Groups[1].Destinations[1].Addr, "a DNS question has no address")
	assert.Equal(t, []row{{W, "api.example.org", "tcp", 8443, "api.example.org:8443", "api.example.org:8443", 1, 0, 1}}, rows(got.Groups[2]),
		"a name on another port: Allow asks for it on that port")
	assert.Equal(t, []row{{B, "ads.tracker.example", "tcp", 443, "ads.tracker.example", "ads.tracker.example", 1, 1, 0}}, rows(got.Groups[3]))
	assert.Equal(t, []row{{B, "203.0.113.9", "tcp", 5432, "tcp/203.0.113.9:5432", "tcp/203.0.113.9:5432", 1, 1, 0}}, rows(got.Groups[4]),
		"an address on one port, not on every port")
	assert.Equal(t, []row{{A, "github.com", "tcp", 443, "github.com", "github.com", 1, 0, 0}}, rows(got.Groups[5]))
	d := got.Groups[0].Destinations[0]
	assert.Equal(t, at, d.First)
	assert.Equal(t, at.Add(3*time.Second), d.Last)

	// Every entry is one the download offers.
	body := do(s, http.MethodGet, "/api/v1/suggest?hostname=web-1", "").Body.String()
	for _, g := range got.Groups {
		for _, d := range g.Destinations {
			assert.Contains(t, body, `"`+d.Entry+`"`)
		}
	}

	// In dns mode a name allows every port of its addresses: the entry
	// and the unblock target are the name.
	got = decode[ObservedResponse](t, do(s, http.MethodGet, "/api/v1/observed?hostname=web-1&dns=1", ""))
	require.Len(t, got.Groups, 6)
	assert.Equal(t, []row{
		{W, "db.example.net", "tcp", 5432, "db.example.net", "db.example.net", 1, 0, 1},
		{A, "db.example.net", "", 0, "db.example.net", "db.example.net", 1, 0, 0},
	}, rows(got.Groups[1]))
}

func TestObservedEmptyAndErrors(t *testing.T) {
	s := newTestServer(t, ServerConfig{})
	w := do(s, http.MethodGet, "/api/v1/observed?hostname=web-1", "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.JSONEq(t, `{"hostname":"web-1","events":0,"skipped":0,"overflow":0,"partial":false,"groups":[]}`, w.Body.String(),
		"a filter with no events: no groups, and no times")

	w = do(s, http.MethodPost, "/api/v1/logs", ingestBody(t, observedEvents(time.Now())...), "X-Api-Key", testKey)
	require.Equal(t, http.StatusOK, w.Code)
	got := decode[ObservedResponse](t, do(s, http.MethodGet, "/api/v1/observed?hostname=nobody", ""))
	assert.Empty(t, got.Groups, "an unknown filter")
	assert.Zero(t, got.Events)

	w = do(s, http.MethodGet, "/api/v1/observed", "")
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.Contains(t, decode[ErrorResponse](t, w).Error, "hostname: required")
	assert.Equal(t, http.StatusMethodNotAllowed, do(s, http.MethodPost, "/api/v1/observed?hostname=web-1", "").Code)
}
