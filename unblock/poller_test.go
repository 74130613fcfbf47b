package unblock_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/dashboardapi"
	"github.com/g0lab/g0efilter/policy"
	"github.com/g0lab/g0efilter/unblock"
)

// queue is a Source that serves a fixed list of pending requests until
// they are acknowledged, and records the acknowledgements.
type queue struct {
	mu      sync.Mutex
	pending []dashboardapi.UnblockRequest
	acks    []dashboardapi.UnblockAck
	down    bool // fail every call
	loseAck bool // take the next ack but keep the requests pending
	polls   int
}

func (q *queue) PendingUnblocks(_ context.Context, host string) ([]dashboardapi.UnblockRequest, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.polls++
	if q.down {
		return nil, errors.New("connection refused")
	}
	var out []dashboardapi.UnblockRequest
	for _, r := range q.pending {
		if r.Hostname == host {
			out = append(out, r)
		}
	}
	return out, nil
}

func (q *queue) AckUnblocks(_ context.Context, acks []dashboardapi.UnblockAck) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.down {
		return errors.New("connection refused")
	}
	q.acks = append(q.acks, acks...)
	if q.loseAck {
		q.loseAck = false
		return errors.New("connection reset")
	}
	done := map[string]bool{}
	for _, a := range acks {
		done[a.ID] = true
	}
	var keep []dashboardapi.UnblockRequest
	for _, r := range q.pending {
		if !done[r.ID] {
			keep = append(keep, r)
		}
	}
	q.pending = keep
	return nil
}

const original = `# Egress for the build job.
allowlist:
  ips:
    - "198.51.100.1"   # the package mirror
  domains:
    # code hosting
    - "github.com"
`

func policyFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte(original), 0o644))
	return path
}

func req(id, kind, target string) dashboardapi.UnblockRequest {
	return dashboardapi.UnblockRequest{ID: id, Hostname: "web-1", Kind: kind, Target: target, State: "pending"}
}

func TestPollAppliesAndAcknowledges(t *testing.T) {
	path := policyFile(t)
	q := &queue{pending: []dashboardapi.UnblockRequest{
		req("1", "domain", "*.example.org"),
		req("2", "ip", "203.0.113.0/24"),
		req("3", "domain", "github.com"), // already there: applied, unchanged
		req("4", "domain", "bad..name"),
		{ID: "5", Hostname: "other", Kind: "domain", Target: "x.example"}, // not ours: not served
		// Entries with protocols and ports, as the Observed view asks.
		req("6", "ip", "tcp/198.51.100.7:5432"),
		req("7", "domain", "tcp/db.example.net:5432"),
		req("8", "domain", "api.example.org:8443"),
	}}
	p := &unblock.Poller{Source: q, Hostname: "web-1", Policy: &policy.Editor{Path: path}}
	require.NoError(t, p.Poll(context.Background()))

	require.Len(t, q.acks, 7)
	byID := map[string]dashboardapi.UnblockAck{}
	for _, a := range q.acks {
		byID[a.ID] = a
	}
	assert.True(t, byID["1"].Applied)
	assert.True(t, byID["2"].Applied)
	assert.True(t, byID["3"].Applied, "an entry already present counts as applied")
	assert.False(t, byID["4"].Applied)
	assert.Contains(t, byID["4"].Error, "bad..name")

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	got := string(b)
	assert.Contains(t, got, "# Egress for the build job.", "comments are kept")
	assert.Contains(t, got, "# the package mirror")
	assert.Contains(t, got, "# code hosting")
	p2, err := policy.Parse(path, b)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"github.com", "*.example.org"}, p2.Domains)
	assert.Len(t, p2.IPs, 2)
	for _, id := range []string{"6", "7", "8"} {
		assert.True(t, byID[id].Applied, "%s: %s", id, byID[id].Error)
	}
	var addrs, names []string
	for _, r := range p2.AddrPorts {
		addrs = append(addrs, r.String())
	}
	for _, r := range p2.NamePorts {
		names = append(names, r.String())
	}
	assert.Equal(t, []string{"tcp/198.51.100.7:5432"}, addrs)
	assert.ElementsMatch(t, []string{"tcp/db.example.net:5432", "api.example.org:8443"}, names)
}

// The filter checks a request again: a dashboard that lets "*", a
// wildcard over a public suffix or a too-wide prefix through (compromised,
// or an older version) does not get it applied.
func TestPollRefusesWhatTheDashboardWould(t *testing.T) {
	path := policyFile(t)
	q := &queue{pending: []dashboardapi.UnblockRequest{
		req("1", "domain", "*"),
		req("2", "domain", "*.com"),
		req("3", "domain", "*.github.io"),
		req("4", "ip", "0.0.0.0/0"),
		req("5", "ip", "10.0.0.0/7"),
		req("6", "ip", "::/0"),
		req("7", "domain", "203.0.113.7"), // the kind disagrees with the target
		req("8", "ip", "10.0.0.0/8"),      // the widest allowed by default
	}}
	p := &unblock.Poller{Source: q, Hostname: "web-1", Policy: &policy.Editor{Path: path}}
	require.NoError(t, p.Poll(context.Background()))
	require.Len(t, q.acks, 8)
	for _, a := range q.acks {
		if a.ID == "8" {
			assert.True(t, a.Applied, "%+v", a)
			continue
		}
		assert.False(t, a.Applied, "request %s: %+v", a.ID, a)
		assert.Contains(t, a.Error, "refused by this filter", "request %s", a.ID)
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	p2, err := policy.Parse(path, b)
	require.NoError(t, err)
	assert.Equal(t, []string{"github.com"}, p2.Domains, "no domain added")
	assert.Len(t, p2.IPs, 2, "only 10.0.0.0/8 added")
}

func TestPollLostAckIsNotAppliedTwice(t *testing.T) {
	path := policyFile(t)
	q := &queue{pending: []dashboardapi.UnblockRequest{req("1", "domain", "new.example")}, loseAck: true}
	p := &unblock.Poller{Source: q, Hostname: "web-1", Policy: &countingAdder{Editor: &policy.Editor{Path: path}}}
	require.Error(t, p.Poll(context.Background()), "the first ack is lost")
	require.NoError(t, p.Poll(context.Background()))
	require.Len(t, q.acks, 2)
	assert.Equal(t, q.acks[0], q.acks[1], "the same result is sent again")
	assert.Equal(t, 1, p.Policy.(*countingAdder).calls, "applied once")
	assert.Empty(t, q.pending)
}

type countingAdder struct {
	*policy.Editor
	calls int
}

func (c *countingAdder) AddDomain(d string) (bool, error) {
	c.calls++
	return c.Editor.AddDomain(d)
}

func TestPollWithoutPolicyFile(t *testing.T) {
	q := &queue{pending: []dashboardapi.UnblockRequest{req("1", "domain", "new.example")}}
	p := &unblock.Poller{Source: q, Hostname: "web-1", NoPolicyReason: "the policy comes from ALLOWLIST_DOMAINS"}
	require.NoError(t, p.Poll(context.Background()))
	require.Len(t, q.acks, 1)
	assert.False(t, q.acks[0].Applied)
	assert.Equal(t, "the policy comes from ALLOWLIST_DOMAINS", q.acks[0].Error)
}

func TestRunBacksOffAndRecovers(t *testing.T) {
	path := policyFile(t)
	q := &queue{down: true, pending: []dashboardapi.UnblockRequest{req("1", "domain", "late.example")}}
	p := &unblock.Poller{
		Source: q, Hostname: "web-1", Policy: &policy.Editor{Path: path},
		Interval: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()

	waitFor(t, func() bool { q.mu.Lock(); defer q.mu.Unlock(); return q.polls >= 3 })
	q.mu.Lock()
	q.down = false
	q.mu.Unlock()
	waitFor(t, func() bool { q.mu.Lock(); defer q.mu.Unlock(); return len(q.pending) == 0 })
	cancel()
	require.NoError(t, <-done)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(b), "late.example")
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		require.True(t, time.Now().Before(deadline), "condition not met in time")
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPollerAgainstServer runs the Poller against a real dashboard Server
// and Client over HTTP.
func TestPollerAgainstServer(t *testing.T) {
	u := dashboardapi.NewUnblocks(dashboardapi.UnblocksConfig{})
	srv := dashboardapi.NewServer(dashboardapi.ServerConfig{
		APIKey:   "k3y",
		Unblocks: u,
		// The test reads the status as a viewer; operators' clicks are
		// u.Create below.
		Auth: dashboardapi.AuthConfig{Mode: dashboardapi.AuthNone, NoneRole: dashboardapi.RoleViewer},
	})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	client, err := dashboardapi.NewClient(dashboardapi.ClientConfig{URL: hs.URL, APIKey: "k3y"})
	require.NoError(t, err)
	t.Cleanup(func() { client.Close(context.Background()) })

	create := func(target string) dashboardapi.UnblockRequest {
		r, err := u.Create("web-1", target, "operator")
		require.NoError(t, err)
		return r
	}
	domain := create("new.example")
	ip := create("203.0.113.9")

	path := policyFile(t)
	p := &unblock.Poller{Source: client, Hostname: "web-1", Policy: &policy.Editor{Path: path}}
	require.NoError(t, p.Poll(context.Background()))

	resp, err := http.Get(hs.URL + "/api/v1/unblocks/status?hostname=web-1")
	require.NoError(t, err)
	defer resp.Body.Close()
	var st struct {
		Requests []dashboardapi.UnblockRequest `json:"requests"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	states := map[string]string{}
	for _, r := range st.Requests {
		states[r.ID] = r.State
	}
	assert.Equal(t, dashboardapi.UnblockApplied, states[domain.ID])
	assert.Equal(t, dashboardapi.UnblockApplied, states[ip.ID])

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"new.example"`)
	assert.Contains(t, string(b), `"203.0.113.9"`, "a single address is written as the policy writes it")

	// Nothing is pending any more: another poll changes nothing.
	pending, err := client.PendingUnblocks(context.Background(), "web-1")
	require.NoError(t, err)
	assert.Empty(t, pending)
}
