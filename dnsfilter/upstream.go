package dnsfilter

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Defaults of [Upstream]'s fields.
const (
	DefaultTryTimeout = 2 * time.Second
	DefaultMaxSockets = 256
)

// Upstream sends DNS queries to an ordered list of servers, moving on to
// the next when one fails. Its zero value has no servers and fails every
// query with [ErrNoUpstream]. Its fields must not change once it is in
// use; any number of goroutines may call its methods at once.
//
// A server fails a query when it cannot be reached, does not answer within
// Timeout, or answers SERVFAIL or REFUSED. Any other answer, NXDOMAIN
// included, is the answer: asking another server would only get a second
// opinion.
//
// # Sockets
//
// Each query goes out with an ID of its own, drawn at random, and only a
// response with that ID and the query's question is taken as its answer:
// anything else that arrives on the socket (a late answer to an earlier
// query, a forgery, a reply to another question) is discarded and the wait
// goes on until Timeout. The answer returned carries the caller's ID.
//
// Queries over UDP reuse sockets: each server has a pool of at most
// MaxSockets connected sockets, each used by one query at a time and put
// back when it brought a matching answer. A socket that saw an error or a
// timeout is closed, never reused. A query that finds no idle socket opens
// one, or waits for one to come back when MaxSockets are open. Queries over
// TCP open a connection each. Every socket carries Mark. Call
// [Upstream.Close] to close the idle sockets once the Upstream is no
// longer needed.
type Upstream struct {
	// Servers are the upstream resolvers, tried in order.
	Servers []netip.AddrPort

	// Timeout bounds one try at one server: dialling, sending and
	// waiting for the answer (a TCP retry after a truncated UDP answer is
	// a second try). The context passed in bounds the whole exchange
	// through its deadline. Zero means 2s.
	Timeout time.Duration

	// Mark is the firewall mark (SO_MARK) set on every socket, so that
	// the filter's own queries bypass its redirect of DNS traffic.
	// Setting it needs CAP_NET_ADMIN, and is only possible on Linux:
	// elsewhere a non-zero Mark fails every query with
	// [ErrMarkUnsupported]. Zero means no mark.
	Mark uint32

	// MaxSockets bounds the UDP sockets open to each server, and so the
	// queries in flight to it over UDP: a query that finds them all busy
	// waits for one, within its Timeout. Idle sockets stay open for the
	// next queries until [Upstream.Close]. Zero means 256; a negative
	// MaxSockets keeps no socket, every query opening one of its own.
	MaxSockets int

	init  sync.Once
	pools []socketPool // one per server of Servers, made on first use
	bufs  sync.Pool    // of *[]byte, dns.MaxMsgSize long
}

// Close closes the UDP sockets the Upstream keeps open between queries, and
// makes it keep none from then on: a socket in use is closed when its query
// ends, and later queries still work, each with a socket of its own (at
// most MaxSockets at once). It returns nil.
func (u *Upstream) Close() error {
	u.init.Do(u.makePools)
	for i := range u.pools {
		u.pools[i].close()
	}
	return nil
}

// Exchange sends m to the servers in turn, over UDP, and returns the first
// usable answer. A truncated UDP answer is asked again over TCP of the same
// server, so the answer is complete. m is not modified; the answer has m's
// ID.
//
// When no server gives a usable answer, the error wraps [ErrUpstream] and
// each server's error; it wraps ctx's error too when ctx ended first.
func (u *Upstream) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	r, _, err := u.exchange(ctx, m, "udp", true)
	return r, err
}

// ExchangeNet is [Upstream.Exchange] over the network given, "udp" or
// "tcp", with no fallback from one to the other: a truncated UDP answer is
// returned as it is, with its TC bit, for a client that will retry over
// TCP itself.
func (u *Upstream) ExchangeNet(ctx context.Context, m *dns.Msg, network string) (*dns.Msg, error) {
	if network != "udp" && network != "tcp" {
		return nil, fmt.Errorf("dnsfilter: unknown network %q", network)
	}
	r, _, err := u.exchange(ctx, m, network, false)
	return r, err
}

// exchange returns the answer parsed, and as it came (with m's ID), so that
// the Handler can relay it without packing it again.
func (u *Upstream) exchange(ctx context.Context, m *dns.Msg, network string, tcpFallback bool) (*dns.Msg, []byte, error) {
	if len(u.Servers) == 0 {
		return nil, nil, ErrNoUpstream
	}
	if err := checkMark(u.Mark); err != nil {
		return nil, nil, err
	}
	u.init.Do(u.makePools)
	var errs []error
	for i, server := range u.Servers {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		var pool *socketPool
		if i < len(u.pools) {
			pool = &u.pools[i]
		}
		r, wire, err := u.try(ctx, m, server, network, pool)
		if err == nil && r.Truncated && tcpFallback && network == "udp" {
			r, wire, err = u.try(ctx, m, server, "tcp", nil)
		}
		if err == nil && (r.Rcode == dns.RcodeServerFailure || r.Rcode == dns.RcodeRefused) {
			err = errors.New(dns.RcodeToString[r.Rcode])
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", network, server, err))
			continue
		}
		return r, wire, nil
	}
	return nil, nil, fmt.Errorf("%w: %w", ErrUpstream, errors.Join(errs...))
}

// try asks one server once, over UDP with a socket from pool (nil: a
// socket of its own) or over TCP.
func (u *Upstream) try(ctx context.Context, m *dns.Msg, server netip.AddrPort, network string, pool *socketPool) (*dns.Msg, []byte, error) {
	timeout := u.Timeout
	if timeout <= 0 {
		timeout = DefaultTryTimeout
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	bp := u.buffer()
	defer u.bufs.Put(bp)
	// The query goes out with a random ID, packed into the buffer that
	// then receives the answer: UDP reads whatever fits a datagram, since
	// a server may answer larger than the query's EDNS0 size (or 512 bytes
	// without EDNS0), and the Handler truncates for its own client anyway.
	id := randomID()
	if network == "tcp" {
		return u.tryTCP(ctx, m, id, server, deadline, *bp)
	}
	return u.tryUDP(ctx, m, id, server, deadline, pool, *bp)
}

func (u *Upstream) tryUDP(ctx context.Context, m *dns.Msg, id uint16, server netip.AddrPort, deadline time.Time, pool *socketPool, buf []byte) (*dns.Msg, []byte, error) {
	query, err := m.PackBuffer(buf)
	if err != nil {
		return nil, nil, err
	}
	binary.BigEndian.PutUint16(query, id)

	c, err := pool.get(ctx, deadline)
	if err != nil {
		return nil, nil, err
	}
	fresh := c == nil
	for {
		if c == nil {
			if c, err = u.dialer(deadline).DialContext(ctx, "udp", server.String()); err != nil {
				pool.drop(nil)
				return nil, nil, err
			}
		}
		if err = c.SetDeadline(deadline); err == nil {
			_, err = c.Write(query)
		}
		if err == nil {
			break
		}
		c.Close()
		if fresh {
			pool.drop(nil)
			return nil, nil, err
		}
		// An idle socket may hold an error from an earlier query (an
		// ICMP port unreachable that came late): try a fresh one.
		c, fresh = nil, true
	}
	for {
		n, err := c.Read(buf)
		if err != nil {
			pool.drop(c)
			return nil, nil, err
		}
		if r, wire := match(buf[:n], m, id); r != nil {
			pool.put(c)
			return r, wire, nil
		}
	}
}

func (u *Upstream) tryTCP(ctx context.Context, m *dns.Msg, id uint16, server netip.AddrPort, deadline time.Time, buf []byte) (*dns.Msg, []byte, error) {
	query, err := m.PackBuffer(buf)
	if err != nil {
		return nil, nil, err
	}
	binary.BigEndian.PutUint16(query, id)
	msg := make([]byte, 2+len(query)) // length-prefixed (RFC 1035 4.2.2)
	binary.BigEndian.PutUint16(msg, uint16(len(query)))
	copy(msg[2:], query)

	c, err := u.dialer(deadline).DialContext(ctx, "tcp", server.String())
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(deadline); err != nil {
		return nil, nil, err
	}
	if _, err := c.Write(msg); err != nil {
		return nil, nil, err
	}
	for {
		if _, err := io.ReadFull(c, buf[:2]); err != nil {
			return nil, nil, err
		}
		n := int(binary.BigEndian.Uint16(buf))
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return nil, nil, err
		}
		if r, wire := match(buf[:n], m, id); r != nil {
			return r, wire, nil
		}
	}
}

// match returns the answer in b, parsed and copied, when it is a response
// to q sent with id; nil otherwise. Both have q's ID.
func match(b []byte, q *dns.Msg, id uint16) (*dns.Msg, []byte) {
	if len(b) < 12 || binary.BigEndian.Uint16(b) != id {
		return nil, nil
	}
	r := new(dns.Msg)
	if err := r.Unpack(b); err != nil || !r.Response || !sameQuestions(q.Question, r.Question) {
		return nil, nil
	}
	r.Id = q.Id
	wire := append([]byte(nil), b...)
	binary.BigEndian.PutUint16(wire, q.Id)
	return r, wire
}

// dialer returns the dialer for one try.
func (u *Upstream) dialer(deadline time.Time) *net.Dialer {
	return &net.Dialer{Deadline: deadline, Control: markControl(u.Mark)}
}

func (u *Upstream) makePools() {
	if u.MaxSockets < 0 {
		return
	}
	size := u.MaxSockets
	if size == 0 {
		size = DefaultMaxSockets
	}
	u.pools = make([]socketPool, len(u.Servers))
	for i := range u.pools {
		u.pools[i] = socketPool{idle: make(chan net.Conn, size), open: make(chan struct{}, size)}
	}
}

// buffer returns a buffer that holds any DNS message.
func (u *Upstream) buffer() *[]byte {
	if bp, ok := u.bufs.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, dns.MaxMsgSize)
	return &b
}

// randomID returns a message ID that an off-path attacker cannot guess.
func randomID() uint16 {
	var b [2]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return binary.BigEndian.Uint16(b[:])
}

// socketPool holds the UDP sockets connected to one server. Its channels
// have room for as many sockets as it may open: open holds a token for each
// socket open or being opened, idle the sockets waiting for a query. A nil
// *socketPool keeps nothing and opens any number.
type socketPool struct {
	idle chan net.Conn
	open chan struct{}

	mu     sync.RWMutex // held for writing to close, for reading to put
	closed bool
}

// get returns an idle socket, or nil when the caller is to open one, having
// waited for a socket to come back when the pool has all it may open. The
// caller gives the socket back with put or drop, or calls drop(nil) when
// opening one failed.
func (p *socketPool) get(ctx context.Context, deadline time.Time) (net.Conn, error) {
	if p == nil {
		return nil, nil
	}
	select {
	case c := <-p.idle:
		return c, nil
	default:
	}
	select {
	case c := <-p.idle:
		return c, nil
	case p.open <- struct{}{}:
		return nil, nil
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case c := <-p.idle:
		return c, nil
	case p.open <- struct{}{}:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, fmt.Errorf("dnsfilter: all %d sockets busy: %w", cap(p.open), os.ErrDeadlineExceeded)
	}
}

// put keeps c for the next query, or closes it once the pool is closed.
func (p *socketPool) put(c net.Conn) {
	if p == nil {
		c.Close()
		return
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		c.Close()
		<-p.open
		return
	}
	p.idle <- c // never blocks: the pool has room for every socket it opens
}

// drop closes c, if not nil, and frees its place in the pool.
func (p *socketPool) drop(c net.Conn) {
	if c != nil {
		c.Close()
	}
	if p != nil {
		<-p.open
	}
}

// close closes the idle sockets and makes put close those given back.
func (p *socketPool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for {
		select {
		case c := <-p.idle:
			p.drop(c)
		default:
			return
		}
	}
}

// sameQuestions reports whether an answer's question section repeats the
// query's, ignoring case (a server may echo 0x20 randomisation).
func sameQuestions(q, a []dns.Question) bool {
	if len(q) != len(a) {
		return false
	}
	for i := range q {
		if q[i].Qtype != a[i].Qtype || q[i].Qclass != a[i].Qclass || !strings.EqualFold(q[i].Name, a[i].Name) {
			return false
		}
	}
	return true
}
