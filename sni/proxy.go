package sni

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/policy"

	"github.com/g0lab/g0efilter/internal/sockmark"
)

// Defaults of the [Proxy] bounds.
const (
	DefaultHelloTimeout = 10 * time.Second
	DefaultDialTimeout  = 10 * time.Second
	DefaultIdleTimeout  = 10 * time.Minute
)

// Protocol is what a [Proxy] listener expects its clients to speak first.
type Protocol uint8

// Protocols.
const (
	TLS  Protocol = iota + 1 // a TLS ClientHello, decided on its server name
	HTTP                     // HTTP/1.x requests, each decided on its host
)

// String returns "tls" or "http".
func (p Protocol) String() string {
	switch p {
	case TLS:
		return "tls"
	case HTTP:
		return "http"
	}
	return fmt.Sprintf("protocol(%d)", uint8(p))
}

// DestinationCheck says how the [Proxy] ties an allowed name to the address
// it forwards to.
type DestinationCheck uint8

// Destination checks.
const (
	// VerifyDestination forwards to the address the client connected to only
	// if the name resolves to it (through [Proxy.Resolver]); otherwise the
	// connection is blocked. Without it, a client could send an allowed
	// name to any address on ports 80 and 443. This is the default.
	VerifyDestination DestinationCheck = iota

	// DialName ignores the address the client connected to: the proxy
	// resolves the name itself and dials its addresses in the order the
	// resolver gives them, on the original port.
	DialName

	// TrustDestination forwards to the address the client connected to
	// without checking it: the name alone decides. Any server reachable on
	// ports 80 and 443 is then reachable by a client that sends an allowed
	// name.
	TrustDestination
)

// String returns "verify", "dial-name" or "trust".
func (d DestinationCheck) String() string {
	switch d {
	case VerifyDestination:
		return "verify"
	case DialName:
		return "dial-name"
	case TrustDestination:
		return "trust"
	}
	return fmt.Sprintf("destination-check(%d)", uint8(d))
}

// Policy answers whether a host name is allowed, and by which rule.
// [github.com/g0lab/g0efilter/policy.Holder] is one: the live policy, so that
// every decision sees the latest reload.
type Policy interface {
	MatchHost(name string) (rule string, ok bool)
}

// Denier is a denylist that wins over the allowlist. When the
// [Policy] is also a Denier, as [github.com/g0lab/g0efilter/policy.Holder]
// is, a denied name is refused with [events.ReasonDenied] whatever allows
// it, and so is a connection to a denied address, and a denied address is
// never dialled, except in audit mode (see [Auditor]).
type Denier interface {
	DenyHost(name string) (rule string, denied bool)
	DenyAddr(a netip.Addr) (rule netip.Prefix, denied bool)
}

// PortPolicy is a policy with entries that allow a name on some ports
// only ("*.example.com:8443"). When the [Policy] is also a
// PortPolicy, as [github.com/g0lab/g0efilter/policy.Holder] is, a name
// is also allowed when MatchHostPort allows it for TCP on the port the
// client connected to.
type PortPolicy interface {
	MatchHostPort(name string, proto policy.Proto, port uint16) (rule string, ok bool)
}

// Auditor is a policy that may be only audited. When the [Policy] is also
// an Auditor, as [github.com/g0lab/g0efilter/policy.Holder] is, and Audit
// reports true, a decision to refuse is taken as usual and reported as
// [events.WouldBlock], and the connection is forwarded to the address the
// client connected to. A connection made to the proxy directly
// ([events.ReasonLocalService]) is refused in both modes. Audit is asked
// once per decision to refuse, so a reload that switches modes applies
// from the next one.
type Auditor interface {
	Audit() bool
}

// Resolver looks up the addresses of a host name.
// [github.com/g0lab/g0efilter/dnsfilter.Resolver] is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, host string) ([]netip.Addr, error)
}

// ErrNotRedirected is returned by the default original-destination lookup
// for a connection that reached the proxy directly rather than through the
// kernel's redirect: forwarding it would loop back to the proxy.
var ErrNotRedirected = errors.New("sni: connection was not redirected")

// Proxy is a transparent proxy for connections that the kernel redirected
// to it: it reads the name the client asks for (the TLS server name, or the
// HTTP Host of every request), asks the policy, and either forwards the
// connection to where the client meant it to go or resets it. It never
// terminates TLS. When the policy is only audited (see [Auditor]), what
// it would refuse is reported and forwarded to the client's destination.
//
// Its zero value forwards nothing: with no Policy, every name is refused.
// Set the fields before the first call to [Proxy.Serve] and do not change
// them after; a Proxy must not be copied once used.
type Proxy struct {
	// Policy decides each name. Nil refuses every name.
	Policy Policy

	// HostPorts are the original destination ports on which a name that
	// Policy.MatchHost allows is allowed: 443 for a TLS proxy, say. On
	// other ports only a [PortPolicy] can allow a name. Nil means every
	// port.
	HostPorts []uint16

	// Resolver resolves names for VerifyDestination and DialName. Nil
	// fails those checks, so every name is refused unless Destination is
	// TrustDestination.
	Resolver Resolver

	// Destination says how an allowed name is tied to the address
	// forwarded to. Zero means VerifyDestination.
	Destination DestinationCheck

	// Mark is the firewall mark (SO_MARK) of the connections the proxy
	// makes, so that the ruleset lets them out instead of redirecting them
	// back. Zero means none. Setting a mark needs CAP_NET_ADMIN and Linux.
	Mark uint32

	// HelloTimeout bounds how long a client may take, from the moment it is
	// accepted, to send the ClientHello or first request head, and on a
	// kept-alive HTTP connection each later request head, from its first
	// byte. A slow or silent client is then cut off. Zero means 10s.
	HelloTimeout time.Duration

	// DialTimeout bounds connecting to the destination. Zero means 10s.
	DialTimeout time.Duration

	// IdleTimeout closes a connection on which no byte moved either way for
	// this long (detected within twice the duration); on a kept-alive HTTP
	// connection it also bounds the wait for the first byte of the next
	// request. Zero means 10m.
	IdleTimeout time.Duration

	// Events receives one event per decision: one per TLS connection, one
	// per HTTP request. In audit mode a refused connection whose forward
	// fails gets a second event, the dial's Error, after its WouldBlock.
	// Nil discards them.
	Events events.Sink

	// Host identifies this filter in events (Event.Host).
	Host string

	// Logger receives errors that are not decisions (accept failures).
	// Nil discards them.
	Logger *slog.Logger

	// OriginalDestination returns the address the client connected to
	// before the redirect. Nil means the kernel's record of the redirect
	// (SO_ORIGINAL_DST on Linux), which fails with ErrNotRedirected for a
	// connection made to the proxy directly.
	OriginalDestination func(net.Conn) (netip.AddrPort, error)

	// DialContext connects to the destination. Nil means a net.Dialer with
	// DialTimeout and Mark. Forwarding uses splice(2) when it returns a
	// *net.TCPConn.
	DialContext func(ctx context.Context, network, address string) (net.Conn, error)

	stats stats
}

// Stats are counters of a [Proxy] since it was created.
type Stats struct {
	Accepted uint64 // connections accepted
	Active   int64  // connections open now
	Allowed  uint64 // decisions that allowed (connections or requests)
	Blocked  uint64 // decisions that blocked
	// WouldBlock counts decisions to refuse taken in audit mode: the
	// traffic was forwarded.
	WouldBlock uint64
	Errors     uint64 // decisions not carried out: no destination, or a dial that failed
	// AcceptWaits counts accepts that failed for want of descriptors or
	// buffers, each followed by a wait (see [Proxy.Serve]).
	AcceptWaits uint64
	BytesUp     uint64 // bytes forwarded from clients to destinations
	BytesDown   uint64 // bytes forwarded from destinations to clients
}

type stats struct {
	accepted, allowed, blocked, errors, up, down atomic.Uint64
	wouldBlock, acceptWaits                      atomic.Uint64
	active                                       atomic.Int64
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	s := &p.stats
	return Stats{
		Accepted: s.accepted.Load(), Active: s.active.Load(),
		Allowed: s.allowed.Load(), Blocked: s.blocked.Load(), WouldBlock: s.wouldBlock.Load(),
		Errors:  s.errors.Load(),
		BytesUp: s.up.Load(), BytesDown: s.down.Load(),
		AcceptWaits: s.acceptWaits.Load(),
	}
}

// Serve accepts connections on ln and handles each as proto until ctx ends
// or ln fails. It closes ln. Then it closes every connection it is
// handling, and it returns once their goroutines have ended: nil when ctx
// ended, the accept error otherwise.
//
// On errors that more connections would not cure (too many open files, out
// of buffers) Serve waits, from 5ms doubling up to 1s, before accepting
// again, rather than spinning. It logs the first failure of a run at Warn,
// the rest at Debug and, once it accepts again, how long it waited; each
// failure counts in [Stats].AcceptWaits.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener, proto Protocol) error {
	if proto != TLS && proto != HTTP {
		ln.Close()
		return fmt.Errorf("sni: serve: unknown %v", proto)
	}
	// Deferred calls run last first: close ln, end the connections, then
	// wait for their goroutines.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer ln.Close()

	var (
		delay    time.Duration
		failures int       // accept failures in a row
		since    time.Time // the first of them
	)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !isResourceError(err) {
				return fmt.Errorf("sni: accept: %w", err)
			}
			p.stats.acceptWaits.Add(1)
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			if failures++; failures == 1 {
				since = time.Now()
				p.logger().Warn("sni: accept failed, waiting", "err", err, "wait", delay)
			} else {
				p.logger().Debug("sni: accept failed, waiting", "err", err, "wait", delay)
			}
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		if failures > 0 {
			p.logger().Info("sni: accepting again", "failures", failures, "after", time.Since(since).Round(time.Millisecond))
			failures = 0
		}
		delay = 0
		p.stats.accepted.Add(1)
		wg.Go(func() { p.handle(ctx, c, proto) })
	}
}

// handle decides one accepted connection and, if allowed, forwards it.
func (p *Proxy) handle(ctx context.Context, c net.Conn, proto Protocol) {
	p.stats.active.Add(1)
	defer p.stats.active.Add(-1)
	cc := &conn{proxy: p, client: c, flow: events.NewFlowID(), proto: proto}
	defer cc.abort()
	stop := context.AfterFunc(ctx, cc.abort)
	defer stop()
	cc.src = addrPort(c.RemoteAddr())

	dst, err := p.originalDestination(c)
	if errors.Is(err, ErrNotRedirected) {
		// Made to the proxy directly: forwarding it would loop, and it is
		// an attempt to get around the filter, so audit mode does not
		// forward it either.
		cc.block(events.ReasonLocalService, err.Error())
		return
	}
	if err != nil {
		cc.emit(events.Error, "", verdict{reason: events.ReasonNoDestination, detail: err.Error()})
		cc.reset()
		return
	}
	cc.dst = dst
	if proto == TLS {
		cc.serveTLS(ctx)
	} else {
		cc.serveHTTP(ctx)
	}
}

func (p *Proxy) originalDestination(c net.Conn) (netip.AddrPort, error) {
	if p.OriginalDestination != nil {
		return p.OriginalDestination(c)
	}
	return originalDestination(c)
}

// audit reports whether the policy is only audited.
func (p *Proxy) audit() bool {
	a, ok := p.Policy.(Auditor)
	return ok && a.Audit()
}

func (p *Proxy) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}

func (p *Proxy) helloTimeout() time.Duration { return orDefault(p.HelloTimeout, DefaultHelloTimeout) }
func (p *Proxy) dialTimeout() time.Duration  { return orDefault(p.DialTimeout, DefaultDialTimeout) }
func (p *Proxy) idleTimeout() time.Duration  { return orDefault(p.IdleTimeout, DefaultIdleTimeout) }

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// verdict is the outcome of deciding a name for a destination.
type verdict struct {
	allowed bool
	reason  events.Reason
	rule    string
	detail  string
	dial    []netip.AddrPort // where to connect, in order, if allowed
}

// match asks the policy about name on the original port, without the
// destination check.
func (p *Proxy) match(name string, port uint16) verdict {
	if name == "" {
		return verdict{reason: events.ReasonNoName}
	}
	if p.Policy == nil {
		return verdict{reason: events.ReasonNotAllowlisted, detail: "no policy"}
	}
	if d, ok := p.Policy.(Denier); ok {
		if rule, denied := d.DenyHost(name); denied {
			return verdict{reason: events.ReasonDenied, rule: rule}
		}
	}
	rule, ok := p.Policy.MatchHost(name)
	if ok && (p.HostPorts == nil || slices.Contains(p.HostPorts, port)) {
		return verdict{allowed: true, reason: events.ReasonAllowlisted, rule: rule}
	}
	if pm, isPM := p.Policy.(PortPolicy); isPM {
		if rule, ok := pm.MatchHostPort(name, policy.TCP, port); ok {
			return verdict{allowed: true, reason: events.ReasonAllowlisted, rule: rule}
		}
	}
	if ok {
		return verdict{reason: events.ReasonNotAllowlisted, rule: rule,
			detail: fmt.Sprintf("%s allows port %s only", rule, joinPorts(p.HostPorts))}
	}
	return verdict{reason: events.ReasonNotAllowlisted}
}

// joinPorts spells ports as "80" or "443, 8443".
func joinPorts(ports []uint16) string {
	s := make([]string, len(ports))
	for i, port := range ports {
		s[i] = strconv.Itoa(int(port))
	}
	return strings.Join(s, ", ")
}

// denied reports whether the policy denies the address, and the verdict
// that says so.
func (p *Proxy) denied(a netip.Addr) (verdict, bool) {
	d, ok := p.Policy.(Denier)
	if !ok {
		return verdict{}, false
	}
	rule, denied := d.DenyAddr(a)
	if !denied {
		return verdict{}, false
	}
	return verdict{reason: events.ReasonDenied, rule: rule.String(), detail: fmt.Sprintf("%s is denied", a.Unmap())}, true
}

// decide applies the policy and the destination check to name, for a
// connection the client made to dst.
func (p *Proxy) decide(ctx context.Context, name string, dst netip.AddrPort) verdict {
	v := p.match(name, dst.Port())
	if !v.allowed {
		return v
	}
	rule := v.rule
	if dv, denied := p.denied(dst.Addr()); denied {
		return dv
	}
	if p.Destination == TrustDestination {
		v.dial = []netip.AddrPort{dst}
		return v
	}

	addrs, err := p.lookup(ctx, name)
	if err != nil {
		return verdict{reason: events.ReasonResolve, rule: rule, detail: err.Error()}
	}
	if p.Destination == DialName {
		var deniedV verdict
		for _, a := range addrs {
			if dv, denied := p.denied(a); denied {
				deniedV = dv
				continue
			}
			v.dial = append(v.dial, netip.AddrPortFrom(a, dst.Port()))
		}
		if len(v.dial) == 0 {
			deniedV.detail = fmt.Sprintf("%s resolves only to denied addresses (%s)", name, joinAddrs(addrs))
			return deniedV
		}
		v.detail = "dialled by name"
		return v
	}
	want := dst.Addr().Unmap()
	for _, a := range addrs {
		if a.Unmap() == want {
			v.dial = []netip.AddrPort{dst}
			return v
		}
	}
	return verdict{
		reason: events.ReasonWrongAddress, rule: rule,
		detail: fmt.Sprintf("%s resolves to %s, not %s", name, joinAddrs(addrs), want),
	}
}

func (p *Proxy) lookup(ctx context.Context, name string) ([]netip.Addr, error) {
	if p.Resolver == nil {
		return nil, errors.New("no resolver configured")
	}
	ctx, cancel := context.WithTimeout(ctx, p.dialTimeout())
	defer cancel()
	addrs, err := p.Resolver.LookupNetIP(ctx, name)
	if err == nil && len(addrs) == 0 {
		err = fmt.Errorf("%s has no addresses", name)
	}
	return addrs, err
}

// dial connects to the first of addrs that answers, within DialTimeout. A
// dial that fails for want of descriptors or buffers is tried again, after
// a wait as Serve's (5ms doubling up to 1s): the client waits for them to
// free up rather than being reset.
func (p *Proxy) dial(ctx context.Context, addrs []netip.AddrPort) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.dialTimeout())
	defer cancel()
	var delay time.Duration
	for {
		c, err := p.dialOnce(ctx, addrs)
		if err == nil || !isResourceError(err) {
			return c, err
		}
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

func (p *Proxy) dialOnce(ctx context.Context, addrs []netip.AddrPort) (net.Conn, error) {
	dial := p.DialContext
	if dial == nil {
		d := net.Dialer{Timeout: p.dialTimeout()}
		if p.Mark != 0 {
			d.Control = sockmark.Control(p.Mark)
		}
		dial = d.DialContext
	}
	var errs []error
	for _, a := range addrs {
		c, err := dial(ctx, "tcp", a.String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// addrPort returns the address of a TCP or UDP net.Addr, unmapped.
func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// conn is one client connection and, once allowed, its upstream.
type conn struct {
	proxy    *Proxy
	proto    Protocol
	flow     uint64
	client   net.Conn
	upstream net.Conn
	src, dst netip.AddrPort
	mu       sync.Mutex // guards upstream against abort
	closed   bool
}

// component is the event component of the connection's protocol.
func (c *conn) component() events.Component {
	if c.proto == TLS {
		return events.HTTPS
	}
	return events.HTTP
}

// emit sends the event for one decision.
func (c *conn) emit(action events.Action, name string, v verdict) {
	p := c.proxy
	switch action {
	case events.Allowed:
		p.stats.allowed.Add(1)
	case events.Blocked:
		p.stats.blocked.Add(1)
	case events.WouldBlock:
		p.stats.wouldBlock.Add(1)
	default:
		p.stats.errors.Add(1)
	}
	if p.Events == nil {
		return
	}
	p.Events.Emit(events.Event{
		Time:        time.Now(),
		Host:        p.Host,
		Component:   c.component(),
		Action:      action,
		Protocol:    "tcp",
		Source:      c.src,
		Destination: c.dst,
		Name:        name,
		Reason:      v.reason,
		Detail:      v.detail,
		Rule:        v.rule,
		Flow:        c.flow,
	})
}

// block reports a connection refused before it named anything, and
// resets the client. It is for refusals that audit mode does not waive.
func (c *conn) block(reason events.Reason, detail string) {
	c.emit(events.Blocked, "", verdict{reason: reason, detail: detail})
	c.reset()
}

// reset makes the close of the client connection a TCP reset.
func (c *conn) reset() {
	if tc, ok := c.client.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
}

// refused reports a decision to refuse and whether the connection goes on
// anyway: in audit mode it is reported as would-block and goes on, unless
// it is an attempt to get around the filter or the proxy is stopping
// (ctx is done); otherwise it is reported as blocked.
func (c *conn) refused(ctx context.Context, name string, v verdict) (forward bool) {
	// A proxy that is stopping forwards nothing more: what it cuts is
	// blocked, audit or not.
	if ctx.Err() == nil && !v.reason.Bypass() && c.proxy.audit() {
		c.emit(events.WouldBlock, name, v)
		return true
	}
	c.emit(events.Blocked, name, v)
	return false
}

// open carries out the first decision on a connection, v for name. An
// allowed one is dialled as v says; a refused one is reset or, in audit
// mode, dialled to the address the client connected to. It reports
// whether the connection now has an upstream.
func (c *conn) open(ctx context.Context, name string, v verdict) bool {
	if v.allowed {
		if !c.connect(ctx, name, v) {
			return false
		}
		c.emit(events.Allowed, name, v)
		return true
	}
	if !c.refused(ctx, name, v) {
		c.reset()
		return false
	}
	v.dial = []netip.AddrPort{c.dst}
	return c.connect(ctx, name, v)
}

// connect dials the destinations of v. If that fails, it reports the
// error for name and resets the client.
func (c *conn) connect(ctx context.Context, name string, v verdict) bool {
	up, err := c.proxy.dial(ctx, v.dial)
	if err != nil {
		v.reason, v.detail = events.ReasonDial, err.Error()
		c.emit(events.Error, name, v)
		c.reset()
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		up.Close()
		return false
	}
	c.upstream = up
	return true
}

// abort closes both sides, ending whatever is blocked on them.
func (c *conn) abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.client.Close()
	if c.upstream != nil {
		c.upstream.Close()
	}
}

// serveTLS reads the ClientHello, decides on its server name and forwards.
// A client that sends something else, or stops or stalls first, is
// refused; in audit mode, what it sent is forwarded as it is.
func (c *conn) serveTLS(ctx context.Context) {
	p := c.proxy
	buf := getBuffer()
	defer func() { putBuffer(buf) }()
	c.client.SetReadDeadline(time.Now().Add(p.helloTimeout()))
	var (
		name string
		v    verdict
	)
	for {
		n, rerr := c.client.Read(buf.b[len(buf.b):cap(buf.b)])
		buf.b = buf.b[:len(buf.b)+n]
		hello, err := ParseClientHello(buf.b)
		if err == nil {
			name = hello.ServerName()
			v = p.decide(ctx, name, c.dst)
			break
		}
		if !errors.Is(err, ErrNeedMore) {
			v = verdict{reason: events.ReasonMalformed, detail: err.Error()}
			break
		}
		if rerr != nil {
			v = c.readVerdict(rerr, len(buf.b))
			break
		}
	}
	if !c.open(ctx, name, v) {
		return
	}
	c.client.SetReadDeadline(time.Time{})
	if len(buf.b) > 0 {
		if _, err := c.upstream.Write(buf.b); err != nil {
			return
		}
		p.stats.up.Add(uint64(len(buf.b)))
	}
	putBuffer(buf)
	buf = nil
	c.relay(nil)
}

// readVerdict refuses a client that stopped or stalled before its first
// message, or on HTTP a later request head, was complete.
func (c *conn) readVerdict(err error, got int) verdict {
	v := verdict{reason: events.ReasonMalformed}
	switch {
	case isTimeout(err):
		v.reason = events.ReasonTimeout
		v.detail = fmt.Sprintf("no complete %s after %v (%d bytes)", c.firstMessage(), c.proxy.helloTimeout(), got)
	case errors.Is(err, io.EOF):
		v.detail = fmt.Sprintf("connection closed before a complete %s (%d bytes)", c.firstMessage(), got)
	default:
		v.detail = err.Error()
	}
	return v
}

func (c *conn) firstMessage() string {
	if c.proto == TLS {
		return "ClientHello"
	}
	return "request head"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// buffer is a peek buffer, pooled: a connection holds one only while it
// reads a ClientHello or a request head.
type buffer struct{ b []byte }

var buffers = sync.Pool{New: func() any {
	return &buffer{b: make([]byte, 0, max(MaxHelloSize, MaxHeadSize))}
}}

func getBuffer() *buffer { return buffers.Get().(*buffer) }

func putBuffer(b *buffer) {
	if b != nil {
		b.b = b.b[:0]
		buffers.Put(b)
	}
}
