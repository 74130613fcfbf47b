package dnsfilter

import (
	"container/list"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Cache keeps answers from upstream for the Handler to give again until
// their TTL runs out: positive answers for their records' smallest TTL,
// negative ones (NXDOMAIN, or no record of the type) for the TTL their SOA
// gives (RFC 2308), all of them no longer than MaxTTL. An answer given
// from the cache has its TTLs counted down by the seconds begun since it
// came, so that it never lasts longer than the answer as it came. Names are matched without
// regard to case, per question type and class, and apart for clients that
// ask for DNSSEC records or disable checking. Truncated answers, server
// failures and answers without a TTL are not kept. When the Cache holds
// Size answers, the one used longest ago makes room.
//
// The Handler asks the policy before it looks in the Cache, so a reload
// never lets a name that is no longer allowed be answered from it.
type Cache struct {
	size   int
	maxTTL time.Duration

	mu      sync.Mutex
	entries map[cacheKey]*list.Element
	lru     list.List // of *cacheEntry, most recently used first
}

type cacheKey struct {
	name          string // lower case
	qtype, qclass uint16
	do, cd        bool
	proto         string // a UDP answer may be truncated where a TCP one is not
}

type cacheEntry struct {
	key     cacheKey
	msg     *dns.Msg
	stored  time.Time
	expires time.Time
}

// NewCache returns a Cache of at most size answers, each kept at most
// maxTTL (zero means a day).
func NewCache(size int, maxTTL time.Duration) *Cache {
	if maxTTL <= 0 {
		maxTTL = 24 * time.Hour
	}
	return &Cache{size: max(size, 1), maxTTL: maxTTL, entries: make(map[cacheKey]*list.Element)}
}

// Len returns the number of answers held, expired ones included until they
// are looked up or pushed out.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// String returns the key as the in-flight group's key.
func (k cacheKey) String() string {
	b := make([]byte, 0, len(k.name)+16)
	b = append(b, k.name...)
	b = append(b, 0, byte(k.qtype>>8), byte(k.qtype), byte(k.qclass>>8), byte(k.qclass))
	if k.do {
		b = append(b, 'D')
	}
	if k.cd {
		b = append(b, 'C')
	}
	return string(append(b, k.proto...))
}

func keyOf(r *dns.Msg, proto string) cacheKey {
	q := r.Question[0]
	k := cacheKey{name: strings.ToLower(q.Name), qtype: q.Qtype, qclass: q.Qclass, cd: r.CheckingDisabled, proto: proto}
	if opt := r.IsEdns0(); opt != nil {
		k.do = opt.Do()
	}
	return k
}

// get returns a copy of the answer kept for k with its TTLs counted down
// to now, or false.
func (c *Cache) get(k cacheKey, now time.Time) (*dns.Msg, bool) {
	c.mu.Lock()
	el, ok := c.entries[k]
	if !ok {
		c.mu.Unlock()
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, k)
		c.mu.Unlock()
		return nil, false
	}
	c.lru.MoveToFront(el)
	c.mu.Unlock()

	m := e.msg.Copy()
	// The seconds begun count whole, so that the TTLs given never reach
	// past those of the answer as it came: an address pinned for the
	// first answer is pinned long enough for every copy of it.
	elapsed := uint32((now.Sub(e.stored) + time.Second - 1) / time.Second)
	for _, section := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range section {
			if h := rr.Header(); h.Rrtype != dns.TypeOPT {
				h.Ttl -= min(h.Ttl, elapsed)
			}
		}
	}
	return m, true
}

// put keeps m, the answer to a question with key k, if it may be kept.
func (c *Cache) put(k cacheKey, m *dns.Msg, now time.Time) {
	ttl, ok := cacheTTL(m)
	if !ok {
		return
	}
	ttl = min(ttl, c.maxTTL)
	e := &cacheEntry{key: k, msg: m.Copy(), stored: now, expires: now.Add(ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[k]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[k] = c.lru.PushFront(e)
	for len(c.entries) > c.size {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).key)
	}
}

// cacheTTL returns how long m may be kept: its records' smallest TTL for a
// positive answer, its SOA's for a negative one; false when it may not be.
func cacheTTL(m *dns.Msg) (time.Duration, bool) {
	if m.Truncated || (m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError) {
		return 0, false
	}
	var ttl uint32
	found := false
	take := func(t uint32) {
		if !found || t < ttl {
			ttl, found = t, true
		}
	}
	if m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0 {
		for _, rr := range m.Answer {
			take(rr.Header().Ttl)
		}
	} else {
		// Negative: the SOA of the authority section says how long.
		for _, rr := range m.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				take(min(soa.Hdr.Ttl, soa.Minttl))
			}
		}
	}
	if !found || ttl == 0 {
		return 0, false
	}
	return time.Duration(ttl) * time.Second, true
}
