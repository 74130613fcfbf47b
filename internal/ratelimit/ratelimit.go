// Package ratelimit keeps a token bucket per client (an address, a user
// name) and forgets the clients that have been quiet long enough for their
// bucket to be full again, so that its memory follows the clients active
// now, not all the clients ever seen.
//
//	l := ratelimit.New[string](100, 200) // 100 a second, bursts of 200, per key
//	if wait, ok := l.Allow(key, time.Now()); !ok {
//		return fmt.Errorf("too many: try again in %v", wait)
//	}
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a token bucket per key of type K (a name, a netip.Addr). It
// is safe for concurrent use.
type Limiter[K comparable] struct {
	rps   rate.Limit
	burst int
	idle  time.Duration // a bucket unused this long is full: forget it

	mu        sync.Mutex
	clients   map[K]*client
	lastSweep time.Time
}

type client struct {
	lim  *rate.Limiter
	seen time.Time
}

// New returns a Limiter that lets each key take rps tokens a second, in
// bursts of up to burst.
func New[K comparable](rps float64, burst int) *Limiter[K] {
	idle := time.Duration(float64(burst)/rps*float64(time.Second)) + time.Minute
	return &Limiter[K]{
		rps:     rate.Limit(rps),
		burst:   burst,
		idle:    idle,
		clients: make(map[K]*client),
	}
}

// Allow takes a token for key, or reports how long until one is there.
func (l *Limiter[K]) Allow(key K, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > l.idle {
		for k, c := range l.clients {
			if now.Sub(c.seen) > l.idle {
				delete(l.clients, k)
			}
		}
		l.lastSweep = now
	}
	c := l.clients[key]
	if c == nil {
		c = &client{lim: rate.NewLimiter(l.rps, l.burst)}
		l.clients[key] = c
	}
	c.seen = now
	if c.lim.AllowN(now, 1) {
		return 0, true
	}
	r := c.lim.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	return wait, false
}

// Wait reports how long until key has a token, without taking one: zero
// if it has one now.
func (l *Limiter[K]) Wait(key K, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients[key]
	if c == nil || c.lim.TokensAt(now) >= 1 {
		return 0
	}
	r := c.lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return d
}

// keys is the number of keys remembered, for tests.
func (l *Limiter[K]) keys() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}
