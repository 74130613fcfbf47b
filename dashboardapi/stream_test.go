package dashboardapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/events"
)

// wait bounds every wait of these tests for something that should happen
// at once.
const wait = 10 * time.Second

// sseMessage is one dispatched message, or a comment.
type sseMessage struct {
	ID, Event, Data, Retry, Comment string
}

// sseClient reads a stream in a goroutine and hands over each message.
type sseClient struct {
	resp *http.Response
	msgs chan sseMessage
}

func openStream(t *testing.T, url string, hdr ...string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	c := &sseClient{resp: resp, msgs: make(chan sseMessage, 100_000)}
	go c.read()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	return c
}

func (c *sseClient) read() {
	defer close(c.msgs)
	sc := bufio.NewScanner(c.resp.Body)
	var m sseMessage
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if m != (sseMessage{}) {
				c.msgs <- m
			}
			m = sseMessage{}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			c.msgs <- sseMessage{Comment: value}
		case "id":
			m.ID = value
		case "event":
			m.Event = value
		case "data":
			m.Data = value
		case "retry":
			m.Retry = value
		}
	}
}

// next returns the next message that is not a comment.
func (c *sseClient) next(t *testing.T) sseMessage {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-c.msgs:
			require.True(t, ok, "stream ended")
			if m.Comment != "" {
				continue
			}
			return m
		case <-timer.C:
			require.FailNow(t, "no message in time")
		}
	}
}

// record reads the next message as an event record.
func (c *sseClient) record(t *testing.T) Record {
	t.Helper()
	m := c.next(t)
	require.Empty(t, m.Event, "a record, not %q", m.Event)
	var r Record
	require.NoError(t, json.Unmarshal([]byte(m.Data), &r))
	assert.Equal(t, strconv.FormatUint(r.ID, 10), m.ID)
	return r
}

// ended waits for the stream to end.
func (c *sseClient) ended(t *testing.T) {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-c.msgs:
			if !ok {
				return
			}
		case <-timer.C:
			require.FailNow(t, "stream did not end")
		}
	}
}

func startServer(t *testing.T, cfg ServerConfig) (*Server, *httptest.Server) {
	t.Helper()
	s := newTestServer(t, cfg)
	hs := httptest.NewUnstartedServer(s)
	hs.Config.RegisterOnShutdown(s.Close)
	hs.Start()
	t.Cleanup(hs.Close)
	t.Cleanup(s.Close) // before hs.Close, which waits for the streams
	return s, hs
}

func post(t *testing.T, base string, evs ...events.Event) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/logs", strings.NewReader(ingestBody(t, evs...)))
	require.NoError(t, err)
	req.Header.Set(APIKeyHeader, testKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestStreamLive(t *testing.T) {
	s, hs := startServer(t, ServerConfig{SSERetry: 1500 * time.Millisecond})
	seed(t, s, 3) // before the stream: not sent without a resume point
	c := openStream(t, hs.URL+"/api/v1/events")
	assert.Equal(t, "1500", c.next(t).Retry)

	post(t, hs.URL, ev(4, events.Blocked, events.HTTPS), ev(5, events.Allowed, events.DNS))
	r := c.record(t)
	assert.Equal(t, uint64(4), r.ID)
	assert.Equal(t, ev(4, events.Blocked, events.HTTPS), r.Event)
	assert.Equal(t, uint64(5), c.record(t).ID)
	assert.Equal(t, int64(1), s.Stats().Streams, "one client connected")
}

func TestStreamResume(t *testing.T) {
	for _, how := range []string{"header", "parameter"} {
		t.Run(how, func(t *testing.T) {
			s, hs := startServer(t, ServerConfig{})
			seed(t, s, 1200) // more than one chunk after the resume point
			var c *sseClient
			if how == "header" {
				c = openStream(t, hs.URL+"/api/v1/events", "Last-Event-ID", "3")
			} else {
				c = openStream(t, hs.URL+"/api/v1/events?last_event_id=3")
			}
			c.next(t) // retry
			for want := uint64(4); want <= 1200; want++ {
				require.Equal(t, want, c.record(t).ID)
			}
			post(t, hs.URL, ev(1201, events.Blocked, events.HTTPS))
			assert.Equal(t, uint64(1201), c.record(t).ID)
		})
	}
}

// TestStreamReconnectNoGap reconnects with the last ID seen while events
// keep arriving, and checks that every event is seen exactly once.
func TestStreamReconnectNoGap(t *testing.T) {
	_, hs := startServer(t, ServerConfig{})
	c := openStream(t, hs.URL+"/api/v1/events?last_event_id=0")
	c.next(t)
	var got []uint64
	n := 0
	postN := func(k int) {
		var evs []events.Event
		for range k {
			n++
			evs = append(evs, ev(n, events.Blocked, events.HTTPS))
		}
		post(t, hs.URL, evs...)
	}
	postN(10)
	for range 10 {
		got = append(got, c.record(t).ID)
	}
	c.resp.Body.Close() // the connection drops
	postN(7)            // while it is down
	c = openStream(t, hs.URL+"/api/v1/events", "Last-Event-ID", strconv.FormatUint(got[len(got)-1], 10))
	c.next(t)
	postN(5)
	for range 12 {
		got = append(got, c.record(t).ID)
	}
	for i, id := range got {
		assert.Equal(t, uint64(i+1), id)
	}
}

func TestStreamHeartbeat(t *testing.T) {
	_, hs := startServer(t, ServerConfig{Heartbeat: 10 * time.Millisecond})
	c := openStream(t, hs.URL+"/api/v1/events")
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case m := <-c.msgs:
			if m.Comment == "ping" {
				return
			}
		case <-timer.C:
			t.Fatal("no heartbeat")
		}
	}
}

func TestStreamClearAndReset(t *testing.T) {
	s, hs := startServer(t, ServerConfig{})
	seed(t, s, 2)
	c := openStream(t, hs.URL+"/api/v1/events?last_event_id=2")
	c.next(t)
	req, _ := http.NewRequest(http.MethodDelete, hs.URL+"/api/v1/logs", nil)
	req.Header.Set(CSRFHeader, noneToken(s))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	m := c.next(t)
	assert.Equal(t, "clear", m.Event)
	assert.JSONEq(t, `{"last_id":2}`, m.Data)
	post(t, hs.URL, ev(3, events.Blocked, events.HTTPS))
	assert.Equal(t, uint64(3), c.record(t).ID, "IDs go on after a clear")

	// A client that saw IDs beyond the store's (a restarted memory store)
	// is told to start again, and gets everything there is.
	c2 := openStream(t, hs.URL+"/api/v1/events", "Last-Event-ID", "999")
	c2.next(t)
	assert.Equal(t, "reset", c2.next(t).Event)
	assert.Equal(t, uint64(3), c2.record(t).ID)
}

func TestStreamFilters(t *testing.T) {
	_, hs := startServer(t, ServerConfig{})
	c := openStream(t, hs.URL+"/api/v1/events?action=blocked&q=n2")
	c.next(t)
	post(t, hs.URL, ev(1, events.Blocked, events.HTTPS), ev(2, events.Allowed, events.HTTPS),
		ev(20, events.Blocked, events.DNS), ev(21, events.Blocked, events.DNS))
	assert.Equal(t, "n20.example", c.record(t).Event.Name)
	assert.Equal(t, "n21.example", c.record(t).Event.Name)
}

// TestStreamSlowClient checks that a client that does not read holds up
// neither ingest nor the other streams, and still gets every event in the
// end.
func TestStreamSlowClient(t *testing.T) {
	_, hs := startServer(t, ServerConfig{Store: NewMemoryStore(50_000)})
	// The slow client: a raw connection that is never read until the end.
	slowReq, _ := http.NewRequest(http.MethodGet, hs.URL+"/api/v1/events?last_event_id=0", nil)
	slow, err := http.DefaultClient.Do(slowReq)
	require.NoError(t, err)
	defer slow.Body.Close()
	fast := openStream(t, hs.URL+"/api/v1/events?last_event_id=0")
	fast.next(t)

	const batches, per = 10, 500 // about 6 MB of stream, more than socket buffers hold
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range batches {
			var evs []events.Event
			for i := range per {
				e := ev(b*per+i, events.Blocked, events.HTTPS)
				e.Detail = strings.Repeat("x", 1000)
				evs = append(evs, e)
			}
			post(t, hs.URL, evs...)
		}
	}()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("ingest was held up")
	}
	for want := uint64(1); want <= batches*per; want++ {
		require.Equal(t, want, fast.record(t).ID)
	}
	// The slow one catches up once it reads.
	sc := bufio.NewScanner(slow.Body)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	next := uint64(1)
	for next <= batches*per && sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
			require.Equal(t, fmt.Sprint(next), id)
			next++
		}
	}
	assert.Equal(t, uint64(batches*per+1), next)
}

func TestStreamEndsOnClose(t *testing.T) {
	s, hs := startServer(t, ServerConfig{})
	c := openStream(t, hs.URL+"/api/v1/events")
	c.next(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	// Shutdown runs Close (RegisterOnShutdown), which ends the stream; it
	// would otherwise wait for ever.
	require.NoError(t, hs.Config.Shutdown(ctx))
	c.ended(t)
	_ = s
}

// TestStreamOutlivesServerTimeouts runs a stream on a server with short
// read and write timeouts, meant for ordinary answers, and checks that it
// still carries heartbeats and events well after them.
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	s := newTestServer(t, ServerConfig{Heartbeat: 20 * time.Millisecond})
	hs := httptest.NewUnstartedServer(s)
	hs.Config.ReadTimeout = 100 * time.Millisecond
	hs.Config.WriteTimeout = 100 * time.Millisecond
	hs.Config.RegisterOnShutdown(s.Close)
	hs.Start()
	defer hs.Close()
	defer s.Close()

	c := openStream(t, hs.URL+"/api/v1/events")
	start := time.Now()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for time.Since(start) < 400*time.Millisecond { // several timeouts long
		select {
		case m, ok := <-c.msgs:
			require.True(t, ok, "the stream ended after %v", time.Since(start))
			_ = m
		case <-timer.C:
			t.Fatal("no heartbeats")
		}
	}
	post(t, hs.URL, ev(1, events.Blocked, events.HTTPS))
	assert.Equal(t, uint64(1), c.record(t).ID)
}
