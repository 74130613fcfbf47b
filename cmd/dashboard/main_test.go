package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/dashboardapi"
)

const wait = 10 * time.Second

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the dashboard with kv as its environment and returns its base
// URL, a function that stops it and returns the exit code, and its log.
func start(t *testing.T, kv map[string]string) (string, func() int, *syncBuffer) {
	t.Helper()
	if kv["PORT"] == "" {
		kv["PORT"] = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	code := make(chan int, 1)
	var stderr syncBuffer
	go func() {
		code <- run(ctx, nil, env(kv), strings.NewReader(""), &bytes.Buffer{}, &stderr, func(a net.Addr) { addr <- a })
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a.String()
	case c := <-code:
		cancel()
		t.Fatalf("dashboard exited with %d: %s", c, stderr.String())
	case <-time.After(wait):
		t.Fatal("dashboard did not start")
	}
	stopped := false
	stop := func() int {
		cancel()
		select {
		case c := <-code:
			stopped = true
			return c
		case <-time.After(wait):
			t.Fatal("dashboard did not stop")
			return -1
		}
	}
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	return base, stop, &stderr
}

func postEvent(t *testing.T, base, key, name string) int {
	t.Helper()
	body := fmt.Sprintf(`[{"time":"2026-11-24T21:52:26Z","host":"web-1","component":"https","action":"blocked","name":%q}]`, name)
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/logs", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set(dashboardapi.APIKeyHeader, key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func readNames(t *testing.T, base string) []string {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/logs")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var lr dashboardapi.LogsResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&lr))
	var out []string
	for _, r := range lr.Events {
		out = append(out, r.Event.Name)
	}
	return out
}

func TestRunServesAndShutsDownWithStreamOpen(t *testing.T) {
	base, stop, _ := start(t, map[string]string{"API_KEY": testKey, "SSE_RETRY_MS": "700"})
	resp, err := http.Get(base + "/health")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	stream, err := http.Get(base + "/api/v1/events")
	require.NoError(t, err)
	defer stream.Body.Close()
	sc := bufio.NewScanner(stream.Body)
	require.True(t, sc.Scan())
	assert.Equal(t, "retry: 700", sc.Text())

	assert.Equal(t, http.StatusUnauthorized, postEvent(t, base, "wrong", "a.example"))
	assert.Equal(t, http.StatusOK, postEvent(t, base, testKey, "a.example"))
	assert.Equal(t, []string{"a.example"}, readNames(t, base))

	assert.Equal(t, exitOK, stop(), "shutdown does not wait for the open stream")
}

func TestRunSQLiteKeepsHistory(t *testing.T) {
	db := filepath.Join(t.TempDir(), "events.db")
	base, stop, log := start(t, map[string]string{"API_KEY": testKey, "DB_PATH": db})
	assert.Contains(t, log.String(), "sqlite")
	require.Equal(t, http.StatusOK, postEvent(t, base, testKey, "kept.example"))
	require.Equal(t, exitOK, stop())

	base, _, _ = start(t, map[string]string{"API_KEY": testKey, "DB_PATH": db})
	assert.Equal(t, []string{"kept.example"}, readNames(t, base))
}

func TestRunWithoutKeyWarnsAndRefusesIngest(t *testing.T) {
	base, _, log := start(t, map[string]string{})
	assert.Contains(t, log.String(), "API_KEY is not set")
	assert.Equal(t, http.StatusForbidden, postEvent(t, base, "anything", "a.example"))
}

func TestRunErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		code int
		text []string
	}{
		{"bad config", nil, map[string]string{"PORT": "nope", "RATE_BURST": "-1"}, exitUsage,
			[]string{`PORT="nope"`, `RATE_BURST="-1"`}},
		{"port in use", nil, map[string]string{"PORT": busy.Addr().String()}, exitFailure, []string{"PORT"}},
		{"bad database", nil, map[string]string{"PORT": "127.0.0.1:0", "DB_PATH": filepath.Join(t.TempDir(), "no", "dir", "x.db")}, exitFailure, []string{"DB_PATH"}},
		{"unknown command", []string{"frobnicate"}, nil, exitUsage, []string{`unknown command "frobnicate"`}},
		{"extra argument", []string{"serve", "x"}, nil, exitUsage, []string{"too many arguments"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, env(tc.env), strings.NewReader(""), &stdout, &stderr, nil)
			assert.Equal(t, tc.code, code)
			for _, s := range tc.text {
				assert.Contains(t, stderr.String(), s)
			}
		})
	}
}

func TestRunVersion(t *testing.T) {
	var stdout bytes.Buffer
	assert.Equal(t, exitOK, run(context.Background(), []string{"version"}, env(nil), strings.NewReader(""), &stdout, &bytes.Buffer{}, nil))
	assert.Equal(t, "dashboard dev\n", stdout.String())
}

func TestHealthCommand(t *testing.T) {
	base, _, _ := start(t, map[string]string{})
	addr := strings.TrimPrefix(base, "http://")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"health"}, env(map[string]string{"PORT": addr}), strings.NewReader(""), &stdout, &stderr, nil)
	assert.Equal(t, exitOK, code, stderr.String())
	assert.Contains(t, stdout.String(), `"status":"ok"`)

	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	stdout.Reset()
	code = run(context.Background(), []string{"health"}, env(map[string]string{"PORT": port}), strings.NewReader(""), &stdout, &stderr, nil)
	assert.Equal(t, exitOK, code, "a bare port is asked on loopback")

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := busy.Addr().String()
	busy.Close()
	stderr.Reset()
	code = run(context.Background(), []string{"health"}, env(map[string]string{"PORT": closed}), strings.NewReader(""), &stdout, &stderr, nil)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr.String(), "dashboard: health:")
}

func TestRunUnblocksOffByDefault(t *testing.T) {
	base, _, _ := start(t, map[string]string{"API_KEY": testKey})
	var info dashboardapi.Info
	getJSON(t, base+"/api/v1/info", &info)
	assert.False(t, info.Unblocks)
	resp, err := http.Post(base+"/api/v1/unblocks", "application/json", strings.NewReader(`{"hostname":"web-1","target":"a.example"}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// TestRunUnblocks walks remote unblock with local accounts: an operator
// signs in and asks, the filter polls and acknowledges, and a restart with
// DB_PATH forgets neither the request nor who asked for it.
func TestRunUnblocks(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	kv := map[string]string{
		"API_KEY": testKey, "ENABLE_UNBLOCKS": "true", "UNBLOCK_EXPIRY": "1h",
		"AUTH": "local", "USERS_FILE": users, "DB_PATH": filepath.Join(dir, "events.db"),
	}
	var out, errs bytes.Buffer
	require.Equal(t, exitOK, run(context.Background(), []string{"adduser", "alice", "operator"}, env(kv),
		strings.NewReader("a long enough password\n"), &out, &errs, nil), errs.String())
	assert.Contains(t, out.String(), "alice (operator) is in "+users)

	base, stop, log := start(t, kv)
	assert.Contains(t, log.String(), "remote unblock is on")
	assert.Contains(t, log.String(), "unblock_expiry=1h0m0s")
	assert.Contains(t, log.String(), "people sign in with local accounts")

	browser := signedIn(t, base, "alice", "a long enough password")
	var info dashboardapi.Info
	getJSONAs(t, browser, base+"/api/v1/info", &info)
	assert.True(t, info.Unblocks)
	assert.Equal(t, "operator", info.Role)

	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/unblocks", strings.NewReader(`{"hostname":"web-1","target":"A.Example."}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(dashboardapi.CSRFHeader, info.CSRFToken)
	req.Header.Set("X-Forwarded-User", "mallory") // not believed
	resp, err := browser.Do(req)
	require.NoError(t, err)
	var created dashboardapi.UnblockRequest
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&created))
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, "a.example", created.Target)
	assert.Contains(t, log.String(), "user=alice", "the audit is logged")
	require.Equal(t, exitOK, stop())

	base, _, _ = start(t, kv)
	c, err := dashboardapi.NewClient(dashboardapi.ClientConfig{URL: base, APIKey: testKey})
	require.NoError(t, err)
	defer c.Close(context.Background())
	ctx := context.Background()
	pending, err := c.PendingUnblocks(ctx, "web-1")
	require.NoError(t, err)
	require.Len(t, pending, 1, "the request made before the restart")
	require.NoError(t, c.AckUnblocks(ctx, []dashboardapi.UnblockAck{{ID: pending[0].ID, Applied: true}}))

	browser = signedIn(t, base, "alice", "a long enough password")
	var st dashboardapi.UnblocksResponse
	getJSONAs(t, browser, base+"/api/v1/unblocks/status?id="+created.ID, &st)
	require.Len(t, st.Requests, 1)
	assert.Equal(t, dashboardapi.UnblockApplied, st.Requests[0].State)
	var audit dashboardapi.UnblockAuditResponse
	getJSONAs(t, browser, base+"/api/v1/unblocks/audit?id="+created.ID, &audit)
	require.Len(t, audit.Records, 2)
	assert.Equal(t, "alice", audit.Records[0].User)
	assert.Contains(t, audit.Records[1].User, "filter (key ")
}

// signedIn signs in at base and returns a client that carries the cookie.
func signedIn(t *testing.T, base, user, password string) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(base+"/login", url.Values{"user": {user}, "password": {password}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the login form's redirect leads to the page")
	return c
}

func getJSONAs(t *testing.T, c *http.Client, url string, v any) {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

func TestRunRefusesToStartWithoutAuth(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), nil, env(map[string]string{"AUTH": "", "PORT": "127.0.0.1:0"}), strings.NewReader(""), &stdout, &stderr, nil)
	assert.Equal(t, exitUsage, code)
	for _, want := range []string{"AUTH", "AUTH=local", "dashboard adduser NAME operator", "AUTH=forward", "AUTH=oidc", "AUTH=none"} {
		assert.Contains(t, stderr.String(), want)
	}
}

func TestRunAuthNoneWarns(t *testing.T) {
	_, _, log := start(t, map[string]string{"AUTH": "none"})
	assert.Contains(t, log.String(), "level=WARN msg=\"AUTH=none: NOBODY SIGNS IN.")
}

func TestRunLocalWithoutAccounts(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), nil, env(map[string]string{"AUTH": "local", "PORT": "127.0.0.1:0",
		"USERS_FILE": filepath.Join(t.TempDir(), "users")}), strings.NewReader(""), &stdout, &stderr, nil)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr.String(), "USERS_FILE")
	assert.Contains(t, stderr.String(), "no such file")
}

func TestAddUserCommand(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users")
	for _, tc := range []struct {
		name  string
		args  []string
		env   map[string]string
		stdin string
		code  int
		text  string
	}{
		{"no file", []string{"adduser", "bob"}, map[string]string{}, "a long enough password\n", exitUsage, "set USERS_FILE"},
		{"no name", []string{"adduser"}, map[string]string{"USERS_FILE": users}, "", exitUsage, "usage"},
		{"bad role", []string{"adduser", "bob", "admin"}, map[string]string{"USERS_FILE": users}, "a long enough password\n", exitUsage, "want viewer or operator"},
		{"short password", []string{"adduser", "bob"}, map[string]string{"USERS_FILE": users}, "short\n", exitUsage, "password"},
		{"no password", []string{"adduser", "bob"}, map[string]string{"USERS_FILE": users}, "", exitUsage, "no password"},
		{"viewer by default", []string{"adduser", "bob"}, map[string]string{"USERS_FILE": users}, "a long enough password\n", exitOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, env(tc.env), strings.NewReader(tc.stdin), &stdout, &stderr, nil)
			assert.Equal(t, tc.code, code, stderr.String())
			assert.Contains(t, stderr.String(), tc.text)
		})
	}
	data, err := os.ReadFile(users)
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^bob:viewer:\$2a\$12\$`, string(data), "bcrypt at cost 12")
	assert.NotContains(t, string(data), "a long enough password")
	fi, err := os.Stat(users)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

func TestRunMetrics(t *testing.T) {
	// A free port for the metrics, known before the dashboard starts.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	base, _, log := start(t, map[string]string{"API_KEY": testKey, "ENABLE_UNBLOCKS": "true", "METRICS_ADDR": addr})
	assert.Contains(t, log.String(), "metrics listening")
	require.Equal(t, http.StatusOK, postEvent(t, base, testKey, "a.example"))

	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	for _, want := range []string{
		"g0efilter_dashboard_events_ingested_total 1",
		"g0efilter_dashboard_events_rejected_total 0",
		"g0efilter_dashboard_sse_clients 0",
		"g0efilter_dashboard_unblocks_created_total 0",
		`g0efilter_dashboard_unblocks_acknowledged_total{result="applied"} 0`,
	} {
		assert.Contains(t, string(b), want)
	}
	resp, err = http.Get(base + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	assert.NotEqual(t, http.StatusOK, resp.StatusCode, "metrics are not on the UI's port")
}
