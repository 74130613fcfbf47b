package dnsfilter

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Defaults of [Resolver]'s fields.
const (
	DefaultMinTTL   = 5 * time.Second
	DefaultMaxTTL   = time.Hour
	DefaultGrace    = 5 * time.Minute
	DefaultMaxNames = 4096
)

// lookupUDPSize is the EDNS0 buffer size a Resolver advertises: the size
// that avoids IP fragmentation on any path (DNS Flag Day 2020).
const lookupUDPSize = 1232

// Resolver looks up the addresses of names through an [Upstream] and
// remembers them, so that a proxy can check that the name a client asked
// for leads to the address it connected to.
//
// A name's answer is cached until its first record expires, TTLs held
// between MinTTL and MaxTTL. An address also stays in the results for
// Grace after the answer it came in expires: CDNs rotate the addresses
// they give out, and the client may have got its answer, from the same
// upstream, a moment before the Resolver got a different one. A lookup
// therefore returns the union of the current answer and every address seen
// in an answer within Grace.
//
// Concurrent lookups of a name that is not cached share one query. The
// cache holds at most MaxNames names and drops the least recently used.
//
// Its zero value has no Upstream and fails every lookup with
// [ErrNoUpstream]. Its fields must not change once it is in use; any
// number of goroutines may call [Resolver.LookupNetIP] at once.
type Resolver struct {
	// Upstream answers the queries; its Mark lets them bypass the
	// filter's redirect.
	Upstream *Upstream

	// Timeout bounds one lookup upstream (the A and AAAA queries, asked
	// together). A caller whose context ends first stops waiting, but
	// the lookup goes on for the others sharing it and for the cache.
	// Zero means 4s.
	Timeout time.Duration

	// MinTTL and MaxTTL bound how long an answer is used before the name
	// is asked again: an answer's TTL below MinTTL counts as MinTTL, above
	// MaxTTL as MaxTTL. A name without addresses is remembered for the
	// negative TTL of its zone (RFC 2308), bounded the same way. Zero
	// means 5s and 1h.
	MinTTL, MaxTTL time.Duration

	// Grace is how long an address stays in the results after the answer
	// it came in expires. Zero means 5 minutes; a negative Grace keeps no
	// address past its TTL.
	Grace time.Duration

	// MaxNames bounds the number of names cached. Zero means 4096.
	MaxNames int

	// Now returns the current time. Nil means [time.Now]; tests set a fake
	// clock.
	Now func() time.Time

	mu      sync.Mutex
	entries map[string]*list.Element // of *entry, by canonical name
	lru     list.List                // least recently used at the front
	calls   map[string]*call         // lookups in flight
}

// entry is what the Resolver knows of one name.
type entry struct {
	name string
	// refresh is when the current answer expires.
	refresh time.Time
	// addrs holds every address kept, with the time it drops out of the
	// results: its answer's expiry plus Grace.
	addrs map[netip.Addr]time.Time
}

// call is a lookup in flight, shared by the callers that wait for it.
type call struct {
	done    chan struct{}
	waiters int          // callers waiting; guarded by Resolver.mu
	addrs   []netip.Addr // the result; read only once done is closed
	err     error
}

// LookupNetIP returns the IPv4 and IPv6 addresses of host, sorted, with
// IPv4-mapped addresses unmapped: those of the current answer and those
// kept for Grace (see [Resolver]). The name is matched without regard to
// case or a trailing dot.
//
// It returns an error wrapping [ErrNotFound] when the name has no
// addresses to give (it does not exist, or has no A or AAAA records, and
// none is kept from earlier answers), [ErrInvalidName] when host is not a
// domain name (an IP address is not one), [ErrUpstream] or
// [ErrNoUpstream] when the lookup fails, and ctx's error when ctx ends
// first. A lookup succeeds when the A or the AAAA query does; when one of
// them fails, the answer is used for MinTTL only.
func (r *Resolver) LookupNetIP(ctx context.Context, host string) ([]netip.Addr, error) {
	name, err := lookupName(host)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	now := r.now()
	if el, ok := r.entries[name]; ok {
		e := el.Value.(*entry)
		if now.Before(e.refresh) {
			r.lru.MoveToBack(el)
			addrs := e.current(now)
			r.mu.Unlock()
			return result(name, addrs)
		}
	}
	c, ok := r.calls[name]
	if !ok {
		c = &call{done: make(chan struct{})}
		if r.calls == nil {
			r.calls = make(map[string]*call)
		}
		r.calls[name] = c
		go r.fetch(context.WithoutCancel(ctx), name, c)
	}
	c.waiters++
	r.mu.Unlock()

	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if c.err != nil {
		return nil, c.err
	}
	return result(name, slices.Clone(c.addrs))
}

// lookupName checks host and returns it in canonical form: lower case,
// with a trailing dot. A valid name has labels of 1 to 63 letters, digits,
// hyphens and underscores, at most 253 bytes without the trailing dot, and
// is not an IP address.
func lookupName(host string) (string, error) {
	if _, err := netip.ParseAddr(host); err == nil {
		return "", fmt.Errorf("%w: %q is an IP address", ErrInvalidName, host)
	}
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if len(name) == 0 || len(name) > 253 {
		return "", fmt.Errorf("%w: %q", ErrInvalidName, host)
	}
	label := 0
	for i := 0; i <= len(name); i++ {
		if i == len(name) || name[i] == '.' {
			if label == 0 || label > 63 {
				return "", fmt.Errorf("%w: %q", ErrInvalidName, host)
			}
			label = 0
			continue
		}
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			label++
		default:
			return "", fmt.Errorf("%w: %q", ErrInvalidName, host)
		}
	}
	return name + ".", nil
}

func result(name string, addrs []netip.Addr) ([]netip.Addr, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, normalize(name))
	}
	return addrs, nil
}

// fetch asks the upstream for the A and AAAA records of name, stores the
// answer and completes c.
func (r *Resolver) fetch(ctx context.Context, name string, c *call) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultQueryTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var a, aaaa answer
	var wg sync.WaitGroup
	wg.Go(func() { a = r.ask(ctx, name, dns.TypeA) })
	aaaa = r.ask(ctx, name, dns.TypeAAAA)
	wg.Wait()

	r.mu.Lock()
	defer r.mu.Unlock()
	defer close(c.done)
	delete(r.calls, name)
	if a.err != nil && aaaa.err != nil {
		c.err = fmt.Errorf("dnsfilter: look up %s: %w", normalize(name), errors.Join(a.err, aaaa.err))
		return
	}
	now := r.now()
	e := r.entry(name)
	// The answer expires with its first address; an answer without any,
	// after its negative TTL; one whose other query failed, after MinTTL
	// at most, so that the failed query is soon asked again.
	ttl, negTTL := time.Duration(-1), time.Duration(-1)
	for _, ans := range []answer{a, aaaa} {
		switch {
		case ans.err != nil:
			ttl = lesser(ttl, r.minTTL())
		case len(ans.addrs) == 0:
			negTTL = lesser(negTTL, r.clamp(ans.negTTL))
		}
		for _, at := range ans.addrs {
			ttl = lesser(ttl, r.clamp(at.TTL))
			until := now.Add(r.clamp(at.TTL) + r.grace())
			if until.After(e.addrs[at.Addr]) {
				e.addrs[at.Addr] = until
			}
		}
	}
	if len(a.addrs)+len(aaaa.addrs) == 0 && negTTL >= 0 {
		ttl = lesser(ttl, negTTL)
	}
	e.refresh = now.Add(ttl)
	c.addrs = e.current(now)
}

// answer is the outcome of one query.
type answer struct {
	addrs  []AddrTTL
	negTTL time.Duration // when addrs is empty: the negative TTL
	err    error
}

// ask sends one query for name and type t.
func (r *Resolver) ask(ctx context.Context, name string, t uint16) answer {
	m := new(dns.Msg)
	m.SetQuestion(name, t)
	m.SetEdns0(lookupUDPSize, false)
	var resp *dns.Msg
	err := ErrNoUpstream
	if r.Upstream != nil {
		resp, err = r.Upstream.Exchange(ctx, m)
	}
	if err != nil {
		return answer{err: err}
	}
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return answer{err: fmt.Errorf("%w: %s %s: %s", ErrUpstream, normalize(name), typeString(t), rcodeString(resp.Rcode))}
	}
	if addrs := AnswerAddrs(name, resp.Answer); len(addrs) > 0 && resp.Rcode == dns.RcodeSuccess {
		return answer{addrs: addrs}
	}
	return answer{negTTL: negativeTTL(resp)}
}

// negativeTTL is how long an answer without addresses may be cached: the
// smaller of the TTL and the MINIMUM field of the zone's SOA record in the
// authority section (RFC 2308 §5), or zero without one.
func negativeTTL(resp *dns.Msg) time.Duration {
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
		}
	}
	return 0
}

// entry returns the entry of name, made and cached if need be, evicting the
// least recently used beyond MaxNames. r.mu is held.
func (r *Resolver) entry(name string) *entry {
	if el, ok := r.entries[name]; ok {
		r.lru.MoveToBack(el)
		return el.Value.(*entry)
	}
	if r.entries == nil {
		r.entries = make(map[string]*list.Element)
	}
	e := &entry{name: name, addrs: make(map[netip.Addr]time.Time)}
	r.entries[name] = r.lru.PushBack(e)
	limit := r.MaxNames
	if limit <= 0 {
		limit = DefaultMaxNames
	}
	for r.lru.Len() > limit {
		old := r.lru.Remove(r.lru.Front()).(*entry)
		delete(r.entries, old.name)
	}
	return e
}

// current drops the addresses past their time and returns the rest,
// sorted.
func (e *entry) current(now time.Time) []netip.Addr {
	out := make([]netip.Addr, 0, len(e.addrs))
	for a, until := range e.addrs {
		if now.Before(until) {
			out = append(out, a)
		} else {
			delete(e.addrs, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func (r *Resolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Resolver) minTTL() time.Duration {
	if r.MinTTL > 0 {
		return r.MinTTL
	}
	return DefaultMinTTL
}

func (r *Resolver) clamp(ttl time.Duration) time.Duration {
	maxTTL := r.MaxTTL
	if maxTTL <= 0 {
		maxTTL = DefaultMaxTTL
	}
	return max(min(ttl, maxTTL), r.minTTL())
}

func (r *Resolver) grace() time.Duration {
	switch {
	case r.Grace < 0:
		return 0
	case r.Grace == 0:
		return DefaultGrace
	}
	return r.Grace
}

// lesser returns the smaller of a and b, where a negative a means none yet.
func lesser(a, b time.Duration) time.Duration {
	if a < 0 {
		return b
	}
	return min(a, b)
}
