package dnsfilter

import (
	"container/list"
	"encoding/binary"
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
// never lets a name that is no longer allowed be answered from it, and a
// switch from audit mode to enforce mode never lets an answer kept while
// auditing reach a question that enforce mode refuses. An answer's limits
// (the size of its TXT records) and the denylist's addresses are applied
// to it each time it is given.
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
	stored  time.Time
	expires time.Time

	// The answer as it came, packed with ID 0, and where its TTLs are.
	wire  []byte
	qEnd  int // where its question's name ends
	ttls  []ttlAt
	addrs []AddrTTL // AnswerAddrs of the question, TTLs as they came
	// What the Handler makes of it: its event's detail, the text of its
	// TXT records in bytes.
	detail   string
	txtBytes int
}

// ttlAt is a record's TTL in a packed answer, and where it is.
type ttlAt struct {
	off int
	ttl uint32
}

// cached is an answer from the Cache, for one question.
type cached struct {
	wire     []byte // with the question's ID and spelling, TTLs counted down
	addrs    []AddrTTL
	detail   string
	txtBytes int
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

// get returns the answer kept for r's question, whose key is k, with r's
// ID and question and its TTLs counted down to now, or false.
func (c *Cache) get(k cacheKey, r *dns.Msg, now time.Time) (cached, bool) {
	c.mu.Lock()
	el, ok := c.entries[k]
	if !ok {
		c.mu.Unlock()
		return cached{}, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, k)
		c.mu.Unlock()
		return cached{}, false
	}
	c.lru.MoveToFront(el)
	c.mu.Unlock()

	wire := append([]byte(nil), e.wire...)
	binary.BigEndian.PutUint16(wire, r.Id)
	// The question as the client spelled it (some check its case): the
	// same name but for case, so the same length. The Cache keeps it in
	// lower case, as most ask.
	if name := r.Question[0].Name; name != k.name {
		if end, err := dns.PackDomainName(name, wire, 12, nil, false); err != nil || end != e.qEnd {
			return cached{}, false
		}
	}
	// The seconds begun count whole, so that the TTLs given never reach
	// past those of the answer as it came: an address pinned for the
	// first answer is pinned long enough for every copy of it.
	elapsed := uint32((now.Sub(e.stored) + time.Second - 1) / time.Second)
	for _, t := range e.ttls {
		binary.BigEndian.PutUint32(wire[t.off:], t.ttl-min(t.ttl, elapsed))
	}
	addrs := make([]AddrTTL, len(e.addrs))
	for i, a := range e.addrs {
		addrs[i] = AddrTTL{Addr: a.Addr, TTL: max(a.TTL-time.Duration(elapsed)*time.Second, 0)}
	}
	return cached{wire: wire, addrs: addrs, detail: e.detail, txtBytes: e.txtBytes}, true
}

// put keeps m, the answer to a question with key k, if it may be kept.
// It does not modify m.
func (c *Cache) put(k cacheKey, m *dns.Msg, now time.Time) {
	ttl, ok := cacheTTL(m)
	if !ok {
		return
	}
	ttl = min(ttl, c.maxTTL)
	e := &cacheEntry{key: k, stored: now, expires: now.Add(ttl)}
	if e.wire, e.qEnd, e.ttls, ok = packTTLs(m, k.name); !ok {
		return
	}
	e.addrs = AnswerAddrs(k.name, m.Answer)
	e.detail = detail(m, e.addrs)
	e.txtBytes = txtBytes(m)
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

// packTTLs packs m, compressed, with ID 0 and its question's name spelled
// name (the same but for case), and finds its records' TTLs
// (those of OPT records hold flags): it packs m with every TTL 0, then
// with every TTL all ones, and the bytes that differ are the TTLs, since
// the rest does not depend on them. It returns the answer with its TTLs
// as they came, where its question's name ends, and false when m cannot
// be packed or has no question.
func packTTLs(m *dns.Msg, name string) (wire []byte, qEnd int, ttls []ttlAt, ok bool) {
	if len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, name) {
		return nil, 0, nil, false
	}
	c := m.Copy()
	c.Id, c.Compress = 0, true
	c.Question[0].Name = name
	var rrs []*dns.RR_Header
	for _, section := range [][]dns.RR{c.Answer, c.Ns, c.Extra} {
		for _, rr := range section {
			if h := rr.Header(); h.Rrtype != dns.TypeOPT {
				rrs = append(rrs, h)
				ttls = append(ttls, ttlAt{ttl: h.Ttl})
			}
		}
	}
	pack := func(ttl uint32) []byte {
		for _, h := range rrs {
			h.Ttl = ttl
		}
		w, err := c.Pack()
		if err != nil {
			return nil
		}
		return w
	}
	zeros, ones := pack(0), pack(^uint32(0))
	if zeros == nil || len(zeros) != len(ones) {
		return nil, 0, nil, false
	}
	n := 0
	for i := 0; i < len(zeros); i++ {
		if zeros[i] == ones[i] {
			continue
		}
		if n == len(ttls) || i+4 > len(zeros) ||
			binary.BigEndian.Uint32(zeros[i:]) != 0 || binary.BigEndian.Uint32(ones[i:]) != ^uint32(0) {
			return nil, 0, nil, false
		}
		ttls[n].off = i
		binary.BigEndian.PutUint32(zeros[i:], ttls[n].ttl)
		n++
		i += 3
	}
	if n != len(ttls) {
		return nil, 0, nil, false
	}
	qEnd, err := dns.PackDomainName(name, make([]byte, len(zeros)), 12, nil, false)
	if err != nil {
		return nil, 0, nil, false
	}
	return zeros, qEnd, ttls, true
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
