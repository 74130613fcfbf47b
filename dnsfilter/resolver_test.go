package dnsfilter_test

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/g0lab/g0efilter/dnsfilter"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clock is a fake clock for Resolver.Now. It counts its calls: each
// LookupNetIP reads it once, under the Resolver's lock, before it looks at
// the cache or joins a lookup in flight.
type clock struct {
	mu     sync.Mutex
	now    time.Time
	calls  int
	onCall func(calls int)
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.onCall != nil {
		c.onCall(c.calls)
	}
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func ips(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func newResolver(up *fakeUpstream, c *clock) *dnsfilter.Resolver {
	return &dnsfilter.Resolver{
		Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{up.Addr}},
		Now:      c.Now,
	}
}

func TestResolverCaches(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0",
		"example.com. 60 IN AAAA 2001:db8::1",
		"example.com. 60 IN A 192.0.2.1",
		"example.com. 60 IN AAAA ::ffff:192.0.2.2",
	)
	c := newClock()
	r := newResolver(up, c)
	ctx := context.Background()

	got, err := r.LookupNetIP(ctx, "example.com")
	require.NoError(t, err)
	assert.Equal(t, ips("192.0.2.1", "192.0.2.2", "2001:db8::1"), got, "sorted, unmapped")
	s := up.seen()
	require.Len(t, s, 2)
	assert.ElementsMatch(t, []uint16{dns.TypeA, dns.TypeAAAA}, []uint16{s[0].qtype, s[1].qtype})

	// Cached, whatever the case or trailing dot.
	c.advance(59 * time.Second)
	got, err = r.LookupNetIP(ctx, "EXAMPLE.com.")
	require.NoError(t, err)
	assert.Equal(t, ips("192.0.2.1", "192.0.2.2", "2001:db8::1"), got)
	assert.Len(t, up.seen(), 2, "answered from the cache")

	// Expired: asked again.
	c.advance(2 * time.Second)
	_, err = r.LookupNetIP(ctx, "example.com")
	require.NoError(t, err)
	assert.Len(t, up.seen(), 4)
}

func TestResolverTTLBounds(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0",
		"short.example. 1 IN A 192.0.2.1",
		"long.example. 86400 IN A 192.0.2.2",
	)
	for _, tc := range []struct {
		name         string
		r            func(*dnsfilter.Resolver)
		host         string
		cached, gone time.Duration
	}{
		{"default floor", func(*dnsfilter.Resolver) {}, "short.example", 4 * time.Second, 6 * time.Second},
		{"default cap", func(*dnsfilter.Resolver) {}, "long.example", 59 * time.Minute, 61 * time.Minute},
		{"MinTTL", func(r *dnsfilter.Resolver) { r.MinTTL = time.Minute }, "short.example", 59 * time.Second, 61 * time.Second},
		{"MaxTTL", func(r *dnsfilter.Resolver) { r.MaxTTL = 10 * time.Second }, "long.example", 9 * time.Second, 11 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			r := newResolver(up, c)
			tc.r(r)
			ctx := context.Background()
			_, err := r.LookupNetIP(ctx, tc.host)
			require.NoError(t, err)
			n := len(up.seen())
			c.advance(tc.cached)
			_, err = r.LookupNetIP(ctx, tc.host)
			require.NoError(t, err)
			assert.Len(t, up.seen(), n, "cached")
			c.advance(tc.gone - tc.cached)
			_, err = r.LookupNetIP(ctx, tc.host)
			require.NoError(t, err)
			assert.Len(t, up.seen(), n+2, "asked again")
		})
	}
}

// A CDN rotates its answers: addresses of earlier answers stay for Grace
// after those answers expire.
func TestResolverGrace(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grace time.Duration
		at61  []netip.Addr
	}{
		{"union", 100 * time.Second, ips("192.0.2.1", "192.0.2.2")},
		{"none", -1, ips("192.0.2.2")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := startUpstream(t, "127.0.0.1:0", "cdn.example. 60 IN A 192.0.2.1")
			c := newClock()
			r := newResolver(up, c)
			r.Grace = tc.grace
			ctx := context.Background()

			got, err := r.LookupNetIP(ctx, "cdn.example")
			require.NoError(t, err)
			assert.Equal(t, ips("192.0.2.1"), got)

			up.set(t, "cdn.example. 60 IN A 192.0.2.2")
			c.advance(61 * time.Second)
			got, err = r.LookupNetIP(ctx, "cdn.example")
			require.NoError(t, err)
			assert.Equal(t, tc.at61, got)
			assert.Len(t, up.seen(), 4)

			// 192.0.2.1 expired at 60s: with a grace of 100s it is gone
			// at 160s. 192.0.2.2 is in the live answer.
			c.advance(100 * time.Second)
			got, err = r.LookupNetIP(ctx, "cdn.example")
			require.NoError(t, err)
			assert.Equal(t, ips("192.0.2.2"), got)
		})
	}
}

func TestResolverDefaultGrace(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", "cdn.example. 60 IN A 192.0.2.1")
	c := newClock()
	r := newResolver(up, c)
	ctx := context.Background()
	_, err := r.LookupNetIP(ctx, "cdn.example")
	require.NoError(t, err)
	up.set(t, "cdn.example. 60 IN A 192.0.2.2")

	c.advance(60*time.Second + 5*time.Minute - time.Second)
	got, err := r.LookupNetIP(ctx, "cdn.example")
	require.NoError(t, err)
	assert.Equal(t, ips("192.0.2.1", "192.0.2.2"), got, "within 5 minutes of expiry")

	c.advance(2 * time.Second)
	got, err = r.LookupNetIP(ctx, "cdn.example")
	require.NoError(t, err)
	assert.Equal(t, ips("192.0.2.2"), got)
}

func TestResolverNotFound(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", "txt.example. 60 IN TXT \"no addresses\"")
	c := newClock()
	r := newResolver(up, c)
	ctx := context.Background()

	got, err := r.LookupNetIP(ctx, "nope.example")
	require.ErrorIs(t, err, dnsfilter.ErrNotFound)
	assert.Empty(t, got)
	assert.Len(t, up.seen(), 2)

	// Negative answers are cached for the SOA's negative TTL (30s here).
	c.advance(29 * time.Second)
	_, err = r.LookupNetIP(ctx, "nope.example")
	require.ErrorIs(t, err, dnsfilter.ErrNotFound)
	assert.Len(t, up.seen(), 2)
	c.advance(2 * time.Second)
	_, err = r.LookupNetIP(ctx, "nope.example")
	require.ErrorIs(t, err, dnsfilter.ErrNotFound)
	assert.Len(t, up.seen(), 4)

	// A name without A or AAAA records.
	_, err = r.LookupNetIP(ctx, "txt.example")
	require.ErrorIs(t, err, dnsfilter.ErrNotFound)
}

func TestResolverInvalidName(t *testing.T) {
	r := &dnsfilter.Resolver{}
	for _, host := range []string{"", ".", "192.0.2.1", "2001:db8::1", "a..b", "a\x00b.example", "a b.example", `a\.b.example`, "*.example", strings.Repeat("a", 64) + ".example"} {
		_, err := r.LookupNetIP(context.Background(), host)
		assert.ErrorIs(t, err, dnsfilter.ErrInvalidName, "%q", host)
	}
}

func TestResolverUpstreamFailure(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", "example.com. 60 IN A 192.0.2.1")
	up.setRcode(dns.RcodeServerFailure)
	c := newClock()
	r := newResolver(up, c)
	ctx := context.Background()

	_, err := r.LookupNetIP(ctx, "example.com")
	require.ErrorIs(t, err, dnsfilter.ErrUpstream)
	assert.NotErrorIs(t, err, dnsfilter.ErrNotFound)
	_, err = r.LookupNetIP(ctx, "example.com")
	require.ErrorIs(t, err, dnsfilter.ErrUpstream)
	assert.Len(t, up.seen(), 4, "failures are not cached")

	// Recovered: answered.
	up.setRcode(0)
	got, err := r.LookupNetIP(ctx, "example.com")
	require.NoError(t, err)
	assert.Equal(t, ips("192.0.2.1"), got)

	_, err = new(dnsfilter.Resolver).LookupNetIP(ctx, "example.com")
	require.ErrorIs(t, err, dnsfilter.ErrNoUpstream)
}

// When only the AAAA query fails, the A answer is used, for MinTTL.
func TestResolverPartialFailure(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", "example.com. 600 IN A 192.0.2.1")
	up.setModify(func(m *dns.Msg) *dns.Msg {
		if m.Question[0].Qtype == dns.TypeAAAA {
			m.Rcode = dns.RcodeServerFailure
		}
		return m
	})
	c := newClock()
	r := newResolver(up, c)
	got, err := r.LookupNetIP(context.Background(), "example.com")
	require.NoError(t, err)
	assert.Equal(t, ips("192.0.2.1"), got)

	c.advance(6 * time.Second)
	got, err = r.LookupNetIP(context.Background(), "example.com")
	require.NoError(t, err)
	assert.Equal(t, ips("192.0.2.1"), got)
	assert.Len(t, up.seen(), 4, "asked again after MinTTL")
}

func TestResolverEvictsLeastRecentlyUsed(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0",
		"a.example. 600 IN A 192.0.2.1",
		"b.example. 600 IN A 192.0.2.2",
		"c.example. 600 IN A 192.0.2.3",
	)
	r := newResolver(up, newClock())
	r.MaxNames = 2
	ctx := context.Background()
	lookup := func(host string) int {
		t.Helper()
		_, err := r.LookupNetIP(ctx, host)
		require.NoError(t, err)
		return len(up.seen())
	}
	lookup("a.example")
	lookup("b.example")
	n := lookup("a.example") // a is now the most recently used
	assert.Equal(t, 4, n)
	lookup("c.example") // evicts b
	assert.Equal(t, 6, lookup("a.example"), "a still cached")
	assert.Equal(t, 8, lookup("b.example"), "b was evicted")
}

// Concurrent lookups of a name share one query.
func TestResolverSharesLookups(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", "example.com. 60 IN A 192.0.2.1")
	release := up.holdQueries(t)
	const n = 20
	allIn := make(chan struct{})
	c := newClock()
	c.onCall = func(calls int) {
		if calls == n {
			close(allIn)
		}
	}
	r := newResolver(up, c)

	results := make(chan []netip.Addr, n)
	errs := make(chan error, n)
	for range n {
		go func() {
			got, err := r.LookupNetIP(context.Background(), "example.com")
			results <- got
			errs <- err
		}()
	}
	// Every lookup has read the clock, and so joined the one in flight:
	// that one cannot finish before the upstream answers.
	select {
	case <-allIn:
	case <-time.After(10 * time.Second):
		t.Fatal("lookups did not start")
	}
	release()
	for range n {
		require.NoError(t, <-errs)
		assert.Equal(t, ips("192.0.2.1"), <-results)
	}
	assert.Len(t, up.seen(), 2, "one A and one AAAA query for all")
}

// A caller whose context ends stops waiting; the lookup goes on for the
// cache.
func TestResolverCallerGivesUp(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0", "example.com. 60 IN A 192.0.2.1")
	release := up.holdQueries(t)
	joined := make(chan struct{})
	c := newClock()
	c.onCall = func(calls int) {
		if calls == 1 {
			close(joined)
		}
	}
	r := newResolver(up, c)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := r.LookupNetIP(ctx, "example.com")
		errc <- err
	}()
	<-joined
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)

	release()
	got, err := r.LookupNetIP(context.Background(), "example.com")
	require.NoError(t, err)
	assert.Equal(t, ips("192.0.2.1"), got)
	assert.Len(t, up.seen(), 2, "the second caller got the first lookup's answer")
}
