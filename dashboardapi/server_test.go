package dashboardapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/events"
)

const testKey = "s3cret-key"

func newTestServer(t *testing.T, cfg ServerConfig) *Server {
	t.Helper()
	if cfg.APIKey == "" {
		cfg.APIKey = testKey
	}
	if cfg.RateRPS == 0 {
		cfg.RateRPS = -1
	}
	if cfg.Auth.Mode == AuthRefuse {
		// The tests of events and unblocks are not about people: let
		// everyone in as an operator. auth_test.go covers the rest.
		cfg.Auth.Mode = AuthNone
	}
	s := NewServer(cfg)
	t.Cleanup(s.Close)
	return s
}

// do runs one request against h and returns the recorder. A request that
// changes something carries the CSRF token of AUTH=none when h is such a
// Server, unless hdr names one.
func do(h http.Handler, method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if s, ok := h.(*Server); ok && s.auth.cfg.Mode == AuthNone && method != http.MethodGet && method != http.MethodHead {
		r.Header.Set(CSRFHeader, noneToken(s))
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == remoteHdr {
			r.RemoteAddr = hdr[i+1]
			continue
		}
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func ingestBody(t *testing.T, evs ...events.Event) string {
	t.Helper()
	data, err := json.Marshal(evs)
	require.NoError(t, err)
	return string(data)
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &v), w.Body.String())
	return v
}

func TestIngestAuth(t *testing.T) {
	body := ingestBody(t, ev(1, events.Blocked, events.HTTPS))
	for _, tc := range []struct {
		name    string
		key     string // server's
		hdr     []string
		status  int
		message string
	}{
		{"no key configured", "", []string{APIKeyHeader, "anything"}, http.StatusForbidden, "set API_KEY"},
		{"missing key", testKey, nil, http.StatusUnauthorized, "missing API key"},
		{"wrong key", testKey, []string{APIKeyHeader, "s3cret-kez"}, http.StatusUnauthorized, "wrong API key"},
		{"prefix of key", testKey, []string{APIKeyHeader, "s3cret"}, http.StatusUnauthorized, "wrong API key"},
		{"right key", testKey, []string{APIKeyHeader, testKey}, http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewServer(ServerConfig{APIKey: tc.key})
			defer s.Close()
			w := do(s, http.MethodPost, "/api/v1/logs", body, tc.hdr...)
			assert.Equal(t, tc.status, w.Code, w.Body.String())
			assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
			if tc.message != "" {
				assert.Contains(t, decode[ErrorResponse](t, w).Error, tc.message)
			}
			st, err := s.store.Stats(context.Background())
			require.NoError(t, err)
			if tc.status == http.StatusOK {
				assert.Equal(t, 1, st.Count)
			} else {
				assert.Zero(t, st.Count, "nothing stored without the key")
			}
		})
	}
}

func TestIngestBatch(t *testing.T) {
	s := newTestServer(t, ServerConfig{})
	good1, good2 := ev(1, events.Blocked, events.HTTPS), ev(2, events.Allowed, events.DNS)
	g1, _ := json.Marshal(good1)
	g2, _ := json.Marshal(good2)
	long := strings.Repeat("a", MaxFieldLen+1)
	body := "[" + strings.Join([]string{
		string(g1),
		`{"time":"2026-11-24T21:52:26Z","component":"dns","action":"permitted"}`,
		`{"component":"dns","action":"allowed"}`,
		`"not an object"`,
		`{"time":"2026-11-24T21:52:26Z","component":"dns","action":"allowed","detail":"` + long + `"}`,
		string(g2),
	}, ",") + "]"
	w := do(s, http.MethodPost, "/api/v1/logs", body, APIKeyHeader, testKey)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	resp := decode[IngestResponse](t, w)
	assert.Equal(t, 2, resp.Accepted)
	require.Len(t, resp.Rejected, 4)
	for i, want := range []struct {
		index int
		text  string
	}{{1, "action: unknown value"}, {2, "time: missing"}, {3, "invalid event"}, {4, "detail: longer than"}} {
		assert.Equal(t, want.index, resp.Rejected[i].Index)
		assert.Contains(t, resp.Rejected[i].Error, want.text)
	}
	recs, _, err := s.store.Query(context.Background(), Query{})
	require.NoError(t, err)
	assert.Equal(t, []events.Event{good1, good2}, []events.Event{recs[0].Event, recs[1].Event})
	assert.Equal(t, ServerStats{Ingested: 2, Rejected: 4}, s.Stats())
}

func TestIngestErrors(t *testing.T) {
	s := newTestServer(t, ServerConfig{MaxBodyBytes: 1024})
	for _, tc := range []struct {
		name   string
		body   string
		status int
		text   string
	}{
		{"malformed JSON", `[{"time":`, http.StatusBadRequest, "want a JSON array"},
		{"object not array", `{"time":"2026-11-24T21:52:26Z","component":"dns","action":"allowed"}`, http.StatusBadRequest, "want a JSON array"},
		{"empty body", ``, http.StatusBadRequest, "want a JSON array"},
		{"two arrays", `[] []`, http.StatusBadRequest, "data after the array"},
		{"all invalid", `[{"component":"dns"}]`, http.StatusBadRequest, ""},
		{"oversize", "[" + strings.Repeat(`{"component":"dns"},`, 100) + "{}]", http.StatusRequestEntityTooLarge, "larger than 1024 bytes"},
		{"empty batch", `[]`, http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(s, http.MethodPost, "/api/v1/logs", tc.body, APIKeyHeader, testKey)
			assert.Equal(t, tc.status, w.Code, w.Body.String())
			if tc.text != "" {
				assert.Contains(t, decode[ErrorResponse](t, w).Error, tc.text)
			}
		})
	}
	st, err := s.store.Stats(context.Background())
	require.NoError(t, err)
	assert.Zero(t, st.Count)
}

func TestIngestIdempotencyKey(t *testing.T) {
	s := newTestServer(t, ServerConfig{})
	body := ingestBody(t, ev(1, events.Blocked, events.HTTPS), ev(2, events.Blocked, events.HTTPS))
	for range 3 {
		w := do(s, http.MethodPost, "/api/v1/logs", body, APIKeyHeader, testKey, IdempotencyKeyHeader, "batch-1")
		require.Equal(t, http.StatusOK, w.Code)
		assert.Equal(t, 2, decode[IngestResponse](t, w).Accepted)
	}
	w := do(s, http.MethodPost, "/api/v1/logs", body, APIKeyHeader, testKey, IdempotencyKeyHeader, "batch-2")
	require.Equal(t, http.StatusOK, w.Code)
	st, err := s.store.Stats(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 4, st.Count, "a repeated key is stored once")

	// The key is only honoured with the API key.
	w = do(s, http.MethodPost, "/api/v1/logs", body, IdempotencyKeyHeader, "batch-1")
	assert.Equal(t, http.StatusUnauthorized, w.Code)
}

func TestIdempotencyForgetsOldest(t *testing.T) {
	var c idempotency
	c.init(2)
	c.put("a", 200, []byte("A"))
	c.put("b", 200, []byte("B"))
	c.put("c", 200, []byte("C"))
	_, _, ok := c.get("a")
	assert.False(t, ok)
	_, body, ok := c.get("c")
	assert.True(t, ok)
	assert.Equal(t, "C", string(body))
	c.put("x", 400, nil)
	_, _, ok = c.get("x")
	assert.False(t, ok, "only successful answers are remembered")
}

// seed stores n events: odd ones blocked https, even ones allowed dns.
func seed(t *testing.T, s *Server, n int) {
	t.Helper()
	var evs []events.Event
	for i := 1; i <= n; i++ {
		if i%2 == 1 {
			evs = append(evs, ev(i, events.Blocked, events.HTTPS))
		} else {
			evs = append(evs, ev(i, events.Allowed, events.DNS))
		}
	}
	require.NoError(t, s.store.Append(context.Background(), evs))
}

func TestRead(t *testing.T) {
	s := newTestServer(t, ServerConfig{ReadLimit: 3})
	seed(t, s, 10)
	for _, tc := range []struct {
		target string
		ids    []uint64
		more   bool
	}{
		{"/api/v1/logs", []uint64{8, 9, 10}, true},
		{"/api/v1/logs?limit=2", []uint64{9, 10}, true},
		{"/api/v1/logs?limit=1000", []uint64{8, 9, 10}, true},
		{"/api/v1/logs?before_id=8", []uint64{5, 6, 7}, true},
		{"/api/v1/logs?since_id=0", []uint64{1, 2, 3}, true},
		{"/api/v1/logs?since_id=7", []uint64{8, 9, 10}, false},
		{"/api/v1/logs?since_id=10", nil, false},
		{"/api/v1/logs?action=blocked", []uint64{5, 7, 9}, true},
		{"/api/v1/logs?component=dns&since_id=0", []uint64{2, 4, 6}, true},
		{"/api/v1/logs?q=N10.EXAMPLE", []uint64{10}, false},
		{"/api/v1/logs?q=198.51.100&action=allowed&limit=1", []uint64{10}, true},
		{"/api/v1/logs?q=Not+Allowlisted&since_id=6", []uint64{7, 9}, false},
		{"/api/v1/logs?q=*.example&before_id=5", []uint64{2, 4}, false},
	} {
		t.Run(tc.target, func(t *testing.T) {
			w := do(s, http.MethodGet, tc.target, "")
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			resp := decode[LogsResponse](t, w)
			if tc.ids == nil {
				assert.Empty(t, resp.Events)
				assert.Contains(t, w.Body.String(), `"events":[]`)
			} else {
				assert.Equal(t, tc.ids, ids(resp.Events))
			}
			assert.Equal(t, tc.more, resp.More)
			assert.Equal(t, uint64(10), resp.LastID)
		})
	}
}

func TestReadWireFormat(t *testing.T) {
	s := newTestServer(t, ServerConfig{})
	e := ev(1, events.Blocked, events.HTTPS)
	e.Flow = 1<<64 - 1
	require.NoError(t, s.store.Append(context.Background(), []events.Event{e}))
	w := do(s, http.MethodGet, "/api/v1/logs", "")
	require.Equal(t, http.StatusOK, w.Code)
	want, err := e.MarshalJSON()
	require.NoError(t, err)
	assert.Equal(t, `{"events":[{"id":1,`+string(want[1:])+`],"more":false,"last_id":1}`, w.Body.String())
}

func TestReadErrors(t *testing.T) {
	s := newTestServer(t, ServerConfig{})
	for _, target := range []string{
		"/api/v1/logs?action=permitted",
		"/api/v1/logs?limit=0",
		"/api/v1/logs?limit=x",
		"/api/v1/logs?since_id=-1",
		"/api/v1/logs?before_id=x",
		"/api/v1/events?action=nope",
		"/api/v1/events?last_event_id=x",
	} {
		t.Run(target, func(t *testing.T) {
			w := do(s, http.MethodGet, target, "")
			assert.Equal(t, http.StatusBadRequest, w.Code)
			assert.NotEmpty(t, decode[ErrorResponse](t, w).Error)
		})
	}
}

func TestClearAndHealth(t *testing.T) {
	s := newTestServer(t, ServerConfig{})
	seed(t, s, 4)
	w := do(s, http.MethodGet, "/health", "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, Health{Status: "ok", Events: 4, LastID: 4}, decode[Health](t, w))

	w = do(s, http.MethodDelete, "/api/v1/logs", "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, ClearResponse{Cleared: 4}, decode[ClearResponse](t, w))

	w = do(s, http.MethodGet, "/health", "")
	assert.Equal(t, Health{Status: "ok", Events: 0, LastID: 4}, decode[Health](t, w))

	require.NoError(t, s.store.Close())
	w = do(s, http.MethodGet, "/health", "")
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Equal(t, "unavailable", decode[Health](t, w).Status)
}

func TestRoutes(t *testing.T) {
	s := newTestServer(t, ServerConfig{})
	for _, tc := range []struct {
		method, target string
		status         int
	}{
		{http.MethodPut, "/api/v1/logs", http.StatusMethodNotAllowed},
		{http.MethodGet, "/api/v1/nothing", http.StatusNotFound},
		{http.MethodGet, "/api/v1/unblocks/status", http.StatusNotFound},
		{http.MethodPost, "/api/v1/unblocks", http.StatusNotFound},
		{http.MethodGet, "/", http.StatusOK},
		{http.MethodGet, "/assets/app.js", http.StatusOK},
		{http.MethodGet, "/assets/app.css", http.StatusOK},
		{http.MethodGet, "/assets/missing.js", http.StatusNotFound},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			w := do(s, tc.method, tc.target, "")
			assert.Equal(t, tc.status, w.Code, w.Body.String())
		})
	}
	w := do(s, http.MethodGet, "/", "")
	assert.Contains(t, w.Header().Get("Content-Security-Policy"), "script-src 'self'")
	assert.Contains(t, w.Header().Get("Content-Type"), "text/html")

	w = do(s, http.MethodGet, "/api/v1/info", "")
	assert.Equal(t, Info{Unblocks: false, ReadLimit: DefaultReadLimit, Ingest: true, Role: "operator", Auth: "none", CSRFToken: noneToken(s)}, decode[Info](t, w))
}

func TestUnblocksHook(t *testing.T) {
	var got []string
	u := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.Path)
		io.WriteString(w, "ok")
	})
	s := newTestServer(t, ServerConfig{Unblocks: u})
	for _, tc := range []struct {
		method, target string
		key            bool
		status         int
	}{
		{http.MethodGet, "/api/v1/unblocks?hostname=web-1", false, http.StatusUnauthorized},
		{http.MethodGet, "/api/v1/unblocks?hostname=web-1", true, http.StatusOK},
		{http.MethodPost, "/api/v1/unblocks/ack", false, http.StatusUnauthorized},
		{http.MethodPost, "/api/v1/unblocks/ack", true, http.StatusOK},
		{http.MethodPost, "/api/v1/unblocks", false, http.StatusOK},
		{http.MethodGet, "/api/v1/unblocks/status", false, http.StatusOK},
	} {
		var hdr []string
		if tc.key {
			hdr = []string{APIKeyHeader, testKey}
		}
		w := do(s, tc.method, tc.target, "", hdr...)
		assert.Equal(t, tc.status, w.Code, "%s %s key=%v", tc.method, tc.target, tc.key)
	}
	assert.Equal(t, []string{
		"GET /api/v1/unblocks", "POST /api/v1/unblocks/ack", "POST /api/v1/unblocks", "GET /api/v1/unblocks/status",
	}, got)
	w := do(s, http.MethodGet, "/api/v1/info", "")
	assert.True(t, decode[Info](t, w).Unblocks)
}

func TestRateLimit(t *testing.T) {
	s := NewServer(ServerConfig{APIKey: testKey, RateRPS: 0.5, RateBurst: 3, Auth: AuthConfig{Mode: AuthNone}})
	defer s.Close()
	get := func(remote, target string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	for i := range 3 {
		assert.Equal(t, http.StatusOK, get("192.0.2.1:1000", "/api/v1/info").Code, "request %d is within the burst", i)
	}
	w := get("192.0.2.1:1001", "/api/v1/logs") // another port, same client
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, "2", w.Header().Get("Retry-After"), "one token per 2s")
	assert.Contains(t, decode[ErrorResponse](t, w).Error, "too many requests")

	assert.Equal(t, http.StatusOK, get("192.0.2.2:1000", "/api/v1/info").Code, "another client has its own bucket")
	assert.Equal(t, http.StatusOK, get("192.0.2.1:1000", "/health").Code, "health is not limited")
}

// remoteHdr, in the headers of do, sets the request's remote address.
const remoteHdr = ":remote"

// noneToken is the CSRF token of everyone on a Server with AUTH=none.
func noneToken(s *Server) string {
	return s.auth.csrfToken(Principal{Role: s.auth.cfg.NoneRole, Mode: AuthNone})
}
