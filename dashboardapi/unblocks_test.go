package dashboardapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/policy"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// unblocksServer is a Server with Unblocks on a fake clock.
func unblocksServer(t *testing.T, cfg UnblocksConfig) (*Server, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: t0}
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	return newTestServer(t, ServerConfig{Unblocks: NewUnblocks(cfg)}), clock
}

// create posts an unblock request as the UI does.
func create(h http.Handler, hostname, target string, hdr ...string) *httptest.ResponseRecorder {
	body, _ := json.Marshal(CreateUnblock{Hostname: hostname, Target: target})
	return do(h, http.MethodPost, "/api/v1/unblocks", string(body), append([]string{"Content-Type", "application/json"}, hdr...)...)
}

func mustCreate(t *testing.T, h http.Handler, hostname, target string) UnblockRequest {
	t.Helper()
	w := create(h, hostname, target)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	return decode[UnblockRequest](t, w)
}

func fetch(t *testing.T, h http.Handler, hostname string) []UnblockRequest {
	t.Helper()
	w := do(h, http.MethodGet, "/api/v1/unblocks?hostname="+hostname, "", APIKeyHeader, testKey)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	return decode[UnblocksResponse](t, w).Requests
}

func ack(t *testing.T, h http.Handler, acks ...UnblockAck) []UnblockAckResult {
	t.Helper()
	body, err := json.Marshal(AckUnblocks{Acks: acks})
	require.NoError(t, err)
	w := do(h, http.MethodPost, "/api/v1/unblocks/ack", string(body), APIKeyHeader, testKey)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	return decode[AckUnblocksResponse](t, w).Results
}

func status(t *testing.T, h http.Handler, query string) []UnblockRequest {
	t.Helper()
	w := do(h, http.MethodGet, "/api/v1/unblocks/status"+query, "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	return decode[UnblocksResponse](t, w).Requests
}

func audit(t *testing.T, h http.Handler, query string, hdr ...string) []UnblockAudit {
	t.Helper()
	w := do(h, http.MethodGet, "/api/v1/unblocks/audit"+query, "", hdr...)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	return decode[UnblockAuditResponse](t, w).Records
}

func TestUnblockCreate(t *testing.T) {
	for _, tc := range []struct {
		target, kind, want string
	}{
		{"example.com", UnblockDomain, "example.com"},
		{" Example.COM. ", UnblockDomain, "example.com"},
		{"*.Example.com", UnblockDomain, "*.example.com"},
		{"bücher.example", UnblockDomain, "xn--bcher-kva.example"},
		{"*.example.co.uk", UnblockDomain, "*.example.co.uk"},
		{"198.51.100.7", UnblockIP, "198.51.100.7/32"},
		{"198.51.100.0/24", UnblockIP, "198.51.100.0/24"},
		{"10.0.0.0/8", UnblockIP, "10.0.0.0/8"},
		{"2001:db8::1", UnblockIP, "2001:db8::1/128"},
		{"[2001:db8::1]", UnblockIP, "2001:db8::1/128"},
		{"2001:db8::/32", UnblockIP, "2001:db8::/32"},
		{"::ffff:198.51.100.7", UnblockIP, "198.51.100.7/32"},
		// Entries limited to a protocol and ports, as the policy writes
		// them: what the Observed view's Allow asks for.
		{"tcp/198.51.100.7:5432", UnblockIP, "tcp/198.51.100.7:5432"},
		{"198.51.100.7:443", UnblockIP, "198.51.100.7:443"},
		{"udp/[2001:DB8::7]:53", UnblockIP, "udp/[2001:db8::7]:53"},
		{"tcp/GitHub.com:22", UnblockDomain, "tcp/github.com:22"},
		{"*.Example.com:8443", UnblockDomain, "*.example.com:8443"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			s, _ := unblocksServer(t, UnblocksConfig{})
			req := mustCreate(t, s, " web-1 ", tc.target)
			assert.NotEmpty(t, req.ID)
			assert.Equal(t, UnblockRequest{
				ID: req.ID, Hostname: "web-1", Target: tc.want, Kind: tc.kind,
				Created: t0, State: UnblockPending, Updated: t0,
			}, req)
		})
	}
}

func TestUnblockCreateRefusals(t *testing.T) {
	long := strings.Repeat("a", 254)
	for _, tc := range []struct {
		name, hostname, target string
		text                   string
	}{
		{"no target", "web-1", " ", "target: missing"},
		{"any domain", "web-1", "*", "allows every domain"},
		{"wildcard over a TLD", "web-1", "*.com", "top-level domain"},
		{"wildcard over an unlisted TLD", "web-1", "*.lan", "top-level domain"},
		{"wildcard over a public suffix", "web-1", "*.co.uk", "public suffix"},
		{"wildcard over a private suffix", "web-1", "*.github.io", "public suffix"},
		{"every IPv4 address", "web-1", "0.0.0.0/0", "allows every address"},
		{"every IPv6 address", "web-1", "::/0", "allows every address"},
		{"every mapped address", "web-1", "::ffff:0:0/96", "allows every address"},
		{"IPv4 prefix too wide", "web-1", "10.0.0.0/7", "/7 is too wide"},
		{"IPv6 prefix too wide", "web-1", "2001:db8::/31", "/31 is too wide"},
		{"host bits set", "web-1", "10.0.0.1/8", "did you mean 10.0.0.0/8"},
		{"port 0", "web-1", "tcp/198.51.100.7:0", "port"},
		{"wide prefix with a port", "web-1", "tcp/0.0.0.0/4:443", "too wide"},
		{"bad address with a port", "web-1", "tcp/10.0.0.1/8:443", "host bits"},
		{"wildcard over a public suffix with a port", "web-1", "*.co.uk:8443", "public suffix"},
		{"not an address", "web-1", "300.1.2.3", "not an IP address"},
		{"URL", "web-1", "https://example.com/x", "not a URL"},
		{"bad domain", "web-1", "exa mple.com", "not allowed in a domain"},
		{"empty label", "web-1", "a..example", "empty label"},
		{"star inside", "web-1", "*.*.example.com", "whole first label"},
		{"no hostname", "", "example.com", "hostname: missing"},
		{"blank hostname", "  ", "example.com", "hostname: missing"},
		{"hostname with space", "web 1", "example.com", "not allowed"},
		{"hostname with control", "web\x001", "example.com", "not allowed"},
		{"hostname too long", long, "example.com", "longer than 253"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := unblocksServer(t, UnblocksConfig{})
			w := create(s, tc.hostname, tc.target)
			assert.Equal(t, http.StatusBadRequest, w.Code)
			assert.Contains(t, decode[ErrorResponse](t, w).Error, tc.text)
			assert.Empty(t, status(t, s, ""), "nothing created")
			recs := audit(t, s, "")
			require.Len(t, recs, 1, "the refusal is audited")
			assert.Equal(t, AuditRequest, recs[0].Action)
			assert.Equal(t, "refused", recs[0].Result)
			assert.Contains(t, recs[0].Error, tc.text)
		})
	}
}

func TestUnblockCreateBadRequests(t *testing.T) {
	s, _ := unblocksServer(t, UnblocksConfig{})
	for _, tc := range []struct {
		name   string
		body   string
		hdr    []string
		status int
		text   string
	}{
		{"not JSON", `hostname=web-1`, []string{"Content-Type", "application/json"}, http.StatusBadRequest, "want {"},
		{"form", `{"hostname":"web-1","target":"a.example"}`, []string{"Content-Type", "text/plain"}, http.StatusUnsupportedMediaType, "application/json"},
		{"no content type", `{"hostname":"web-1","target":"a.example"}`, nil, http.StatusUnsupportedMediaType, "application/json"},
		{"cross-site", `{"hostname":"web-1","target":"a.example"}`,
			[]string{"Content-Type", "application/json", "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden, "cross-origin"},
		{"other origin", `{"hostname":"web-1","target":"a.example"}`,
			[]string{"Content-Type", "application/json", "Origin", "https://evil.example"}, http.StatusForbidden, "cross-origin"},
		{"too large", `{"hostname":"web-1","target":"` + strings.Repeat("a", maxCreateBody) + `"}`,
			[]string{"Content-Type", "application/json"}, http.StatusBadRequest, "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(s, http.MethodPost, "/api/v1/unblocks", tc.body, tc.hdr...)
			assert.Equal(t, tc.status, w.Code, w.Body.String())
			assert.Contains(t, decode[ErrorResponse](t, w).Error, tc.text)
		})
	}
	w := create(s, "web-1", "a.example", "Sec-Fetch-Site", "same-origin")
	assert.Equal(t, http.StatusCreated, w.Code, "the UI's own requests pass")
	assert.Empty(t, fetch(t, s, "web-2"))
}

func TestUnblockDuplicatesCollapse(t *testing.T) {
	s, clock := unblocksServer(t, UnblocksConfig{})
	first := mustCreate(t, s, "web-1", "example.com")

	clock.Add(time.Minute)
	w := create(s, "web-1", "EXAMPLE.com.")
	assert.Equal(t, http.StatusOK, w.Code, "the pending one, not a new one")
	assert.Equal(t, first, decode[UnblockRequest](t, w))

	other := mustCreate(t, s, "web-2", "example.com")
	assert.NotEqual(t, first.ID, other.ID, "another filter's request is its own")

	ack(t, s, UnblockAck{ID: first.ID, Applied: true})
	again := mustCreate(t, s, "web-1", "example.com")
	assert.NotEqual(t, first.ID, again.ID, "a finished request does not collapse new ones")

	assert.Len(t, status(t, s, ""), 3)
	var results []string
	for _, r := range audit(t, s, "?hostname=web-1") {
		results = append(results, r.Action+":"+r.Result)
	}
	assert.Equal(t, []string{"request:created", "request:duplicate", "ack:applied", "request:created"}, results)
}

func TestUnblockFetchNeedsKey(t *testing.T) {
	s, _ := unblocksServer(t, UnblocksConfig{})
	mustCreate(t, s, "web-1", "example.com")
	for _, tc := range []struct {
		name   string
		hdr    []string
		status int
	}{
		{"missing key", nil, http.StatusUnauthorized},
		{"wrong key", []string{APIKeyHeader, "nope"}, http.StatusUnauthorized},
		{"right key", []string{APIKeyHeader, testKey}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(s, http.MethodGet, "/api/v1/unblocks?hostname=web-1", "", tc.hdr...)
			assert.Equal(t, tc.status, w.Code, w.Body.String())
			w = do(s, http.MethodPost, "/api/v1/unblocks/ack", `{"acks":[]}`, tc.hdr...)
			assert.Equal(t, tc.status, w.Code, w.Body.String())
		})
	}
	t.Run("no key configured", func(t *testing.T) {
		s := NewServer(ServerConfig{Unblocks: NewUnblocks(UnblocksConfig{}), RateRPS: -1})
		defer s.Close()
		w := do(s, http.MethodGet, "/api/v1/unblocks?hostname=web-1", "", APIKeyHeader, "")
		assert.Equal(t, http.StatusForbidden, w.Code)
	})
}

func TestUnblockFetch(t *testing.T) {
	s, clock := unblocksServer(t, UnblocksConfig{})
	a := mustCreate(t, s, "web-1", "a.example")
	clock.Add(time.Second)
	mustCreate(t, s, "web-2", "b.example")
	clock.Add(time.Second)
	c := mustCreate(t, s, "web-1", "198.51.100.7")
	clock.Add(time.Second)
	d := mustCreate(t, s, "web-1", "d.example")
	ack(t, s, UnblockAck{ID: d.ID, Applied: true})

	assert.Equal(t, []UnblockRequest{a, c}, fetch(t, s, "web-1"), "pending ones of that filter, oldest first")
	assert.Equal(t, []UnblockRequest{a, c}, fetch(t, s, "web-1"), "again until acknowledged")
	assert.Empty(t, fetch(t, s, "web-3"))
	assert.Equal(t, "[]", strings.TrimSpace(string(
		must(json.Marshal(fetch(t, s, "web-3"))))), "an empty list, not null")

	w := do(s, http.MethodGet, "/api/v1/unblocks", "", APIKeyHeader, testKey)
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.Contains(t, decode[ErrorResponse](t, w).Error, "hostname: missing")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestUnblockAck(t *testing.T) {
	s, clock := unblocksServer(t, UnblocksConfig{})
	a := mustCreate(t, s, "web-1", "a.example")
	b := mustCreate(t, s, "web-1", "b.example")
	c := mustCreate(t, s, "web-1", "c.example")

	clock.Add(time.Minute)
	results := ack(t, s,
		UnblockAck{ID: a.ID, Applied: true},
		UnblockAck{ID: "no-such-id", Applied: true},
		UnblockAck{ID: b.ID, Error: "  policy comes from ALLOWLIST_DOMAINS: no file to edit "},
		UnblockAck{ID: c.ID},
		UnblockAck{ID: a.ID, Error: "a second answer"},
	)
	assert.Equal(t, []UnblockAckResult{
		{ID: a.ID, Result: AckRecorded, State: UnblockApplied},
		{ID: "no-such-id", Result: AckUnknown},
		{ID: b.ID, Result: AckRecorded, State: UnblockFailed},
		{ID: c.ID, Result: AckRecorded, State: UnblockFailed},
		{ID: a.ID, Result: AckIgnored, State: UnblockApplied},
	}, results, "an unknown ID does not fail the batch")

	got := status(t, s, "")
	require.Len(t, got, 3)
	assert.Equal(t, UnblockApplied, got[0].State)
	assert.Equal(t, t0.Add(time.Minute), got[0].Updated)
	assert.Empty(t, got[0].Error)
	assert.Equal(t, UnblockFailed, got[1].State)
	assert.Equal(t, "policy comes from ALLOWLIST_DOMAINS: no file to edit", got[1].Error)
	assert.Equal(t, "the filter gave no reason", got[2].Error)
	assert.Empty(t, fetch(t, s, "web-1"), "finished requests are not fetched")

	// Idempotent: the same batch again changes nothing.
	clock.Add(time.Minute)
	results = ack(t, s, UnblockAck{ID: a.ID, Applied: true}, UnblockAck{ID: b.ID, Applied: true})
	assert.Equal(t, []UnblockAckResult{
		{ID: a.ID, Result: AckIgnored, State: UnblockApplied},
		{ID: b.ID, Result: AckIgnored, State: UnblockFailed},
	}, results)
	assert.Equal(t, got, status(t, s, ""))
	assert.Empty(t, ack(t, s), "an empty batch")
	assert.Equal(t, UnblocksStats{Created: 3, Applied: 1, Failed: 2}, s.cfg.Unblocks.(*Unblocks).Stats())
}

func TestUnblockAckBadRequests(t *testing.T) {
	s, _ := unblocksServer(t, UnblocksConfig{})
	w := do(s, http.MethodPost, "/api/v1/unblocks/ack", `[{"id":"x"}]`, APIKeyHeader, testKey)
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.Contains(t, decode[ErrorResponse](t, w).Error, `want {"acks"`)

	acks := make([]UnblockAck, maxAcks+1)
	body := must(json.Marshal(AckUnblocks{Acks: acks}))
	w = do(s, http.MethodPost, "/api/v1/unblocks/ack", string(body), APIKeyHeader, testKey)
	assert.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
}

func TestUnblockExpiry(t *testing.T) {
	var logs bytes.Buffer
	s, clock := unblocksServer(t, UnblocksConfig{
		Expiry: 24 * time.Hour,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	never := mustCreate(t, s, "web-1", "never.example")
	fetched := mustCreate(t, s, "web-2", "fetched.example")

	clock.Add(20 * time.Hour)
	require.Len(t, fetch(t, s, "web-2"), 1)
	clock.Add(4*time.Hour - time.Nanosecond)
	assert.Equal(t, UnblockPending, status(t, s, "?id="+never.ID)[0].State, "not yet")

	clock.Add(time.Nanosecond)
	got := status(t, s, "?id="+never.ID)[0]
	assert.Equal(t, UnblockExpired, got.State)
	assert.Equal(t, t0.Add(24*time.Hour), got.Updated)
	assert.True(t, got.Final())
	assert.Empty(t, fetch(t, s, "web-1"), "an expired request is not fetched")
	assert.Equal(t, UnblockPending, status(t, s, "?id="+fetched.ID)[0].State,
		"fetching keeps a request from expiring: its filter is working on it")

	// A new request for the same target is not collapsed into the expired one.
	again := mustCreate(t, s, "web-1", "never.example")
	assert.NotEqual(t, never.ID, again.ID)

	clock.Add(24 * time.Hour)
	assert.Equal(t, UnblockExpired, status(t, s, "?id="+fetched.ID)[0].State, "24h after the last fetch")

	// A filter that acknowledges an expired request did process it.
	results := ack(t, s, UnblockAck{ID: fetched.ID, Applied: true})
	assert.Equal(t, []UnblockAckResult{{ID: fetched.ID, Result: AckRecorded, State: UnblockApplied}}, results)

	var trail []string
	for _, r := range audit(t, s, "") {
		trail = append(trail, r.Action+":"+r.Result+":"+r.Target)
	}
	assert.Equal(t, []string{
		"request:created:never.example",
		"request:created:fetched.example",
		"expire:expired:never.example",
		"request:created:never.example",
		"expire:expired:fetched.example",
		"expire:expired:never.example",
		"ack:applied:fetched.example",
	}, trail)
	assert.Contains(t, logs.String(), "action=expire result=expired")
}

func TestUnblockStatusFilters(t *testing.T) {
	s, _ := unblocksServer(t, UnblocksConfig{})
	a := mustCreate(t, s, "web-1", "a.example")
	b := mustCreate(t, s, "web-2", "b.example")
	c := mustCreate(t, s, "web-1", "c.example")
	assert.Equal(t, []UnblockRequest{a, b, c}, status(t, s, ""))
	assert.Equal(t, []UnblockRequest{a, c}, status(t, s, "?hostname=web-1"))
	assert.Equal(t, []UnblockRequest{c, a}, status(t, s, "?id="+c.ID+"&id="+a.ID+"&id=gone&id="+c.ID))
	assert.Empty(t, status(t, s, "?hostname=web-2&id="+a.ID))
	assert.Empty(t, status(t, s, "?id=gone"))
}

func TestUnblockAudit(t *testing.T) {
	var logs bytes.Buffer
	u := NewUnblocks(UnblocksConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return t0 }})
	s := newTestServer(t, ServerConfig{Unblocks: u, Auth: AuthConfig{
		Mode: AuthForward, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.8/29")},
		Operators: []string{"alice@example.com", "bob"},
	}})
	// asUser creates an unblock as the proxy at from says user asked.
	asUser := func(from, user, target string, hdr ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/unblocks", strings.NewReader(`{"hostname":"web-1","target":"`+target+`"}`))
		r.RemoteAddr = from
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set(DefaultUserHeader, user)
		r.Header.Set(CSRFHeader, s.auth.csrfToken(Principal{User: user, Role: RoleOperator, Mode: AuthForward}))
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	w := asUser("192.0.2.10:51000", "alice@example.com", "a.example", "X-Forwarded-User", "not-used", "X-Forwarded-For", "203.0.113.5")
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	id := decode[UnblockRequest](t, w).ID
	assert.Equal(t, http.StatusBadRequest, asUser("192.0.2.10:51000", "bob", "*").Code)
	w = asUser("198.51.100.9:4000", "bob", "b.example", "X-Forwarded-For", "203.0.113.66")
	assert.Equal(t, http.StatusUnauthorized, w.Code, "a user header from an address that is not a trusted proxy names nobody")

	w = do(s, http.MethodPost, "/api/v1/unblocks/ack", `{"acks":[{"id":"`+id+`","applied":true}]}`, APIKeyHeader, testKey, "X-Forwarded-For", "203.0.113.7")
	require.Equal(t, http.StatusOK, w.Code)

	recs := audit(t, s, "", DefaultUserHeader, "bob", "X-Forwarded-For", "203.0.113.6", remoteHdr, "192.0.2.9:5000")
	require.Len(t, recs, 3)
	assert.Equal(t, UnblockAudit{
		Time: t0, Action: AuditRequest, ID: id, Hostname: "web-1", Target: "a.example",
		Remote: "192.0.2.10:51000", User: "alice@example.com", ForwardedFor: "203.0.113.5", Result: "created",
	}, recs[0], "the user the trusted proxy named, not another header")
	assert.Equal(t, "bob", recs[1].User)
	assert.Equal(t, "refused", recs[1].Result)
	assert.Equal(t, "*", recs[1].Target, "a refused target as it was sent")
	assert.Contains(t, recs[1].Error, "allows every domain")
	assert.Equal(t, UnblockAudit{
		Time: t0, Action: AuditAck, ID: id, Hostname: "web-1", Target: "a.example",
		Remote: "192.0.2.1:1234", User: "filter (key " + FilterKey{Key: testKey}.Fingerprint() + ")", Result: UnblockApplied,
	}, recs[2], "a filter is named by its key's fingerprint; its X-Forwarded-For is not believed")

	assert.Equal(t, []UnblockAudit{recs[0], recs[2]}, audit(t, s, "?id="+id, DefaultUserHeader, "bob", remoteHdr, "192.0.2.9:5000"))
	assert.Empty(t, audit(t, s, "?hostname=web-9", DefaultUserHeader, "bob", remoteHdr, "192.0.2.9:5000"))

	log := logs.String()
	assert.Contains(t, log, `user=alice@example.com`)
	assert.Contains(t, log, `level=WARN msg="dashboard: unblock" action=request result=refused hostname=web-1 target=*`)
	assert.Contains(t, log, `action=ack result=applied id=`+id)
}

func TestUnblockMaxRecords(t *testing.T) {
	s, _ := unblocksServer(t, UnblocksConfig{MaxRecords: 2})
	a := mustCreate(t, s, "web-1", "a.example")
	b := mustCreate(t, s, "web-1", "b.example")
	w := create(s, "web-1", "c.example")
	assert.Equal(t, http.StatusServiceUnavailable, w.Code, "every request kept is pending")
	assert.Contains(t, decode[ErrorResponse](t, w).Error, "too many pending")

	ack(t, s, UnblockAck{ID: a.ID, Applied: true})
	c := mustCreate(t, s, "web-1", "c.example")
	assert.Equal(t, []UnblockRequest{b, c}, status(t, s, ""), "the oldest finished one is forgotten")
	assert.Equal(t, []UnblockAckResult{{ID: a.ID, Result: AckUnknown}}, ack(t, s, UnblockAck{ID: a.ID, Applied: true}))

	recs := audit(t, s, "")
	require.Len(t, recs, 2, "the audit keeps the newest")
	assert.Equal(t, AuditRequest, recs[0].Action)
	assert.Equal(t, c.ID, recs[0].ID)
	assert.Equal(t, AckUnknown, recs[1].Result)
}

func TestUnblockRoutes(t *testing.T) {
	s, _ := unblocksServer(t, UnblocksConfig{})
	for _, tc := range []struct {
		method, target string
		key            bool
		status         int
	}{
		{http.MethodPut, "/api/v1/unblocks", false, http.StatusMethodNotAllowed},
		{http.MethodDelete, "/api/v1/unblocks", false, http.StatusMethodNotAllowed},
		{http.MethodGet, "/api/v1/unblocks/ack", false, http.StatusMethodNotAllowed},
		{http.MethodPost, "/api/v1/unblocks/status", false, http.StatusMethodNotAllowed},
		{http.MethodDelete, "/api/v1/unblocks/audit", false, http.StatusMethodNotAllowed},
		{http.MethodGet, "/api/v1/unblocks/nothing", false, http.StatusNotFound},
		{http.MethodGet, "/api/v1/unblocks/status", false, http.StatusOK},
		{http.MethodGet, "/api/v1/unblocks/audit", false, http.StatusOK},
		{http.MethodHead, "/api/v1/unblocks/status", false, http.StatusOK},
		{http.MethodHead, "/api/v1/unblocks?hostname=web-1", false, http.StatusUnauthorized},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			var hdr []string
			if tc.key {
				hdr = []string{APIKeyHeader, testKey}
			}
			w := do(s, tc.method, tc.target, "", hdr...)
			assert.Equal(t, tc.status, w.Code, w.Body.String())
			if w.Code != http.StatusOK && tc.method != http.MethodHead {
				assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
			}
		})
	}
}

func TestParseTarget(t *testing.T) {
	u := NewUnblocks(UnblocksConfig{MinIPv4Bits: 24, MinIPv6Bits: 64})
	for _, tc := range []struct{ in, kind, target, err string }{
		{"198.51.100.0/24", UnblockIP, "198.51.100.0/24", ""},
		{"198.51.100.0/23", "", "", "/23 is too wide"},
		{"2001:db8:1:2::/64", UnblockIP, "2001:db8:1:2::/64", ""},
		{"2001:db8::/48", "", "", "/48 is too wide"},
		{"cafe::1", UnblockIP, "cafe::1/128", ""},
		{"cafe.example", UnblockDomain, "cafe.example", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			kind, target, err := u.ParseTarget(tc.in)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.kind, kind)
			assert.Equal(t, tc.target, target)
		})
	}
}

func TestCutTo(t *testing.T) {
	assert.Equal(t, "abc", cutTo("abc", 3))
	assert.Equal(t, "ab…", cutTo("abc", 2))
	assert.Equal(t, "a…", cutTo("aé", 2), "never half a rune")
	assert.Equal(t, "a\uFFFDb", cutTo("a\xffb", 10))
	assert.Equal(t, fmt.Sprint(maxAuditText), fmt.Sprint(len(cut(strings.Repeat("x", 1000)))-len("…")))
}

// FuzzParseTarget checks that what ParseTarget accepts is a policy entry
// that parses to itself and is never an "allow everything" one.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{
		"example.com", "*.example.com", "*", "*.com", "*.co.uk", "bücher.example", "198.51.100.7",
		"10.0.0.0/8", "0.0.0.0/0", "::/0", "[2001:db8::1]", "::ffff:198.51.100.7", "1.2.3.4:80",
		"https://example.com/", "a..b", "*.*.x", "cafe::1", "2001:db8::/31",
		"tcp/198.51.100.7:5432", "udp/[2001:db8::7]:53-60", "tcp/github.com:22", "*.example.com:8443", "tcp/10.0.0.0/4:1",
	} {
		f.Add(s)
	}
	u := NewUnblocks(UnblocksConfig{})
	f.Fuzz(func(t *testing.T, s string) {
		kind, target, err := u.ParseTarget(s)
		if err != nil {
			return
		}
		k2, t2, err := u.ParseTarget(target)
		require.NoError(t, err, "target %q", target)
		assert.Equal(t, kind, k2)
		assert.Equal(t, target, t2, "normalised once")
		switch kind {
		case UnblockDomain:
			r, err := policy.ParseNameEntry(target)
			require.NoError(t, err)
			assert.NotEqual(t, "*", r.Pattern)
			if r.Proto == policy.AnyProto && r.Ports.All() {
				d, err := policy.NormalizeDomain(target)
				require.NoError(t, err)
				assert.Equal(t, target, d)
			} else {
				assert.Equal(t, target, r.String(), "as the policy writes it")
			}
		case UnblockIP:
			r, err := policy.ParseAddrEntry(target)
			require.NoError(t, err)
			if r.Proto == policy.AnyProto && r.Ports.All() {
				p, err := policy.ParsePrefix(target)
				require.NoError(t, err)
				assert.Equal(t, target, p.String())
			} else {
				assert.Equal(t, target, r.String(), "as the policy writes it")
			}
			p := r.Prefix
			least := DefaultMinIPv6Bits
			if p.Addr().Is4() {
				least = DefaultMinIPv4Bits
			}
			assert.GreaterOrEqual(t, p.Bits(), least)
		default:
			t.Fatalf("kind %q", kind)
		}
	})
}
