package dashboardapi

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClientUnblocks(t *testing.T) {
	clock := &fakeClock{t: t0}
	_, hs := startServer(t, ServerConfig{Unblocks: NewUnblocks(UnblocksConfig{Now: clock.Now})})
	var logs bytes.Buffer
	c := newTestClient(t, ClientConfig{URL: hs.URL + "/", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()

	got, err := c.PendingUnblocks(ctx, "web-1")
	require.NoError(t, err)
	assert.Empty(t, got)

	a := mustCreate(t, hs.Config.Handler, "web-1", "a.example")
	b := mustCreate(t, hs.Config.Handler, "web-1", "198.51.100.7")
	mustCreate(t, hs.Config.Handler, "web-2", "a.example") // another filter's

	got, err = c.PendingUnblocks(ctx, "web-1")
	require.NoError(t, err)
	assert.Equal(t, []UnblockRequest{a, b}, got)

	require.NoError(t, c.AckUnblocks(ctx, []UnblockAck{
		{ID: a.ID, Applied: true},
		{ID: b.ID, Error: "policy comes from ALLOWLIST_IPS"},
		{ID: "gone"},
	}))
	assert.Contains(t, logs.String(), "id=gone", "an unknown request is logged, not an error")
	require.NoError(t, c.AckUnblocks(ctx, []UnblockAck{{ID: a.ID, Applied: true}}), "twice is harmless")
	require.NoError(t, c.AckUnblocks(ctx, nil))

	got, err = c.PendingUnblocks(ctx, "web-1")
	require.NoError(t, err)
	assert.Empty(t, got)
	st := status(t, hs.Config.Handler, "?hostname=web-1")
	require.Len(t, st, 2)
	assert.Equal(t, UnblockApplied, st[0].State)
	assert.Equal(t, UnblockFailed, st[1].State)
	assert.Equal(t, "policy comes from ALLOWLIST_IPS", st[1].Error)
}

func TestClientUnblocksInBatches(t *testing.T) {
	s, _ := unblocksServer(t, UnblocksConfig{})
	var posts atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	c := newTestClient(t, ClientConfig{URL: hs.URL})
	acks := make([]UnblockAck, 2*maxAcks+1)
	require.NoError(t, c.AckUnblocks(context.Background(), acks))
	assert.Equal(t, int32(3), posts.Load())
	assert.Len(t, audit(t, s, ""), len(acks))
}

func TestClientUnblocksErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("unblocks off", func(t *testing.T) {
		_, hs := startServer(t, ServerConfig{})
		c := newTestClient(t, ClientConfig{URL: hs.URL})
		_, err := c.PendingUnblocks(ctx, "web-1")
		assert.ErrorIs(t, err, ErrUnblocksOff)
		var se *StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, http.StatusNotFound, se.StatusCode)
		assert.ErrorIs(t, c.AckUnblocks(ctx, []UnblockAck{{ID: "x"}}), ErrUnblocksOff)
	})
	t.Run("wrong key", func(t *testing.T) {
		_, hs := startServer(t, ServerConfig{Unblocks: NewUnblocks(UnblocksConfig{})})
		c := newTestClient(t, ClientConfig{URL: hs.URL, APIKey: "wrong"})
		_, err := c.PendingUnblocks(ctx, "web-1")
		var se *StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, http.StatusUnauthorized, se.StatusCode)
		assert.Equal(t, "dashboardapi: pending unblocks: 401 Unauthorized: wrong API key", err.Error())
		err = c.AckUnblocks(ctx, []UnblockAck{{ID: "x"}})
		require.ErrorAs(t, err, &se)
		assert.NotErrorIs(t, err, ErrUnblocksOff)
	})
	t.Run("no hostname", func(t *testing.T) {
		c := newTestClient(t, ClientConfig{URL: "http://127.0.0.1:1"})
		_, err := c.PendingUnblocks(ctx, "")
		assert.ErrorContains(t, err, "hostname is empty")
	})
	t.Run("unreachable", func(t *testing.T) {
		hs := httptest.NewServer(http.NotFoundHandler())
		url := hs.URL
		hs.Close()
		c := newTestClient(t, ClientConfig{URL: url})
		_, err := c.PendingUnblocks(ctx, "web-1")
		require.Error(t, err)
		var se *StatusError
		assert.NotErrorAs(t, err, &se)
	})
	t.Run("timeout", func(t *testing.T) {
		stuck := make(chan struct{})
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-stuck:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(hs.Close)
		t.Cleanup(func() { close(stuck) })
		c := newTestClient(t, ClientConfig{URL: hs.URL, Timeout: 50 * time.Millisecond})
		_, err := c.PendingUnblocks(ctx, "web-1")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("not JSON", func(t *testing.T) {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("<html>hello</html>"))
		}))
		t.Cleanup(hs.Close)
		c := newTestClient(t, ClientConfig{URL: hs.URL})
		_, err := c.PendingUnblocks(ctx, "web-1")
		assert.ErrorContains(t, err, "reading the answer")
	})
}
