package dashboardapi

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// rateLimiter keeps a token bucket per client and forgets the clients that
// have been quiet long enough for their bucket to be full again.
type rateLimiter struct {
	rps   rate.Limit
	burst int
	idle  time.Duration // a bucket unused this long is full: forget it

	mu        sync.Mutex
	clients   map[string]*clientLimit
	lastSweep time.Time
}

type clientLimit struct {
	lim  *rate.Limiter
	seen time.Time
}

func newRateLimiter(rps float64, burst int) *rateLimiter {
	idle := time.Duration(float64(burst)/rps*float64(time.Second)) + time.Minute
	return &rateLimiter{
		rps:     rate.Limit(rps),
		burst:   burst,
		idle:    idle,
		clients: make(map[string]*clientLimit),
	}
}

// allow takes a token for key, or reports how long until one is there.
func (l *rateLimiter) allow(key string, now time.Time) (time.Duration, bool) {
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
		c = &clientLimit{lim: rate.NewLimiter(l.rps, l.burst)}
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

// clientKey is the client's IP address, without the port.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// wait reports how long until key has a token, without taking one: zero
// if it has one now.
func (l *rateLimiter) wait(key string, now time.Time) time.Duration {
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
