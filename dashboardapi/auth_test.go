package dashboardapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/g0lab/g0efilter/events"
)

// Keys of the auth tests: any filter's, and one bound to web-1.
const (
	anyFilterKey  = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	web1FilterKey = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
	alicePassword = "correct horse battery staple"
	victorPass    = "viewer-password-123"
)

func init() { hashCost = bcrypt.MinCost } // the real cost is a quarter second a sign-in

// usersFile writes a users file with alice (operator) and victor (viewer).
func usersFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users")
	require.NoError(t, AddUser(path, "alice", RoleOperator, []byte(alicePassword)))
	require.NoError(t, AddUser(path, "victor", RoleViewer, []byte(victorPass)))
	return path
}

// localServer is a dashboard with local accounts, both kinds of filter
// key and remote unblock, on a clock the test moves.
func localServer(t *testing.T, logs io.Writer) (*httptest.Server, *fakeClock) {
	t.Helper()
	users, err := LoadUsers(usersFile(t))
	require.NoError(t, err)
	clock := &fakeClock{t: time.Now()}
	if logs == nil {
		logs = io.Discard
	}
	log := slog.New(slog.NewTextHandler(logs, nil))
	u := NewUnblocks(UnblocksConfig{Now: clock.Now, Logger: log})
	s := NewServer(ServerConfig{
		Keys:     []FilterKey{{Key: anyFilterKey}, {Key: web1FilterKey, Hostname: "web-1"}},
		Unblocks: u,
		RateRPS:  -1,
		Auth:     AuthConfig{Mode: AuthLocal, Users: users, SessionTTL: time.Hour, Now: clock.Now},
		Logger:   log,
	})
	hs := httptest.NewUnstartedServer(s)
	hs.Config.RegisterOnShutdown(s.Close)
	hs.Start()
	t.Cleanup(hs.Close)
	t.Cleanup(s.Close)
	return hs, clock
}

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// signIn posts the login form and returns the session cookie.
func signIn(t *testing.T, base, user, password string) *http.Cookie {
	t.Helper()
	resp, err := noRedirects.PostForm(base+"/login", url.Values{"user": {user}, "password": {password}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			assert.True(t, c.HttpOnly)
			assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
			assert.Equal(t, "/", c.Path)
			return c
		}
	}
	t.Fatal("no session cookie")
	return nil
}

// cred is one way of presenting oneself.
type cred struct {
	cookie *http.Cookie
	csrf   string
	key    string
}

func (c cred) apply(r *http.Request) {
	if c.cookie != nil {
		r.AddCookie(c.cookie)
	}
	if c.csrf != "" {
		r.Header.Set(CSRFHeader, c.csrf)
	}
	if c.key != "" {
		r.Header.Set(APIKeyHeader, c.key)
	}
}

// csrfOf reads the session's CSRF token as the page does.
func csrfOf(t *testing.T, base string, c *http.Cookie) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/info", nil)
	req.AddCookie(c)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var info Info
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&info))
	require.NotEmpty(t, info.CSRFToken)
	return info.CSRFToken
}

// send makes one request and returns its status; streams are cut once
// their status is in.
func send(t *testing.T, base, method, path, body string, c cred, hdr ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c.apply(req)
	resp, err := noRedirects.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// TestAuthMatrix tries every route with every kind of credential.
func TestAuthMatrix(t *testing.T) {
	hs, clock := localServer(t, nil)
	base := hs.URL

	expiredCookie := signIn(t, base, "victor", victorPass)
	expiredCSRF := csrfOf(t, base, expiredCookie)
	clock.Add(time.Hour + time.Second) // the first sign-in has expired
	viewer := signIn(t, base, "victor", victorPass)
	operator := signIn(t, base, "alice", alicePassword)
	creds := map[string]cred{
		"none":          {},
		"wrong":         {cookie: &http.Cookie{Name: sessionCookie, Value: "forged"}, csrf: "forged", key: strings.Repeat("ab", 32)},
		"expired":       {cookie: expiredCookie, csrf: expiredCSRF},
		"viewer":        {cookie: viewer, csrf: csrfOf(t, base, viewer)},
		"operator":      {cookie: operator, csrf: csrfOf(t, base, operator)},
		"filter key":    {key: anyFilterKey},
		"other's bound": {key: web1FilterKey}, // acts as web-2 below
	}
	order := []string{"none", "wrong", "expired", "viewer", "operator", "filter key", "other's bound"}

	// A request for web-2 for the filters' routes to act on.
	u, err := http.NewRequest(http.MethodPost, base+"/api/v1/unblocks", strings.NewReader(`{"hostname":"web-2","target":"web2.example"}`))
	require.NoError(t, err)
	u.Header.Set("Content-Type", "application/json")
	creds["operator"].apply(u)
	resp, err := http.DefaultClient.Do(u)
	require.NoError(t, err)
	var web2 UnblockRequest
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&web2))
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	web2Event := ev(1, events.Blocked, events.HTTPS)
	web2Event.Host = "web-2"
	ingest := ingestBody(t, web2Event)
	ackBody := `{"acks":[{"id":"` + web2.ID + `","applied":true}]}`

	const (
		ok     = http.StatusOK
		unauth = http.StatusUnauthorized
		forbid = http.StatusForbidden
	)
	for _, tc := range []struct {
		method, path, body string
		want               []int // in the order of creds
	}{
		{"GET", "/", "", []int{unauth, unauth, unauth, ok, ok, forbid, forbid}},
		{"GET", "/api/v1/logs", "", []int{unauth, unauth, unauth, ok, ok, forbid, forbid}},
		{"GET", "/api/v1/events", "", []int{unauth, unauth, unauth, ok, ok, forbid, forbid}},
		{"GET", "/api/v1/info", "", []int{unauth, unauth, unauth, ok, ok, forbid, forbid}},
		{"GET", "/api/v1/suggest?hostname=web-1", "", []int{unauth, unauth, unauth, ok, ok, forbid, forbid}},
		{"GET", "/api/v1/observed?hostname=web-1", "", []int{unauth, unauth, unauth, ok, ok, forbid, forbid}},
		{"GET", "/api/v1/unblocks/status", "", []int{unauth, unauth, unauth, ok, ok, forbid, forbid}},
		{"GET", "/api/v1/unblocks/audit", "", []int{unauth, unauth, unauth, ok, ok, forbid, forbid}},
		{"DELETE", "/api/v1/logs", "", []int{unauth, unauth, unauth, forbid, ok, forbid, forbid}},
		{"POST", "/api/v1/unblocks", `{"hostname":"web-1","target":"a.example"}`, []int{unauth, unauth, unauth, forbid, http.StatusCreated, forbid, forbid}},
		{"POST", "/api/v1/logs", ingest, []int{unauth, unauth, unauth, unauth, unauth, ok, forbid}},
		{"GET", "/api/v1/unblocks?hostname=web-2", "", []int{unauth, unauth, unauth, unauth, unauth, ok, forbid}},
		// A key bound to web-1 gets an answer, but its ack of web-2's
		// request is refused within it (checked below).
		{"POST", "/api/v1/unblocks/ack", ackBody, []int{unauth, unauth, unauth, unauth, unauth, ok, ok}},
		{"GET", "/health", "", []int{ok, ok, ok, ok, ok, ok, ok}},
		{"GET", "/assets/app.js", "", []int{ok, ok, ok, ok, ok, ok, ok}},
		{"POST", "/logout", "", []int{unauth, unauth, unauth, ok, ok, forbid, forbid}}, // last: it ends the sessions
	} {
		for i, name := range order {
			if tc.path == "/api/v1/unblocks/ack" && name == "filter key" {
				continue // after the bound key's try, below
			}
			got := send(t, base, tc.method, tc.path, tc.body, creds[name])
			assert.Equal(t, tc.want[i], got, "%s %s as %s", tc.method, tc.path, name)
		}
	}

	// The bound key's ack left web-2's request pending; any filter's key
	// applies it.
	var ackResp AckUnblocksResponse
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/unblocks/ack", strings.NewReader(ackBody))
	req.Header.Set(APIKeyHeader, web1FilterKey)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ackResp))
	resp.Body.Close()
	assert.Equal(t, AckUnknown, ackResp.Results[0].Result, "a key bound to web-1 cannot ack web-2's request")
	assert.Equal(t, ok, send(t, base, "POST", "/api/v1/unblocks/ack", ackBody, creds["filter key"]))

	// After logout the cookie is worth nothing.
	assert.Equal(t, unauth, send(t, base, "GET", "/api/v1/logs", "", creds["operator"]))
	// A browser without a session is sent to sign in.
	assert.Equal(t, http.StatusSeeOther, send(t, base, "GET", "/", "", creds["none"], "Accept", "text/html"))
}

func TestCSRF(t *testing.T) {
	hs, _ := localServer(t, nil)
	c := signIn(t, hs.URL, "alice", alicePassword)
	token := csrfOf(t, hs.URL, c)
	for _, tc := range []struct {
		name string
		cred cred
		hdr  []string
		want int
	}{
		{"no token", cred{cookie: c}, nil, http.StatusForbidden},
		{"another session's token", cred{cookie: c, csrf: csrfOf(t, hs.URL, signIn(t, hs.URL, "alice", alicePassword))}, nil, http.StatusForbidden},
		{"cross-site", cred{cookie: c, csrf: token}, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"other origin", cred{cookie: c, csrf: token}, []string{"Origin", "https://evil.example"}, http.StatusForbidden},
		{"the page's own", cred{cookie: c, csrf: token}, []string{"Sec-Fetch-Site", "same-origin"}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, send(t, hs.URL, http.MethodDelete, "/api/v1/logs", "", tc.cred, tc.hdr...))
		})
	}
}

func TestLogin(t *testing.T) {
	var logs bytes.Buffer
	hs, clock := localServer(t, &logs)
	post := func(user, password string, hdr ...string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/login", strings.NewReader(url.Values{"user": {user}, "password": {password}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := noRedirects.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	t.Run("the page", func(t *testing.T) {
		resp, err := http.Get(hs.URL + "/login")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Contains(t, string(body), `<form id="login" method="post" action="login">`)
		assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "form-action 'self'")
		assert.NotContains(t, resp.Header.Get("Content-Security-Policy"), "unsafe-inline")
		assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
	})
	t.Run("wrong password, unknown user", func(t *testing.T) {
		assert.Equal(t, http.StatusUnauthorized, post("alice", "not her password").StatusCode)
		assert.Equal(t, http.StatusUnauthorized, post("mallory", "anything at all").StatusCode)
		assert.Empty(t, post("alice", "still not it").Cookies())
	})
	t.Run("from another site", func(t *testing.T) {
		assert.Equal(t, http.StatusForbidden, post("alice", alicePassword, "Sec-Fetch-Site", "cross-site").StatusCode)
	})
	t.Run("secure behind TLS", func(t *testing.T) {
		resp := post("alice", alicePassword, "Origin", "https://dashboard.example.com", "Sec-Fetch-Site", "same-origin")
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		require.Len(t, resp.Cookies(), 1)
		assert.Equal(t, secureSessionCookie, resp.Cookies()[0].Name)
		assert.True(t, resp.Cookies()[0].Secure)
	})
	t.Run("per user: 5 failures, then refused from any address", func(t *testing.T) {
		for range 3 {
			post("victor", "guess") // 2 failures were alice's; victor has 5
		}
		assert.Equal(t, http.StatusUnauthorized, post("victor", "guess").StatusCode)
		assert.Equal(t, http.StatusUnauthorized, post("victor", "guess").StatusCode)
		resp := post("victor", victorPass)
		assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "even the right password waits")
		assert.NotEmpty(t, resp.Header.Get("Retry-After"))
		clock.Add(loginUserEvery)
		assert.Equal(t, http.StatusSeeOther, post("victor", victorPass).StatusCode, "a minute later")
	})
	t.Run("per address: 10 tries at once", func(t *testing.T) {
		clock.Add(time.Hour) // a full bucket
		codes := map[int]int{}
		for i := range 12 {
			codes[post("nobody"+string(rune('a'+i)), "guess").StatusCode]++
		}
		assert.Equal(t, map[int]int{http.StatusUnauthorized: 10, http.StatusTooManyRequests: 2}, codes)
	})
	assert.Contains(t, logs.String(), `msg="dashboard: sign-in failed"`)
	assert.Contains(t, logs.String(), `msg="dashboard: sign-in refused: too many attempts"`)
}

func TestUsersFile(t *testing.T) {
	path := usersFile(t)
	users, err := LoadUsers(path)
	require.NoError(t, err)
	role, ok := users.verify("alice", []byte(alicePassword))
	assert.True(t, ok)
	assert.Equal(t, RoleOperator, role)
	_, ok = users.verify("alice", []byte(victorPass))
	assert.False(t, ok)

	// Replacing an account: the old password stops working at once,
	// without a restart.
	require.NoError(t, AddUser(path, "alice", RoleViewer, []byte("a brand new password")))
	_, ok = users.verify("alice", []byte(alicePassword))
	assert.False(t, ok)
	role, ok = users.verify("alice", []byte("a brand new password"))
	assert.True(t, ok)
	assert.Equal(t, RoleViewer, role)

	assert.ErrorIs(t, AddUser(path, "bob", RoleViewer, []byte("short")), ErrBadPassword)
	assert.ErrorIs(t, AddUser(path, "bob:operator", RoleViewer, []byte("long enough password")), ErrBadUserName)
	for _, bad := range []string{"alice:admin:$2a$12$x", "alice:viewer:plaintext", "alice", "x:viewer:$2a$04$abc"} {
		p := filepath.Join(t.TempDir(), "users")
		require.NoError(t, writeFile(p, bad+"\n"))
		_, err := LoadUsers(p)
		assert.Error(t, err, bad)
	}
	empty := filepath.Join(t.TempDir(), "users")
	require.NoError(t, writeFile(empty, "# nobody yet\n"))
	_, err = LoadUsers(empty)
	assert.ErrorContains(t, err, "dashboard adduser")
}

func TestForwardAuth(t *testing.T) {
	var logs bytes.Buffer
	s := newTestServer(t, ServerConfig{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Auth: AuthConfig{
			Mode:           AuthForward,
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("172.18.0.2/32"), netip.MustParsePrefix("fd00::2/128")},
			Operators:      []string{"alice"},
			Viewers:        []string{"victor"},
		},
	})
	get := func(from, user string) int {
		hdr := []string{remoteHdr, from}
		if user != "" {
			hdr = append(hdr, "Remote-User", user)
		}
		return do(s, http.MethodGet, "/api/v1/logs", "", hdr...).Code
	}
	assert.Equal(t, http.StatusOK, get("172.18.0.2:40000", "victor"), "a trusted proxy's user")
	assert.Equal(t, http.StatusOK, get("[fd00::2]:40000", "alice"))
	assert.Equal(t, http.StatusOK, get("[::ffff:172.18.0.2]:40000", "victor"), "an IPv4-mapped address is the IPv4 one")
	assert.Equal(t, http.StatusForbidden, get("172.18.0.2:40000", "mallory"), "signed in at the proxy but neither viewer nor operator")
	assert.Equal(t, http.StatusUnauthorized, get("172.18.0.2:40000", ""), "the proxy named nobody")
	assert.Equal(t, http.StatusUnauthorized, get("172.18.0.3:40000", "alice"), "an untrusted address naming a user")
	assert.Equal(t, http.StatusUnauthorized, get("127.0.0.1:40000", "alice"), "the workload over loopback")
	assert.Contains(t, logs.String(), `msg="dashboard: ignored a user header from an address that is not a trusted proxy" remote=172.18.0.3:40000 header=Remote-User user=alice`)

	// A viewer may not clear, even with its token.
	token := s.auth.csrfToken(Principal{User: "victor", Role: RoleViewer, Mode: AuthForward})
	w := do(s, http.MethodDelete, "/api/v1/logs", "", remoteHdr, "172.18.0.2:1", "Remote-User", "victor", CSRFHeader, token)
	assert.Equal(t, http.StatusForbidden, w.Code)
	assert.Contains(t, decode[ErrorResponse](t, w).Error, "takes the operator role")
	token = s.auth.csrfToken(Principal{User: "alice", Role: RoleOperator, Mode: AuthForward})
	w = do(s, http.MethodDelete, "/api/v1/logs", "", remoteHdr, "172.18.0.2:1", "Remote-User", "alice", CSRFHeader, token)
	assert.Equal(t, http.StatusOK, w.Code, w.Body.String())
}

func TestNoAuthConfigured(t *testing.T) {
	s := NewServer(ServerConfig{APIKey: anyFilterKey, RateRPS: -1})
	defer s.Close()
	w := do(s, http.MethodGet, "/api/v1/logs", "")
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Contains(t, decode[ErrorResponse](t, w).Error, "set AUTH")
	assert.Equal(t, http.StatusUnauthorized, do(s, http.MethodGet, "/", "", "Accept", "text/html").Code)
	assert.Equal(t, http.StatusOK, do(s, http.MethodGet, "/health", "").Code)
	assert.Equal(t, http.StatusOK, do(s, http.MethodPost, "/api/v1/logs", "[]", APIKeyHeader, anyFilterKey).Code, "filters still ship")
}

func TestCheckFilterKey(t *testing.T) {
	for _, good := range []string{
		anyFilterKey, // openssl rand -hex 32
		"q1tLyVwFm0pTEtYNqGzGSrWkA3mUbHDbKJx2EUk3F5I=", // openssl rand -base64 32
	} {
		assert.NoError(t, CheckFilterKey(good), good)
	}
	for _, bad := range []string{
		"change-me-to-a-long-random-secret",
		"CHANGE-ME-" + anyFilterKey,
		"s3cret",
		anyFilterKey[:40],            // 20 bytes of hex
		strings.Repeat("a", 200),     // long, not random
		strings.Repeat("abcdef", 20), // few characters
		"0123456789abcdef0123456789abcdef01234 56789abcdef0123456789abcdef",
	} {
		assert.ErrorIs(t, CheckFilterKey(bad), ErrWeakKey, bad)
	}
}

func writeFile(path, text string) error {
	return os.WriteFile(path, []byte(text), 0o600)
}

// TestStreamEndsWithSession: a live stream ends at the first heartbeat
// after its session is signed out.
func TestStreamEndsWithSession(t *testing.T) {
	users, err := LoadUsers(usersFile(t))
	require.NoError(t, err)
	s := NewServer(ServerConfig{RateRPS: -1, Heartbeat: 20 * time.Millisecond, Auth: AuthConfig{Mode: AuthLocal, Users: users}})
	hs := httptest.NewUnstartedServer(s)
	hs.Config.RegisterOnShutdown(s.Close)
	hs.Start()
	t.Cleanup(hs.Close)
	t.Cleanup(s.Close)

	c := signIn(t, hs.URL, "victor", victorPass)
	req, _ := http.NewRequest(http.MethodGet, hs.URL+"/api/v1/events", nil)
	req.AddCookie(c)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		ended <- err
	}()
	select {
	case <-ended:
		t.Fatal("the stream ended while signed in")
	case <-time.After(100 * time.Millisecond): // five heartbeats
	}
	assert.Equal(t, http.StatusOK, send(t, hs.URL, http.MethodPost, "/logout", "", cred{cookie: c, csrf: csrfOf(t, hs.URL, c)}))
	select {
	case err := <-ended:
		assert.NoError(t, err, "ended cleanly")
	case <-time.After(5 * time.Second):
		t.Fatal("the stream outlived its session")
	}
}
