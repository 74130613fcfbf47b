package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/internal/e2e"
)

// gotifyServer speaks Gotify's message API (POST /message with the
// application token in X-Gotify-Key) in the upstream namespace.
type gotifyServer struct {
	mu       sync.Mutex
	messages []map[string]any
	got      chan struct{}
}

func startGotify(t *testing.T, env *e2e.Env, token string) (*gotifyServer, string) {
	g := &gotifyServer{got: make(chan struct{}, 100)}
	ln := env.Listen("tcp4", ":8070")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/message" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("X-Gotify-Key") != token {
			http.Error(w, `{"error":"Unauthorized"}`, http.StatusUnauthorized)
			return
		}
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		g.mu.Lock()
		g.messages = append(g.messages, m)
		g.mu.Unlock()
		g.got <- struct{}{}
		fmt.Fprint(w, `{"id":1}`)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return g, "http://" + netip.AddrPortFrom(e2e.Upstream4[0], 8070).String()
}

func (g *gotifyServer) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.messages)
}

// TestEventsEndToEnd checks that a direct-IP attempt (decided in the
// kernel, read through nflog) and an SNI block (decided by the proxy) each
// give exactly one event in LOG_FILE, and that repeated blocks of one name
// within the backoff give one Gotify message.
func TestEventsEndToEnd(t *testing.T) {
	env := e2e.New(t)
	env.WebServers("blocked.example")
	env.DNSServer(map[string][]netip.Addr{"blocked.example": {fams[0].dest}})
	env.Echo("tcp", ":7000")
	gotify, url := startGotify(t, env, "app-token")
	pe := &proxyEnv{Env: env}
	pe.events = t.TempDir() + "/events.jsonl"
	pe.filter = env.StartFilter(t, "allowlist:\n  domains: [\"allowed.example\"]\n", map[string]string{
		"DNS_UPSTREAMS":                e2e.Upstream4[0].String(),
		"LOG_FILE":                     pe.events,
		"NOTIFICATION_HOST":            url,
		"NOTIFICATION_KEY":             "app-token",
		"NOTIFICATION_BACKOFF_SECONDS": "60",
	})
	pe.filter.WaitForOutput("proxies listening")

	// A direct connection to an address that is not allowlisted.
	direct := netip.AddrPortFrom(e2e.Upstream4[2], 7000)
	_, err := env.Dial("tcp4", direct.String(), 2*time.Second)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	// Three HTTPS attempts for a name that is not allowlisted.
	for range 3 {
		_, err := pe.get(fams[0].dest, "https://blocked.example/")
		require.Error(t, err)
	}

	deadline := time.Now().Add(5 * time.Second)
	var kernel, proxy []events.Event
	for len(kernel) < 1 || len(proxy) < 3 {
		require.True(t, time.Now().Before(deadline), "kernel events %+v, proxy events %+v", kernel, proxy)
		time.Sleep(50 * time.Millisecond)
		kernel, proxy = nil, nil
		for _, e := range pe.readEvents(t) {
			switch {
			case e.Component == events.Kernel && e.Destination == direct:
				kernel = append(kernel, e)
			case e.Name == "blocked.example":
				proxy = append(proxy, e)
			}
		}
	}
	require.Len(t, kernel, 1, "one event for one refused connection")
	k := kernel[0]
	assert.Equal(t, events.Blocked, k.Action)
	assert.Equal(t, events.ReasonNotAllowlisted, k.Reason)
	assert.Equal(t, "tcp", k.Protocol)
	assert.Equal(t, e2e.Box4, k.Source.Addr())
	assert.Equal(t, "e2e", k.Host)

	require.Len(t, proxy, 3, "one event per attempt, none from the kernel for redirected connections")
	for _, e := range proxy {
		assert.Equal(t, events.HTTPS, e.Component)
		assert.Equal(t, events.Blocked, e.Action)
		assert.Equal(t, events.ReasonNotAllowlisted, e.Reason)
		assert.Equal(t, netip.AddrPortFrom(fams[0].dest, 443), e.Destination)
		assert.Equal(t, e2e.Box4, e.Source.Addr())
	}

	// Gotify: one message for blocked.example, one for the direct address.
	deadline = time.Now().Add(10 * time.Second)
	for gotify.count() < 2 {
		select {
		case <-gotify.got:
		case <-time.After(time.Until(deadline)):
			t.Fatalf("got %d Gotify messages, want 2", gotify.count())
		}
	}
	// Nothing more comes within the backoff: stop the filter, which sends
	// what is queued, and count again.
	assert.Equal(t, 0, pe.filter.Stop())
	gotify.mu.Lock()
	defer gotify.mu.Unlock()
	require.Len(t, gotify.messages, 2, "repeated blocks within the backoff give one message per target")
	var titles []string
	for _, m := range gotify.messages {
		titles = append(titles, fmt.Sprint(m["title"]))
	}
	assert.Contains(t, fmt.Sprint(titles), "blocked.example")
	assert.Contains(t, fmt.Sprint(titles), e2e.Upstream4[2].String())
}
