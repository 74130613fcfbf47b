package gotify

import (
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/g0lab/g0efilter/events"
)

const testToken = "AbC.123"

// fakeGotify speaks Gotify's POST /message. It refuses a wrong key or a
// malformed body the way Gotify does, and fails the first failFirst
// requests with 503.
type fakeGotify struct {
	t         *testing.T
	failFirst int
	onRequest func(n int) // called with the request's number, from 1

	mu       sync.Mutex
	requests int
	got      []message
}

func (g *fakeGotify) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.requests++
	if g.onRequest != nil {
		g.onRequest(g.requests)
	}
	assert.Equal(g.t, http.MethodPost, r.Method)
	assert.Equal(g.t, "/message", r.URL.Path)
	assert.Equal(g.t, "application/json", r.Header.Get("Content-Type"))
	if r.Header.Get("X-Gotify-Key") != testToken {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"Unauthorized","errorCode":401,"errorDescription":"you need to provide a valid access token or user credentials to access this api"}`))
		return
	}
	if g.requests <= g.failFirst {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	var m message
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if !assert.NoError(g.t, dec.Decode(&m)) || !assert.NotEmpty(g.t, m.Message) {
		http.Error(w, `{"error":"Bad Request","errorCode":400}`, http.StatusBadRequest)
		return
	}
	g.got = append(g.got, m)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id": len(g.got), "appid": 1, "title": m.Title, "message": m.Message,
		"priority": m.Priority, "date": "2026-11-24T21:52:26Z",
	})
}

func (g *fakeGotify) titles() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, m := range g.got {
		out = append(out, m.Title)
	}
	return out
}

// clock is a fake time that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 24, 21, 0, 0, 0, time.UTC)} }

func start(t *testing.T, g *fakeGotify, cfg Config) *Notifier {
	t.Helper()
	if g != nil {
		g.t = t
		srv := httptest.NewServer(g)
		t.Cleanup(srv.Close)
		cfg.URL = srv.URL
	}
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = -1
	}
	n, err := New(cfg)
	require.NoError(t, err)
	return n
}

func closeNow(t *testing.T, n *Notifier) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, n.Close(ctx))
}

func blocked(name string) events.Event {
	return events.Event{Component: events.HTTPS, Action: events.Blocked, Name: name,
		Destination: netip.MustParseAddrPort("192.0.2.7:443")}
}

func TestMessage(t *testing.T) {
	g := &fakeGotify{}
	n := start(t, g, Config{Host: "web-1", Priority: 8})
	n.Emit(events.Event{
		Time:        time.Date(2026, 11, 24, 21, 52, 26, 5, time.UTC),
		Host:        "ignored-in-favour-of-config",
		Component:   events.HTTPS,
		Action:      events.Blocked,
		Protocol:    "tcp",
		Source:      netip.MustParseAddrPort("10.0.0.2:51234"),
		Destination: netip.MustParseAddrPort("[2001:db8::7]:443"),
		Name:        "Evil.Example.",
		Reason:      events.ReasonNotAllowlisted,
		Detail:      "no rule matched",
	})
	closeNow(t, n)
	require.Len(t, g.got, 1)
	assert.Equal(t, message{
		Title: "g0efilter web-1: blocked evil.example",
		Message: "https blocked Evil.Example.\n" +
			"10.0.0.2:51234 → [2001:db8::7]:443 (tcp)\n" +
			"reason: not allowlisted\n" +
			"detail: no rule matched\n" +
			"time: 2026-11-24T21:52:26Z",
		Priority: 8,
	}, g.got[0])
}

func TestMessageWithoutName(t *testing.T) {
	title, text := format("", events.Event{Host: "box", Component: events.Kernel, Action: events.Blocked,
		Protocol: "udp", Destination: netip.MustParseAddrPort("198.51.100.1:443")})
	assert.Equal(t, "g0efilter box: blocked 198.51.100.1", title)
	assert.Equal(t, "kernel blocked\n? → 198.51.100.1:443 (udp)", text)

	title, text = format("", events.Event{Component: events.DNS, Action: events.Blocked, Name: "x.example", QType: "AAAA"})
	assert.Equal(t, "g0efilter: blocked x.example", title)
	assert.Equal(t, "dns blocked a AAAA query for x.example", text)
}

// Attempts to get around the filter say so in the title.
func TestMessageBypassAttempt(t *testing.T) {
	title, text := format("web-1", events.Event{Component: events.Kernel, Action: events.Blocked,
		Reason: events.ReasonRawFrame, Detail: "3 frames on eth0"})
	assert.Equal(t, "g0efilter web-1: bypass attempt (raw frame)", title)
	assert.Contains(t, text, "detail: 3 frames on eth0")

	title, _ = format("web-1", events.Event{Component: events.Kernel, Action: events.Blocked,
		Reason: events.ReasonSpoofedSource, Destination: netip.MustParseAddrPort("198.51.100.1:53")})
	assert.Equal(t, "g0efilter web-1: bypass attempt (spoofed source) to 198.51.100.1", title)

	title, _ = format("", events.Event{Component: events.Kernel, Action: events.Blocked,
		Reason: events.ReasonNotAllowlisted, Destination: netip.MustParseAddrPort("198.51.100.1:53")})
	assert.Equal(t, "g0efilter: blocked 198.51.100.1", title)
}

func TestBackoff(t *testing.T) {
	g := &fakeGotify{}
	clk := newClock()
	n := start(t, g, Config{Now: clk.Now})
	n.Emit(blocked("a.example"))
	clk.Add(30 * time.Second)
	n.Emit(blocked("A.example.")) // same target, within the window
	n.Emit(blocked("b.example"))
	clk.Add(29 * time.Second)
	n.Emit(blocked("a.example")) // 59s after the first
	clk.Add(time.Second)
	n.Emit(blocked("a.example")) // 60s: the window is over
	n.Emit(blocked("b.example")) // 30s after b's first
	closeNow(t, n)
	assert.Equal(t, []string{
		"g0efilter: blocked a.example",
		"g0efilter: blocked b.example",
		"g0efilter: blocked a.example",
	}, g.titles())
}

func TestNoBackoff(t *testing.T) {
	g := &fakeGotify{}
	n := start(t, g, Config{Backoff: -1})
	for range 3 {
		n.Emit(blocked("a.example"))
	}
	closeNow(t, n)
	assert.Len(t, g.titles(), 3)
}

func TestOnlyBlockedAndNotIgnored(t *testing.T) {
	g := &fakeGotify{}
	n := start(t, g, Config{Ignore: []string{"*.Internal.Example.", "quiet.example", "198.51.100.1"}})
	n.Emit(events.Event{Component: events.HTTPS, Action: events.Allowed, Name: "allowed.example"})
	n.Emit(events.Event{Component: events.HTTPS, Action: events.Error, Name: "error.example"})
	n.Emit(blocked("deep.a.internal.example"))
	n.Emit(blocked("QUIET.example."))
	n.Emit(events.Event{Component: events.Kernel, Action: events.Blocked,
		Destination: netip.MustParseAddrPort("198.51.100.1:22")})
	n.Emit(blocked("internal.example")) // the apex is not covered by the wildcard
	closeNow(t, n)
	assert.Equal(t, []string{"g0efilter: blocked internal.example"}, g.titles())
}

// The kernel's blocks of attempts to get around the filter alert like any
// other block (the Notifier looks at the action), titled as attempts.
func TestBlockedWhateverTheReason(t *testing.T) {
	g := &fakeGotify{}
	n := start(t, g, Config{Host: "box"})
	n.Emit(events.Event{Component: events.Kernel, Action: events.Blocked, Protocol: "tcp",
		Destination: netip.MustParseAddrPort("198.51.100.1:443"), Reason: events.ReasonForgedMark})
	n.Emit(events.Event{Component: events.Kernel, Action: events.Blocked, Protocol: "udp",
		Destination: netip.MustParseAddrPort("127.0.0.11:53"), Reason: events.ReasonLocalService})
	n.Emit(events.Event{Component: events.Kernel, Action: events.Blocked, Reason: events.ReasonRawFrame,
		Detail: "3 frames sent below the IP stack on eth0, dropped"})
	n.Emit(events.Event{Component: events.DNS, Action: events.Allowed, Name: "db", Reason: events.ReasonLocalName})
	closeNow(t, n)

	require.Len(t, g.got, 3)
	assert.Equal(t, "g0efilter box: bypass attempt (forged mark) to 198.51.100.1", g.got[0].Title)
	assert.Equal(t, "kernel blocked\n? → 198.51.100.1:443 (tcp)\nreason: forged mark", g.got[0].Message)
	assert.Equal(t, "g0efilter box: bypass attempt (local service) to 127.0.0.11", g.got[1].Title)
	assert.Equal(t, "kernel blocked\n? → 127.0.0.11:53 (udp)\nreason: local service", g.got[1].Message)
	assert.Equal(t, "g0efilter box: bypass attempt (raw frame)", g.got[2].Title)
	assert.Equal(t, "kernel blocked\nreason: raw frame\ndetail: 3 frames sent below the IP stack on eth0, dropped",
		g.got[2].Message)
}

func TestRetry(t *testing.T) {
	g := &fakeGotify{failFirst: 2}
	n := start(t, g, Config{})
	n.Emit(blocked("a.example"))
	closeNow(t, n)
	assert.Equal(t, 3, g.requests)
	assert.Len(t, g.titles(), 1)
	assert.Zero(t, n.Failed())
}

// logged returns the records of a JSON logger, and the logger.
func logged() (*slog.Logger, func() []map[string]any) {
	var buf bytes.Buffer
	var mu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	})
	logger := slog.New(slog.NewJSONHandler(w, nil))
	return logger, func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		var out []map[string]any
		for line := range strings.Lines(buf.String()) {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err == nil {
				out = append(out, rec)
			}
		}
		return out
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestServerDownLoggedOnce(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens there now
	logger, records := logged()
	n := start(t, nil, Config{URL: srv.URL, Logger: logger, Now: newClock().Now})
	for _, name := range []string{"a.example", "b.example", "c.example"} {
		n.Emit(blocked(name))
	}
	closeNow(t, n)
	assert.Equal(t, uint64(3), n.Failed())
	recs := records()
	require.Len(t, recs, 1, "one line per backoff window, not one per event")
	assert.Equal(t, "WARN", recs[0]["level"])
	assert.Equal(t, "gotify: cannot deliver notification", recs[0]["msg"])
	assert.Contains(t, recs[0]["error"], "connect")
	assert.NotContains(t, recs[0]["error"], testToken)
}

func TestFailuresLoggedPerWindow(t *testing.T) {
	clk := newClock()
	// The server moves the clock as it fails each request, so that each
	// failure is reported at a known time: b 30s after a, c 61s after a.
	g := &fakeGotify{failFirst: 1 << 30, onRequest: func(n int) {
		clk.Add(map[int]time.Duration{1: 0, 2: 30 * time.Second, 3: 31 * time.Second}[n])
	}}
	logger, records := logged()
	n := start(t, g, Config{Logger: logger, Now: clk.Now, Attempts: 1})
	for _, name := range []string{"a.example", "b.example", "c.example"} {
		n.Emit(blocked(name))
	}
	closeNow(t, n)
	assert.Equal(t, 3, g.requests)
	assert.Equal(t, uint64(3), n.Failed())
	recs := records()
	require.Len(t, recs, 2, "a's failure, then c's a window later")
	assert.Equal(t, 1.0, recs[0]["failed"])
	assert.Equal(t, 3.0, recs[1]["failed"])
}

func TestBadTokenNotRetried(t *testing.T) {
	g := &fakeGotify{}
	logger, records := logged()
	n := start(t, g, Config{Token: "wrong", Logger: logger})
	n.Emit(blocked("a.example"))
	closeNow(t, n)
	assert.Equal(t, 1, g.requests)
	assert.Equal(t, uint64(1), n.Failed())
	recs := records()
	require.Len(t, recs, 1)
	assert.Contains(t, recs[0]["error"], "401 Unauthorized: you need to provide a valid access token")
}

func TestCloseAbandonsRequest(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release // hang until the test is over
	}))
	defer srv.Close()
	defer close(release)
	n := start(t, nil, Config{URL: srv.URL, Timeout: time.Hour})
	n.Emit(blocked("a.example"))
	n.Emit(blocked("b.example"))
	<-arrived
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, n.Close(ctx), context.Canceled)
	assert.Equal(t, uint64(1), n.Failed(), "the request in flight")
	assert.Equal(t, uint64(1), n.Dropped(), "the queued one")
}

func TestEmitAfterClose(t *testing.T) {
	g := &fakeGotify{}
	n := start(t, g, Config{})
	closeNow(t, n)
	n.Emit(blocked("a.example"))
	assert.Equal(t, uint64(1), n.Dropped())
	assert.Zero(t, g.requests)
}

func TestNewErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no URL":      {Token: "t"},
		"no scheme":   {URL: "gotify.example.com", Token: "t"},
		"ftp":         {URL: "ftp://gotify.example.com", Token: "t"},
		"no token":    {URL: "https://gotify.example.com"},
		"bad pattern": {URL: "https://gotify.example.com", Token: "t", Ignore: []string{"a.*.example"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(cfg)
			require.ErrorIs(t, err, ErrConfig)
		})
	}
}

func TestEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"https://g.example":           "https://g.example/message",
		"https://g.example/":          "https://g.example/message",
		"http://10.0.0.5:8080/sub/":   "http://10.0.0.5:8080/sub/message",
		"http://[2001:db8::1]:80/sub": "http://[2001:db8::1]:80/sub/message",
	} {
		n, err := New(Config{URL: in, Token: "t"})
		require.NoError(t, err)
		assert.Equal(t, want, n.endpoint)
		closeNow(t, n)
	}
}

func TestMatcher(t *testing.T) {
	m, err := compile([]string{"Exact.Example.", " *.wild.example ", ""})
	require.NoError(t, err)
	for name, want := range map[string]bool{
		"exact.example":      true,
		"EXACT.example.":     true,
		"a.exact.example":    false,
		"a.wild.example":     true,
		"a.b.c.wild.example": true,
		"wild.example":       false,
		"xwild.example":      false,
		"other.example":      false,
	} {
		assert.Equal(t, want, m.match(name), name)
	}

	all, err := compile([]string{"*"})
	require.NoError(t, err)
	assert.True(t, all.match("anything.example"))

	for _, bad := range []string{"*.example.*", "a*.example", "*.*.example", ".example", "a..example"} {
		_, err := compile([]string{bad})
		require.ErrorIs(t, err, ErrConfig, bad)
	}
}
