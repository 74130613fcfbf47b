package dashboardapi

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/events"
)

// signalHandler is a slog.Handler that passes each message on.
type signalHandler struct{ msgs chan string }

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.msgs <- r.Message:
	default:
	}
	return nil
}
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h signalHandler) WithGroup(string) slog.Handler      { return h }

// waitFor waits for a message from a signalHandler.
func waitFor(t *testing.T, msgs chan string, want string) {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case m := <-msgs:
			if m == want {
				return
			}
		case <-timer.C:
			t.Fatalf("no log message %q", want)
		}
	}
}

// ingested wraps h and signals after each request it served.
func ingested(h http.Handler, sig chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		select {
		case sig <- struct{}{}:
		default:
		}
	})
}

// waitCount waits, woken by sig, until store holds n events.
func waitCount(t *testing.T, store Store, sig chan struct{}, n int) {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		st, err := store.Stats(context.Background())
		require.NoError(t, err)
		if st.Count >= n {
			require.Equal(t, n, st.Count)
			return
		}
		select {
		case <-sig:
		case <-timer.C:
			t.Fatalf("store holds %d events, want %d", st.Count, n)
		}
	}
}

func newTestClient(t *testing.T, cfg ClientConfig) *Client {
	t.Helper()
	if cfg.APIKey == "" {
		cfg.APIKey = testKey
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	}
	c, err := NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

func TestNewClientErrors(t *testing.T) {
	for _, cfg := range []ClientConfig{
		{URL: "", APIKey: "k"},
		{URL: "dashboard:8081", APIKey: "k"},
		{URL: "ftp://dashboard", APIKey: "k"},
		{URL: "http://dashboard:8081"},
	} {
		_, err := NewClient(cfg)
		assert.ErrorIs(t, err, ErrClientConfig, "%+v", cfg)
	}
}

// TestClientSurvivesDashboardRestart ships events, restarts the dashboard
// (same address, same SQLite file) while more are emitted, and checks that
// every event arrives exactly once and in order.
func TestClientSurvivesDashboardRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	sig := make(chan struct{}, 1)

	serveDashboard := func(ln net.Listener) (Store, *http.Server) {
		store, err := OpenSQLite(path, SQLiteConfig{})
		require.NoError(t, err)
		hs := &http.Server{Handler: ingested(newTestServer(t, ServerConfig{Store: store}), sig)}
		go hs.Serve(ln)
		return store, hs
	}
	store, hs := serveDashboard(ln)

	logs := make(chan string, 100)
	c := newTestClient(t, ClientConfig{URL: "http://" + addr, BatchSize: 7, Logger: slog.New(signalHandler{logs})})
	emit := func(from, to int) {
		for i := from; i < to; i++ {
			c.Emit(ev(i, events.Blocked, events.HTTPS))
		}
	}
	emit(0, 50)
	waitCount(t, store, sig, 50)

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, hs.Shutdown(ctx))
	require.NoError(t, store.Close())

	emit(50, 100)
	waitFor(t, logs, "dashboard unreachable, retrying")

	ln, err = net.Listen("tcp", addr)
	require.NoError(t, err, "listen again on %s", addr)
	store, hs = serveDashboard(ln)
	defer hs.Close()
	defer store.Close()
	waitFor(t, logs, "dashboard reachable again")
	waitCount(t, store, sig, 100)

	recs, _, err := store.Query(context.Background(), Query{})
	require.NoError(t, err)
	for i, r := range recs {
		assert.Equal(t, fmt.Sprintf("n%d.example", i), r.Event.Name)
	}
	require.NoError(t, c.Close(ctx))
	assert.Equal(t, uint64(100), c.Sent())
	assert.Zero(t, c.Dropped())
}

// TestClientLostAnswer loses the answer to a stored batch: the retry
// carries the same Idempotency-Key and is not stored again. The Client may
// send the five events in more than one batch, but it retries a batch
// before it sends the next, so the lost batch's retry is the second request.
func TestClientLostAnswer(t *testing.T) {
	s := newTestServer(t, ServerConfig{})
	sig := make(chan struct{}, 1)
	var (
		mu   sync.Mutex
		keys []string // of each request, in order
	)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get(IdempotencyKeyHeader))
		first := len(keys) == 1
		mu.Unlock()
		if first {
			s.ServeHTTP(httptest.NewRecorder(), r) // stored, but the answer is lost
			panic(http.ErrAbortHandler)
		}
		s.ServeHTTP(w, r)
	})
	hs := httptest.NewServer(ingested(h, sig))
	defer hs.Close()
	c := newTestClient(t, ClientConfig{URL: hs.URL})
	for i := range 5 {
		c.Emit(ev(i, events.Allowed, events.DNS))
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, c.Close(ctx))
	st, err := s.store.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, 5, st.Count)
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(keys), 2)
	assert.NotEmpty(t, keys[0])
	assert.Equal(t, keys[0], keys[1], "a retry sends the same key")
	assert.Equal(t, uint64(5), c.Sent())
}

func TestClientRetriesBusyDashboard(t *testing.T) {
	s := newTestServer(t, ServerConfig{})
	var calls atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			writeError(w, http.StatusServiceUnavailable, "busy")
		case 2:
			w.Header().Set("Retry-After", "1") // capped by MaxBackoff
			writeError(w, http.StatusTooManyRequests, "slow down")
		default:
			s.ServeHTTP(w, r)
		}
	})
	hs := httptest.NewServer(h)
	defer hs.Close()
	c := newTestClient(t, ClientConfig{URL: hs.URL})
	c.Emit(ev(1, events.Blocked, events.DNS))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, c.Close(ctx))
	assert.Equal(t, int32(3), calls.Load())
	assert.Equal(t, uint64(1), c.Sent())
}

func TestClientRefusals(t *testing.T) {
	t.Run("wrong key drops the batch", func(t *testing.T) {
		_, hs := startServer(t, ServerConfig{})
		c := newTestClient(t, ClientConfig{URL: hs.URL, APIKey: "wrong"})
		c.Emit(ev(1, events.Blocked, events.DNS))
		c.Emit(ev(2, events.Blocked, events.DNS))
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		require.NoError(t, c.Close(ctx))
		assert.Equal(t, uint64(2), c.Dropped())
		assert.Zero(t, c.Sent())
	})
	t.Run("invalid events are counted", func(t *testing.T) {
		s, hs := startServer(t, ServerConfig{})
		c := newTestClient(t, ClientConfig{URL: hs.URL})
		c.Emit(ev(1, events.Blocked, events.DNS))
		c.Emit(events.Event{Time: t0, Component: events.DNS}) // no action: cannot be encoded
		long := ev(3, events.Blocked, events.DNS)
		long.Detail = string(make([]byte, MaxFieldLen+1))
		c.Emit(long) // refused by the server
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		require.NoError(t, c.Close(ctx))
		assert.Equal(t, uint64(1), c.Sent())
		assert.Equal(t, uint64(2), c.Rejected())
		st, _ := s.store.Stats(ctx)
		assert.Equal(t, 1, st.Count)
	})
	t.Run("too large is split", func(t *testing.T) {
		s, hs := startServer(t, ServerConfig{MaxBodyBytes: 1000})
		c := newTestClient(t, ClientConfig{URL: hs.URL, StartDelay: time.Hour})
		for i := range 10 { // about 300 bytes each
			c.Emit(ev(i, events.Blocked, events.DNS))
		}
		huge := ev(10, events.Blocked, events.DNS)
		huge.Detail = string(make([]byte, 2000))
		c.Emit(huge)
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		require.NoError(t, c.Close(ctx)) // ships at once despite the delay
		assert.Equal(t, uint64(10), c.Sent())
		assert.Equal(t, uint64(1), c.Dropped())
		recs, _, err := s.store.Query(ctx, Query{})
		require.NoError(t, err)
		assert.Len(t, recs, 10)
	})
}

// TestClientNeverBlocks holds the dashboard's answer and checks that Emit
// neither waits nor queues more than its size.
func TestClientNeverBlocks(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		writeError(w, http.StatusServiceUnavailable, "down")
	}))
	defer hs.Close()
	defer close(release)
	c := newTestClient(t, ClientConfig{URL: hs.URL, QueueSize: 10, BatchSize: 1})
	c.Emit(ev(0, events.Blocked, events.DNS))
	select {
	case <-arrived:
	case <-time.After(wait):
		t.Fatal("no request")
	}
	start := time.Now()
	for i := 1; i <= 1000; i++ {
		c.Emit(ev(i, events.Blocked, events.DNS))
	}
	assert.Less(t, time.Since(start), time.Second, "Emit does not wait")
	assert.Equal(t, uint64(1000-10), c.Dropped(), "the queue holds 10, one is in flight")

	// Close gives up when its context ends and counts what was left.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, c.Close(ctx), context.Canceled)
	assert.Equal(t, uint64(1001), c.Dropped())
	c.Emit(ev(2000, events.Blocked, events.DNS))
	assert.Equal(t, uint64(1002), c.Dropped(), "emitted after Close")
}

func TestClientStartDelay(t *testing.T) {
	s := newTestServer(t, ServerConfig{})
	sig := make(chan struct{}, 1)
	hs := httptest.NewServer(ingested(s, sig))
	defer hs.Close()
	const delay = 150 * time.Millisecond
	start := time.Now()
	c := newTestClient(t, ClientConfig{URL: hs.URL, StartDelay: delay})
	c.Emit(ev(1, events.Blocked, events.DNS))
	waitCount(t, s.store, sig, 1)
	assert.GreaterOrEqual(t, time.Since(start), delay)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, c.Close(ctx))
	assert.Equal(t, uint64(1), c.Sent())
}
