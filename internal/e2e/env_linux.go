//go:build linux

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/g0lab/g0efilter/internal/netnstest"
	"github.com/g0lab/g0efilter/internal/testbed"
)

// Addresses of the two namespaces. The box has one address per family; the
// upstream namespace has three, so that a test can allowlist one and not
// another on the same peer.
var (
	Box4      = netip.MustParseAddr("198.18.0.1")
	Box6      = netip.MustParseAddr("fd00:18::1")
	Upstream4 = []netip.Addr{
		netip.MustParseAddr("198.18.0.2"),
		netip.MustParseAddr("198.18.0.3"),
		netip.MustParseAddr("198.18.0.4"),
	}
	Upstream6 = []netip.Addr{
		netip.MustParseAddr("fd00:18::2"),
		netip.MustParseAddr("fd00:18::3"),
		netip.MustParseAddr("fd00:18::4"),
	}
)

// VethName is the name of the veth pair's end in both namespaces.
const VethName = testbed.VethName

const (
	prefixLen4 = 24
	prefixLen6 = 64
)

// Env is a box and an upstream namespace joined by a veth pair, made by
// [New] and removed when the test ends. Its methods fail the test that
// made it, so call them from that test's goroutine (a subtest makes its own
// Env).
type Env struct {
	t        testing.TB
	Box      string // name of the box namespace ("ip netns exec Box ...")
	Upstream string // name of the upstream namespace

	suffix    string     // the random part of the names
	mu        sync.Mutex // guards the cgroup fields
	cgroupDir string     // <cgroup2 mount>/g0e-e2e-<suffix>; made on first use
	workload  *cgroup    // where [Env.Hostile] runs; made on first use
}

// RequirePrivileges skips tb, or fails it under CI=true, when the process
// is not root or ip, nft or nsenter is missing.
func RequirePrivileges(tb testing.TB) {
	tb.Helper()
	netnstest.Require(tb, "ip", "nft", "nsenter")
}

// New creates the two namespaces and the veth pair between them. It skips
// the test without privileges (fails under CI=true). Everything is deleted
// when the test ends.
func New(tb testing.TB) *Env {
	tb.Helper()
	RequirePrivileges(tb)
	suffix := randSuffix(tb)
	e := &Env{t: tb, Box: "g0e-box-" + suffix, Upstream: "g0e-up-" + suffix, suffix: suffix}
	box := []netip.Prefix{netip.PrefixFrom(Box4, prefixLen4), netip.PrefixFrom(Box6, prefixLen6)}
	var up []netip.Prefix
	for _, a := range Upstream4 {
		up = append(up, netip.PrefixFrom(a, prefixLen4))
	}
	for _, a := range Upstream6 {
		up = append(up, netip.PrefixFrom(a, prefixLen6))
	}
	err := testbed.MakePair(e.Box, e.Upstream, box, up, func(ns string) {
		tb.Cleanup(func() {
			if err := testbed.DeleteNamespace(ns); err != nil {
				tb.Errorf("e2e: %v", err)
			}
		})
	})
	if err != nil {
		tb.Fatalf("e2e: %v", err)
	}
	return e
}

func randSuffix(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		tb.Fatalf("e2e: random name: %v", err)
	}
	return hex.EncodeToString(b)
}

// InBox runs fn on the calling goroutine, switched into the box namespace;
// sockets fn creates and processes it starts belong to the box.
func (e *Env) InBox(fn func()) {
	e.t.Helper()
	e.in(e.Box, fn)
}

// InUpstream runs fn on the calling goroutine, switched into the upstream
// namespace.
func (e *Env) InUpstream(fn func()) {
	e.t.Helper()
	e.in(e.Upstream, fn)
}

// in runs fn in the namespace ns (see [testbed.In]); fn may call
// t.FailNow.
func (e *Env) in(ns string, fn func()) {
	e.t.Helper()
	if err := testbed.In(ns, fn); err != nil {
		e.t.Fatalf("e2e: %v", err)
	}
}

// Listen listens in the upstream namespace; the listener is closed when
// the test ends.
func (e *Env) Listen(network, addr string) net.Listener {
	e.t.Helper()
	return e.listen(e.Upstream, network, addr)
}

// ListenBox listens in the box namespace, as the filter's proxies do (a
// stub proxy on 127.0.0.1:8080, say); closed when the test ends.
func (e *Env) ListenBox(network, addr string) net.Listener {
	e.t.Helper()
	return e.listen(e.Box, network, addr)
}

func (e *Env) listen(ns, network, addr string) net.Listener {
	e.t.Helper()
	var ln net.Listener
	var err error
	e.in(ns, func() { ln, err = net.Listen(network, addr) })
	if err != nil {
		e.t.Fatalf("e2e: listen %s %s in %s: %v", network, addr, ns, err)
	}
	e.t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// Echo starts a TCP echo server on addr in the upstream namespace: each
// connection gets back what it sends. It stops, and its connections are
// closed, when the test ends.
func (e *Env) Echo(network, addr string) net.Listener {
	e.t.Helper()
	ln := e.Listen(network, addr)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed at the end of the test
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Go(func() {
				_, _ = io.Copy(c, c)
				_ = c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			})
		}
	})
	e.t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln
}

// UDPRecorder is a UDP socket in the upstream namespace, made by
// [Env.RecordUDP], that records the datagrams reaching it and answers
// each with "pong".
type UDPRecorder struct {
	mu       sync.Mutex
	payloads []string
}

// udpReply is what a [UDPRecorder] answers.
var udpReply = []byte("pong")

// RecordUDP listens on addr in the upstream namespace, records each
// datagram's payload and answers it with "pong" from the address it was
// sent to. An unspecified address stands for every upstream address of
// its family, [::] for those of both families: each gets a socket of its
// own, so that the answer's source is right. It stops, its goroutines
// waited for, when the test ends.
func (e *Env) RecordUDP(tb testing.TB, addr netip.AddrPort) *UDPRecorder {
	tb.Helper()
	addrs := []netip.Addr{addr.Addr()}
	switch addr.Addr() {
	case netip.IPv4Unspecified():
		addrs = Upstream4
	case netip.IPv6Unspecified():
		addrs = append(append([]netip.Addr(nil), Upstream4...), Upstream6...)
	}
	r := &UDPRecorder{}
	var (
		wg    sync.WaitGroup
		conns []*net.UDPConn
	)
	tb.Cleanup(func() {
		for _, pc := range conns {
			_ = pc.Close()
		}
		wg.Wait()
	})
	for _, a := range addrs {
		laddr := netip.AddrPortFrom(a, addr.Port())
		var pc *net.UDPConn
		var err error
		e.InUpstream(func() { pc, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(laddr)) })
		if err != nil {
			tb.Fatalf("e2e: listen udp %s in %s: %v", laddr, e.Upstream, err)
		}
		conns = append(conns, pc)
		wg.Go(func() { r.serve(pc) })
	}
	return r
}

func (r *UDPRecorder) serve(pc *net.UDPConn) {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // an ICMP error reported on the socket, say
		}
		r.mu.Lock()
		r.payloads = append(r.payloads, string(buf[:n]))
		r.mu.Unlock()
		_, _ = pc.WriteToUDPAddrPort(udpReply, from)
	}
}

// Count returns the number of datagrams received so far.
func (r *UDPRecorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.payloads)
}

// Payloads returns a copy of the payloads received so far, in order.
func (r *UDPRecorder) Payloads() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.payloads...)
}

// Dial connects from the box namespace and returns the connection (closed
// when the test ends) or the dial error, for the test to judge.
func (e *Env) Dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	e.t.Helper()
	var c net.Conn
	var err error
	e.InBox(func() { c, err = net.DialTimeout(network, addr, timeout) })
	if err != nil {
		return nil, err
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c, nil
}

// RoundTrip writes msg to c and reads as many bytes back, within timeout:
// one exchange with an echo server.
func RoundTrip(c net.Conn, msg []byte, timeout time.Duration) ([]byte, error) {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return nil, err
	}
	return buf, c.SetDeadline(time.Time{})
}
