package sni_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/internal/e2e"
	"github.com/g0lab/g0efilter/policy"
	"github.com/g0lab/g0efilter/sni"
)

// recorder is an events.Sink that keeps what it is given.
type recorder struct {
	mu     sync.Mutex
	events []events.Event
	added  chan struct{}
}

func newRecorder() *recorder { return &recorder{added: make(chan struct{}, 1000)} }

func (r *recorder) Emit(e events.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	r.added <- struct{}{}
}

// wait returns the first n events, failing the test if they do not come
// within five seconds.
func (r *recorder) wait(t *testing.T, n int) []events.Event {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		r.mu.Lock()
		got := append([]events.Event(nil), r.events...)
		r.mu.Unlock()
		if len(got) >= n {
			return got[:n]
		}
		select {
		case <-r.added:
		case <-timeout:
			t.Fatalf("got %d events, want %d: %+v", len(got), n, got)
		}
	}
}

// resolverFunc adapts a function to sni.Resolver.
type resolverFunc func(ctx context.Context, host string) ([]netip.Addr, error)

func (f resolverFunc) LookupNetIP(ctx context.Context, host string) ([]netip.Addr, error) {
	return f(ctx, host)
}

// loopback resolves every name to 127.0.0.1.
var loopback = resolverFunc(func(context.Context, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
})

// harness is a proxy on loopback whose clients all "meant" to reach dst.
type harness struct {
	proxy  *sni.Proxy
	events *recorder
	addr   string // the proxy's listening address
	mu     sync.Mutex
	dst    netip.AddrPort
}

func allow(t *testing.T, domains ...string) *policy.Holder {
	t.Helper()
	return holder(t, &policy.Policy{Domains: domains})
}

// holder is the live policy p.
func holder(t *testing.T, p *policy.Policy) *policy.Holder {
	t.Helper()
	s, err := policy.Compile(p)
	require.NoError(t, err)
	var h policy.Holder
	h.Store(s)
	return &h
}

// startProxy serves p on loopback as proto until the test ends, and checks
// then that Serve returned and left no connection open.
func startProxy(t *testing.T, p *sni.Proxy, proto sni.Protocol, dst netip.AddrPort) *harness {
	t.Helper()
	h := &harness{proxy: p, events: newRecorder(), dst: dst}
	p.Events = h.events
	p.Host = "test-filter"
	p.OriginalDestination = func(net.Conn) (netip.AddrPort, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.dst, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	h.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln, proto) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "Serve")
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after its context ended")
		}
		assert.Zero(t, p.Stats().Active, "connections still open after Serve returned")
	})
	return h
}

// tlsBackend is a TLS server on loopback with a certificate for names. Each
// connection gets "served <server name>\n" and then an echo of its input.
func tlsBackend(t *testing.T, names ...string) (netip.AddrPort, *tls.Config) {
	t.Helper()
	ca, err := e2e.SharedCA()
	require.NoError(t, err)
	cert, err := ca.Issue(names...)
	require.NoError(t, err)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*cert}})
	require.NoError(t, err)
	serve(t, ln, func(c net.Conn) {
		tc := c.(*tls.Conn)
		if tc.Handshake() != nil {
			return
		}
		fmt.Fprintf(c, "served %s\n", tc.ConnectionState().ServerName)
		io.Copy(c, c)
	})
	return netip.MustParseAddrPort(ln.Addr().String()), &tls.Config{RootCAs: ca.Pool()}
}

// serve runs handle for each connection on ln until the test ends.
func serve(t *testing.T, ln net.Listener, handle func(net.Conn)) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
}

func dialTLS(t *testing.T, h *harness, cfg *tls.Config, name string) (*tls.Conn, error) {
	t.Helper()
	cfg = cfg.Clone()
	cfg.ServerName = name
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(&d, "tcp", h.addr, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

func readLine(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	return strings.TrimSuffix(line, "\n")
}

func TestProxyTLSAllowed(t *testing.T) {
	backend, cfg := tlsBackend(t, "api.example.com")
	h := startProxy(t, &sni.Proxy{Policy: allow(t, "*.example.com"), Resolver: loopback}, sni.TLS, backend)

	c, err := dialTLS(t, h, cfg, "API.Example.com.")
	require.NoError(t, err)
	// The destination sees the hello as the client sent it (crypto/tls
	// drops the trailing dot); only the decision uses the normal form.
	assert.Equal(t, "served API.Example.com", readLine(t, c))

	ev := h.events.wait(t, 1)[0]
	assert.Equal(t, events.Allowed, ev.Action)
	assert.Equal(t, events.HTTPS, ev.Component)
	assert.Equal(t, events.ReasonAllowlisted, ev.Reason)
	assert.Equal(t, "api.example.com", ev.Name)
	assert.Equal(t, "*.example.com", ev.Rule)
	assert.Equal(t, backend, ev.Destination)
	assert.Equal(t, "127.0.0.1", ev.Source.Addr().String())
	assert.Equal(t, "test-filter", ev.Host)
	assert.NotZero(t, ev.Flow)
	assert.Equal(t, "tcp", ev.Protocol)
}

// requireReset checks that the proxy ends c without forwarding anything.
func requireReset(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 1))
	require.Zero(t, n)
	require.Error(t, err)
	require.False(t, isTimeout(err), "connection still open: %v", err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestProxyTLSBlocked(t *testing.T) {
	backend, cfg := tlsBackend(t, "example.com", "evil.example.net", "sub.example.com")
	tests := []struct {
		name   string
		sni    string
		reason events.Reason
	}{
		{"not allowlisted", "evil.example.net", events.ReasonNotAllowlisted},
		{"apex of a wildcard", "example.com", events.ReasonNotAllowlisted},
		{"no server name", "", events.ReasonNoName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startProxy(t, &sni.Proxy{Policy: allow(t, "*.example.com"), Resolver: loopback}, sni.TLS, backend)
			cfg := cfg.Clone()
			if tt.sni == "" {
				cfg.InsecureSkipVerify = true
			}
			_, err := dialTLS(t, h, cfg, tt.sni)
			require.Error(t, err)
			ev := h.events.wait(t, 1)[0]
			assert.Equal(t, events.Blocked, ev.Action)
			assert.Equal(t, tt.reason, ev.Reason)
			assert.Equal(t, tt.sni, ev.Name)
			assert.Empty(t, ev.Rule)
			assert.Equal(t, uint64(1), h.proxy.Stats().Blocked)
		})
	}
}

func TestProxyGarbage(t *testing.T) {
	for _, proto := range []sni.Protocol{sni.TLS, sni.HTTP} {
		t.Run(proto.String(), func(t *testing.T) {
			h := startProxy(t, &sni.Proxy{Policy: allow(t, "*"), Destination: sni.TrustDestination}, proto,
				netip.MustParseAddrPort("127.0.0.1:1"))
			c, err := net.Dial("tcp", h.addr)
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Write([]byte("\x00\x01garbage that is neither TLS nor HTTP\r\n\r\n"))
			require.NoError(t, err)
			requireReset(t, c)
			ev := h.events.wait(t, 1)[0]
			assert.Equal(t, events.Blocked, ev.Action)
			assert.Equal(t, events.ReasonMalformed, ev.Reason)
			assert.NotEmpty(t, ev.Detail)
		})
	}
}

// rawBackend accepts connections and sends back what they sent, after
// recording the first n bytes of each.
func rawBackend(t *testing.T, n int) (netip.AddrPort, chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	got := make(chan []byte, 10)
	serve(t, ln, func(c net.Conn) {
		b := make([]byte, n)
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		got <- b
		c.Write(b)
		io.Copy(c, c)
	})
	return netip.MustParseAddrPort(ln.Addr().String()), got
}

func TestProxyHelloOneByteAtATime(t *testing.T) {
	hello, err := os.ReadFile("testdata/hello-tls13-mlkem.bin")
	require.NoError(t, err)
	backend, got := rawBackend(t, len(hello))
	h := startProxy(t, &sni.Proxy{Policy: allow(t, "pq.example.com"), Resolver: loopback}, sni.TLS, backend)

	c, err := net.Dial("tcp", h.addr)
	require.NoError(t, err)
	defer c.Close()
	c.(*net.TCPConn).SetNoDelay(true)
	for i := range hello {
		_, err := c.Write(hello[i : i+1])
		require.NoError(t, err)
	}
	select {
	case b := <-got:
		assert.Equal(t, hello, b, "the destination must see the hello unchanged")
	case <-time.After(5 * time.Second):
		t.Fatal("the hello did not reach the destination")
	}
	ev := h.events.wait(t, 1)[0]
	assert.Equal(t, events.Allowed, ev.Action, ev.Detail)
	assert.Equal(t, "pq.example.com", ev.Name)
}

func TestProxySilentClientCutOff(t *testing.T) {
	for _, proto := range []sni.Protocol{sni.TLS, sni.HTTP} {
		t.Run(proto.String(), func(t *testing.T) {
			p := &sni.Proxy{Policy: allow(t, "*"), HelloTimeout: 200 * time.Millisecond}
			h := startProxy(t, p, proto, netip.MustParseAddrPort("127.0.0.1:1"))
			c, err := net.Dial("tcp", h.addr)
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Write([]byte{0x16, 0x03}[:map[sni.Protocol]int{sni.TLS: 2, sni.HTTP: 0}[proto]])
			require.NoError(t, err)
			requireReset(t, c)
			ev := h.events.wait(t, 1)[0]
			assert.Equal(t, events.Blocked, ev.Action)
			assert.Equal(t, events.ReasonTimeout, ev.Reason)
			assert.Contains(t, ev.Detail, "200ms")
		})
	}
}

func TestProxyDestinationCheck(t *testing.T) {
	backend, cfg := tlsBackend(t, "cdn.example.com")
	elsewhere := resolverFunc(func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("198.18.0.9"), netip.MustParseAddr("fd00::9")}, nil
	})
	failing := resolverFunc(func(context.Context, string) ([]netip.Addr, error) {
		return nil, errors.New("upstream down")
	})

	t.Run("verify refuses an address the name does not resolve to", func(t *testing.T) {
		h := startProxy(t, &sni.Proxy{Policy: allow(t, "cdn.example.com"), Resolver: elsewhere}, sni.TLS, backend)
		_, err := dialTLS(t, h, cfg, "cdn.example.com")
		require.Error(t, err)
		ev := h.events.wait(t, 1)[0]
		assert.Equal(t, events.Blocked, ev.Action)
		assert.Equal(t, events.ReasonWrongAddress, ev.Reason)
		assert.Equal(t, "cdn.example.com", ev.Rule)
		assert.Contains(t, ev.Detail, "198.18.0.9, fd00::9")
	})
	t.Run("verify fails closed when resolving fails", func(t *testing.T) {
		h := startProxy(t, &sni.Proxy{Policy: allow(t, "cdn.example.com"), Resolver: failing}, sni.TLS, backend)
		_, err := dialTLS(t, h, cfg, "cdn.example.com")
		require.Error(t, err)
		ev := h.events.wait(t, 1)[0]
		assert.Equal(t, events.ReasonResolve, ev.Reason)
		assert.Contains(t, ev.Detail, "upstream down")
	})
	t.Run("verify without a resolver fails closed", func(t *testing.T) {
		h := startProxy(t, &sni.Proxy{Policy: allow(t, "cdn.example.com")}, sni.TLS, backend)
		_, err := dialTLS(t, h, cfg, "cdn.example.com")
		require.Error(t, err)
		assert.Equal(t, events.ReasonResolve, h.events.wait(t, 1)[0].Reason)
	})
	t.Run("trust forwards to the address as given", func(t *testing.T) {
		p := &sni.Proxy{Policy: allow(t, "cdn.example.com"), Resolver: elsewhere, Destination: sni.TrustDestination}
		h := startProxy(t, p, sni.TLS, backend)
		c, err := dialTLS(t, h, cfg, "cdn.example.com")
		require.NoError(t, err)
		assert.Equal(t, "served cdn.example.com", readLine(t, c))
	})
	t.Run("dial-name ignores the address the client gave", func(t *testing.T) {
		p := &sni.Proxy{Policy: allow(t, "cdn.example.com"), Resolver: loopback, Destination: sni.DialName}
		// The client "connected" to a closed port of another address; the
		// proxy dials what the name resolves to, on the original port.
		h := startProxy(t, p, sni.TLS, netip.AddrPortFrom(netip.MustParseAddr("198.18.0.9"), backend.Port()))
		c, err := dialTLS(t, h, cfg, "cdn.example.com")
		require.NoError(t, err)
		assert.Equal(t, "served cdn.example.com", readLine(t, c))
		ev := h.events.wait(t, 1)[0]
		assert.Equal(t, events.Allowed, ev.Action)
		assert.Equal(t, "dialled by name", ev.Detail)
	})
}

func TestProxyDialFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	_, cfg := tlsBackend(t, "a.example")
	h := startProxy(t, &sni.Proxy{Policy: allow(t, "a.example"), Resolver: loopback}, sni.TLS, closed)
	_, err = dialTLS(t, h, cfg, "a.example")
	require.Error(t, err)
	ev := h.events.wait(t, 1)[0]
	assert.Equal(t, events.Error, ev.Action)
	assert.Equal(t, events.ReasonDial, ev.Reason)
	assert.Equal(t, "a.example", ev.Rule)
	assert.Contains(t, ev.Detail, "refused")
}

// transfer sends size random bytes each way through c at the same time and
// checks that what comes back is what the echo server got.
func transfer(t *testing.T, c net.Conn, size int) {
	t.Helper()
	src := rand.NewChaCha8([32]byte{1})
	sent := sha256.New()
	var wg sync.WaitGroup
	wg.Go(func() {
		_, err := io.CopyN(io.MultiWriter(c, sent), src, int64(size))
		assert.NoError(t, err)
		c.(interface{ CloseWrite() error }).CloseWrite()
	})
	got := sha256.New()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := io.Copy(got, c)
	wg.Wait()
	require.NoError(t, err)
	require.Equal(t, int64(size), n)
	require.Equal(t, sent.Sum(nil), got.Sum(nil), "the bytes that came back differ from those sent")
}

func TestProxyLargeTransferAndHalfClose(t *testing.T) {
	hello, err := os.ReadFile("testdata/hello-tls12.bin")
	require.NoError(t, err)
	backend, _ := rawBackend(t, len(hello))
	h := startProxy(t, &sni.Proxy{Policy: allow(t, "tls12.example.com"), Resolver: loopback}, sni.TLS, backend)

	c, err := net.Dial("tcp", h.addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write(hello)
	require.NoError(t, err)
	echoed := make([]byte, len(hello))
	_, err = io.ReadFull(c, echoed)
	require.NoError(t, err)
	require.Equal(t, hello, echoed)

	const size = 32 << 20
	transfer(t, c, size)
	st := h.proxy.Stats()
	assert.Equal(t, uint64(len(hello)+size), st.BytesUp)
	assert.Equal(t, uint64(len(hello)+size), st.BytesDown)
}

func TestProxyIdleTimeout(t *testing.T) {
	backend, cfg := tlsBackend(t, "a.example")
	p := &sni.Proxy{Policy: allow(t, "a.example"), Resolver: loopback, IdleTimeout: 150 * time.Millisecond}
	h := startProxy(t, p, sni.TLS, backend)
	c, err := dialTLS(t, h, cfg, "a.example")
	require.NoError(t, err)
	assert.Equal(t, "served a.example", readLine(t, c))

	// A connection that keeps talking outlives the timeout several times.
	for range 5 {
		time.Sleep(100 * time.Millisecond)
		_, err := c.Write([]byte("ping\n"))
		require.NoError(t, err)
		assert.Equal(t, "ping", readLine(t, c))
	}
	// One that stops is closed within twice the timeout.
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	require.Error(t, err)
	require.False(t, isTimeout(err))
	assert.Less(t, time.Since(start), time.Second)
}

func TestProxyShutdownClosesConnections(t *testing.T) {
	backend, cfg := tlsBackend(t, "a.example")
	p := &sni.Proxy{Policy: allow(t, "a.example"), Resolver: loopback}
	p.OriginalDestination = func(net.Conn) (netip.AddrPort, error) { return backend, nil }
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln, sni.TLS) }()

	cfg.ServerName = "a.example"
	c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, "served a.example", readLine(t, c))
	require.Equal(t, int64(1), p.Stats().Active)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	assert.Zero(t, p.Stats().Active)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	assert.Error(t, err)
	assert.False(t, isTimeout(err), "the proxied connection must be closed")

	// No goroutine or descriptor of the proxy outlives it, but for the
	// splice(2) pipes kept for reuse: at most 2×GOMAXPROCS, two
	// descriptors each.
	c.Close()
	fds += 4 * runtime.GOMAXPROCS(0)
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines || openFDs(t) > fds {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines %d (were %d), descriptors %d (limit %d)",
				runtime.NumGoroutine(), goroutines, openFDs(t), fds)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dyingListener hands out the connections of its Listener until die is
// closed, and from then on fails every Accept with errDead, as a listener
// whose socket broke does.
type dyingListener struct {
	net.Listener
	die chan struct{}
}

var errDead = errors.New("listener is dead")

func (l *dyingListener) Accept() (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := l.Listener.Accept()
		got <- result{c, err}
	}()
	select {
	case r := <-got:
		return r.c, r.err
	case <-l.die:
		return nil, errDead
	}
}

func TestProxyServeReturnsAcceptErrorWithConnectionsOpen(t *testing.T) {
	backend, cfg := tlsBackend(t, "a.example")
	p := &sni.Proxy{Policy: allow(t, "a.example"), Resolver: loopback}
	p.OriginalDestination = func(net.Conn) (netip.AddrPort, error) { return backend, nil }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := &dyingListener{Listener: ln, die: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- p.Serve(context.Background(), l, sni.TLS) }()

	cfg.ServerName = "a.example"
	c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, "served a.example", readLine(t, c))

	// The proxied connection stays open (the idle timeout is 10 minutes)
	// while the listener dies: Serve reports it at once, not when the
	// connection ends.
	close(l.die)
	select {
	case err := <-done:
		require.ErrorIs(t, err, errDead)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return the accept error while a connection was open")
	}
	assert.Zero(t, p.Stats().Active, "Serve returned before its connections ended")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	assert.Error(t, err)
	assert.False(t, isTimeout(err), "the proxied connection must be closed")
}

// copyBackend accepts connections and, after reading a hello of n bytes,
// sends back what they send. It copies through memory, so that it holds no
// splice(2) pipes of its own.
func copyBackend(t *testing.T, n int) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	serve(t, ln, func(c net.Conn) {
		buf := make([]byte, 32<<10)
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return
		}
		for {
			k, err := c.Read(buf)
			if _, werr := c.Write(buf[:k]); err != nil || werr != nil {
				return
			}
		}
	})
	return netip.MustParseAddrPort(ln.Addr().String())
}

// After a burst of connections, the proxy's descriptors come back to what
// they were within moments, not when the garbage collector gets to them.
func TestProxyBurstLeavesNoDescriptors(t *testing.T) {
	hello, err := os.ReadFile("testdata/hello-tls12.bin")
	require.NoError(t, err)
	backend := copyBackend(t, len(hello))
	h := startProxy(t, &sni.Proxy{Policy: allow(t, "tls12.example.com"), Resolver: loopback}, sni.TLS, backend)
	// A process whose heap is steady may go minutes without a collection:
	// nothing the proxy holds may wait for one.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	before := openFDs(t)

	const n, size = 200, 64 << 10
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	for i := range conns {
		c, err := net.Dial("tcp", h.addr)
		require.NoError(t, err)
		conns[i] = c
		wg.Go(func() {
			c.SetDeadline(time.Now().Add(20 * time.Second))
			msg := append(append([]byte(nil), hello...), make([]byte, size)...)
			if _, err := c.Write(msg); !assert.NoError(t, err) {
				return
			}
			_, err := io.ReadFull(c, make([]byte, size))
			assert.NoError(t, err, "echo through the proxy")
		})
	}
	wg.Wait()
	require.Equal(t, int64(n), h.proxy.Stats().Active, "all connections open at once")
	for _, c := range conns {
		c.Close()
	}

	// The proxy keeps at most 2×GOMAXPROCS idle pipes, two descriptors each.
	limit := before + 4*runtime.GOMAXPROCS(0) + 8
	deadline := time.Now().Add(2 * time.Second)
	for h.proxy.Stats().Active != 0 || openFDs(t) > limit {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, %d descriptors (were %d, limit %d)",
				h.proxy.Stats().Active, openFDs(t), before, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(fds)
}

// httpBackend answers every request with "<host> <method> <path> <body
// sha256>" and keeps connections alive.
func httpBackend(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sum := sha256.New()
		n, _ := io.Copy(sum, r.Body)
		fmt.Fprintf(w, "%s %s %s %d %x", r.Host, r.Method, r.URL.Path, n, sum.Sum(nil))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return netip.MustParseAddrPort(ln.Addr().String())
}

func readResponse(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestProxyHTTPKeepAlive(t *testing.T) {
	backend := httpBackend(t)
	h := startProxy(t, &sni.Proxy{Policy: allow(t, "a.example", "b.example"), Resolver: loopback}, sni.HTTP, backend)
	c, err := net.Dial("tcp", h.addr)
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)

	body := strings.Repeat("x", 100000)
	empty := sha256.Sum256(nil)
	full := sha256.Sum256([]byte(body))
	// Three requests in one write (pipelined), with a body by length and a
	// chunked one, then a request for another allowed host.
	_, err = fmt.Fprintf(c, "GET /one HTTP/1.1\r\nHost: a.example\r\n\r\n"+
		"POST /two HTTP/1.1\r\nHost: A.example.\r\nContent-Length: %d\r\n\r\n%s"+
		"PUT /three HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"5;ext=1\r\nxxxxx\r\n%x\r\n%s\r\n0\r\nTrailer: t\r\n\r\n",
		len(body), body, len(body)-5, body[5:])
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("a.example GET /one 0 %x", empty), readResponse(t, br))
	assert.Equal(t, fmt.Sprintf("A.example. POST /two %d %x", len(body), full), readResponse(t, br))
	assert.Equal(t, fmt.Sprintf("a.example PUT /three %d %x", len(body), full), readResponse(t, br))
	_, err = fmt.Fprintf(c, "GET /four HTTP/1.1\r\nHost: b.example\r\n\r\n")
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("b.example GET /four 0 %x", empty), readResponse(t, br))

	// A request for a host that is not allowed ends the connection before
	// anything of it reaches the server.
	_, err = fmt.Fprintf(c, "GET /five HTTP/1.1\r\nHost: evil.example\r\n\r\n")
	require.NoError(t, err)
	_, err = br.ReadByte()
	require.Error(t, err)

	evs := h.events.wait(t, 5)
	for i, name := range []string{"a.example", "a.example", "a.example", "b.example"} {
		assert.Equal(t, events.Allowed, evs[i].Action, i)
		assert.Equal(t, name, evs[i].Name, i)
		assert.Equal(t, events.HTTP, evs[i].Component, i)
		assert.Equal(t, evs[0].Flow, evs[i].Flow, "one connection, one flow")
	}
	assert.Equal(t, events.Blocked, evs[4].Action)
	assert.Equal(t, "evil.example", evs[4].Name)
	assert.Equal(t, events.ReasonNotAllowlisted, evs[4].Reason)
	assert.Equal(t, evs[0].Flow, evs[4].Flow)
}

// After a response, a kept-alive connection is closed when the next
// request head does not arrive in full within HelloTimeout of its first
// byte, or when nothing arrives for the idle timeout.
func TestProxyHTTPNextRequestBounded(t *testing.T) {
	backend := httpBackend(t)
	tests := []struct {
		name         string
		hello, idle  time.Duration
		send         func(net.Conn) // after the first response, until it fails
		reason       events.Reason  // of the event for the second request; "" for none
		closedWithin time.Duration
	}{
		{
			name: "one byte then silence", hello: 300 * time.Millisecond, idle: time.Minute,
			send:   func(c net.Conn) { c.Write([]byte("G")) },
			reason: events.ReasonTimeout, closedWithin: 3 * time.Second,
		},
		{
			name: "a byte at a time", hello: 300 * time.Millisecond, idle: time.Minute,
			send: func(c net.Conn) {
				head := "GET / HTTP/1.1\r\nHost: a.example\r\nX-Pad: "
				for i := 0; ; i++ {
					b := byte('a')
					if i < len(head) {
						b = head[i]
					}
					if _, err := c.Write([]byte{b}); err != nil {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			},
			reason: events.ReasonTimeout, closedWithin: 3 * time.Second,
		},
		{
			name: "nothing", hello: time.Minute, idle: 200 * time.Millisecond,
			send: func(net.Conn) {}, closedWithin: 3 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &sni.Proxy{Policy: allow(t, "a.example"), Resolver: loopback, HelloTimeout: tt.hello, IdleTimeout: tt.idle}
			h := startProxy(t, p, sni.HTTP, backend)
			c, err := net.Dial("tcp", h.addr)
			require.NoError(t, err)
			defer c.Close()
			_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
			require.NoError(t, err)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(c)
			assert.Contains(t, readResponse(t, br), "a.example GET /")

			start := time.Now()
			go tt.send(c)
			c.SetReadDeadline(time.Now().Add(tt.closedWithin))
			_, err = br.ReadByte()
			require.Error(t, err)
			require.False(t, isTimeout(err), "connection still open after %v", tt.closedWithin)
			for h.proxy.Stats().Active != 0 {
				require.Less(t, time.Since(start), tt.closedWithin, "the proxy still handles the connection")
				time.Sleep(10 * time.Millisecond)
			}

			if tt.reason != "" {
				ev := h.events.wait(t, 2)[1]
				assert.Equal(t, events.Blocked, ev.Action)
				assert.Equal(t, tt.reason, ev.Reason)
				assert.Contains(t, ev.Detail, tt.hello.String())
			}
		})
	}
}

func TestProxyHTTPRefusals(t *testing.T) {
	backend := httpBackend(t)
	tests := []struct {
		name   string
		req    string
		reason events.Reason
	}{
		{"absolute form disagrees with Host", "GET http://evil.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", events.ReasonHostMismatch},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", events.ReasonNoName},
		{"CONNECT", "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", events.ReasonUnsupported},
		{"upgrade", "GET / HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", events.ReasonUnsupported},
		{"ambiguous body", "POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", events.ReasonMalformed},
		{"not allowed", "GET / HTTP/1.1\r\nHost: b.example\r\n\r\n", events.ReasonNotAllowlisted},
		{"IP literal", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", events.ReasonNotAllowlisted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startProxy(t, &sni.Proxy{Policy: allow(t, "a.example"), Resolver: loopback}, sni.HTTP, backend)
			c, err := net.Dial("tcp", h.addr)
			require.NoError(t, err)
			defer c.Close()
			_, err = io.WriteString(c, tt.req)
			require.NoError(t, err)
			requireReset(t, c)
			ev := h.events.wait(t, 1)[0]
			assert.Equal(t, events.Blocked, ev.Action)
			assert.Equal(t, tt.reason, ev.Reason, ev.Detail)
		})
	}
}

func TestProxyHTTPBadChunk(t *testing.T) {
	backend := httpBackend(t)
	for _, chunk := range []string{"5 \r\nxxxxx\r\n", "5\nxxxxx\r\n", "5\r\nxxxxxy\r\n", "-5\r\n", "\r\n"} {
		t.Run(fmt.Sprintf("%q", chunk), func(t *testing.T) {
			h := startProxy(t, &sni.Proxy{Policy: allow(t, "a.example"), Resolver: loopback}, sni.HTTP, backend)
			c, err := net.Dial("tcp", h.addr)
			require.NoError(t, err)
			defer c.Close()
			_, err = io.WriteString(c, "POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n"+chunk+"0\r\n\r\n")
			require.NoError(t, err)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			b, err := io.ReadAll(c)
			assert.Empty(t, b, "no response: the request must not complete")
			if err != nil {
				assert.False(t, isTimeout(err))
			}
		})
	}
}

// emfileListener fails every Accept with EMFILE, as a process out of file
// descriptors does, and counts the calls.
type emfileListener struct {
	net.Listener
	mu    sync.Mutex
	calls int
}

func (l *emfileListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.calls++
	l.mu.Unlock()
	return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

func TestProxyAcceptBacksOffOnEMFILE(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := &emfileListener{Listener: ln}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	p := &sni.Proxy{}
	require.NoError(t, p.Serve(ctx, l, sni.TLS), "a shortage of descriptors is not fatal")
	// Waiting 5, 10, 20, 40, 80 and 160ms fits about seven tries in 300ms;
	// a loop that spins would make many thousands.
	l.mu.Lock()
	defer l.mu.Unlock()
	assert.Less(t, l.calls, 15)
	assert.GreaterOrEqual(t, l.calls, 3)
	assert.Equal(t, uint64(l.calls), p.Stats().AcceptWaits, "each wait is counted")
}

// A dial that fails for want of descriptors is tried again after a short
// wait: the client is served once they free up, not reset.
func TestProxyDialWaitsOnEMFILE(t *testing.T) {
	backend, cfg := tlsBackend(t, "a.example")
	var mu sync.Mutex
	fails := 3
	var d net.Dialer
	p := &sni.Proxy{Policy: allow(t, "a.example"), Resolver: loopback,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			defer mu.Unlock()
			if fails > 0 {
				fails--
				return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("socket", syscall.EMFILE)}
			}
			return d.DialContext(ctx, network, addr)
		}}
	h := startProxy(t, p, sni.TLS, backend)
	c, err := dialTLS(t, h, cfg, "a.example")
	require.NoError(t, err)
	assert.Equal(t, "served a.example", readLine(t, c))
	assert.Zero(t, p.Stats().Errors)
	mu.Lock()
	assert.Zero(t, fails)
	mu.Unlock()
}

// withDeny is a policy that allows domains and denies denyIPs and
// denyDomains.
func withDeny(t *testing.T, domains, denyIPs, denyDomains []string) *policy.Holder {
	t.Helper()
	p := &policy.Policy{Domains: domains, DenyDomains: denyDomains}
	for _, a := range denyIPs {
		ip := netip.MustParseAddr(a)
		p.DenyIPs = append(p.DenyIPs, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return holder(t, p)
}

// The denylist wins: a denied name under an allowed wildcard, and an
// allowed name at a denied address (the destination the client gave, or,
// dialling by name, every address the name resolves to), are refused with
// reason denied and the entry that denied them.
func TestProxyDenylist(t *testing.T) {
	backend, cfg := tlsBackend(t, "ok.example.com", "bad.example.com")
	t.Run("name", func(t *testing.T) {
		h := startProxy(t, &sni.Proxy{Policy: withDeny(t, []string{"*.example.com"}, []string{"198.18.9.9"}, []string{"bad.example.com"}),
			Resolver: loopback}, sni.TLS, backend)
		_, err := dialTLS(t, h, cfg, "bad.example.com")
		require.Error(t, err)
		ev := h.events.wait(t, 1)[0]
		assert.Equal(t, events.Blocked, ev.Action)
		assert.Equal(t, events.ReasonDenied, ev.Reason)
		assert.Equal(t, "bad.example.com", ev.Rule)
		c, err := dialTLS(t, h, cfg, "ok.example.com")
		require.NoError(t, err, "an allowed name beside a denied one")
		assert.Equal(t, "served ok.example.com", readLine(t, c))
	})
	t.Run("destination", func(t *testing.T) {
		pol := withDeny(t, []string{"*.example.com"}, []string{backend.Addr().String()}, []string{"bad.example.com"})
		for _, d := range []sni.DestinationCheck{sni.VerifyDestination, sni.TrustDestination, sni.DialName} {
			h := startProxy(t, &sni.Proxy{Policy: pol, Resolver: loopback, Destination: d}, sni.TLS, backend)
			_, err := dialTLS(t, h, cfg, "ok.example.com")
			require.Error(t, err, "%v", d)
			ev := h.events.wait(t, 1)[0]
			assert.Equal(t, events.ReasonDenied, ev.Reason, "%v", d)
			assert.Equal(t, netip.PrefixFrom(backend.Addr(), 32).String(), ev.Rule, "%v", d)
		}
	})
}

// TestProxyTLSPorts checks HostPorts and the policy's entries with ports:
// a plain name is allowed on HostPorts only, a name with a port on that
// port.
func TestProxyTLSPorts(t *testing.T) {
	backend, cfg := tlsBackend(t, "api.example.com", "www.example.org")
	port := backend.Port()
	pol := holder(t, &policy.Policy{
		Domains:   []string{"www.example.org"},
		NamePorts: []policy.NameRule{{Proto: policy.AnyProto, Pattern: "*.example.com", Ports: policy.Ports{First: port, Last: port}}},
	})
	tests := []struct {
		sni, rule string
		allowed   bool
	}{
		{"api.example.com", fmt.Sprintf("*.example.com:%d", port), true},
		{"www.example.org", "www.example.org", false}, // allowed on 443 only
	}
	for _, tt := range tests {
		t.Run(tt.sni, func(t *testing.T) {
			h := startProxy(t, &sni.Proxy{Policy: pol, Resolver: loopback, HostPorts: []uint16{443}}, sni.TLS, backend)
			c, err := dialTLS(t, h, cfg, tt.sni)
			ev := h.events.wait(t, 1)[0]
			assert.Equal(t, tt.rule, ev.Rule)
			if !tt.allowed {
				require.Error(t, err)
				assert.Equal(t, events.Blocked, ev.Action)
				assert.Equal(t, events.ReasonNotAllowlisted, ev.Reason)
				assert.Equal(t, "www.example.org allows port 443 only", ev.Detail)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "served "+tt.sni, readLine(t, c))
			assert.Equal(t, events.Allowed, ev.Action)
		})
	}
}

// TestProxyNoOriginalDestination: a connection made to the proxy directly
// is a knock on a local service; a destination that cannot be read is an
// error, not the client's malformed data. Both are reset.
func TestProxyNoOriginalDestination(t *testing.T) {
	for _, tt := range []struct {
		err    error
		action events.Action
		reason events.Reason
	}{
		{sni.ErrNotRedirected, events.Blocked, events.ReasonLocalService},
		{errors.New("getsockopt: bad file descriptor"), events.Error, events.ReasonNoDestination},
	} {
		t.Run(string(tt.reason), func(t *testing.T) {
			rec := newRecorder()
			p := &sni.Proxy{Policy: allow(t, "*"), Destination: sni.TrustDestination, Events: rec,
				OriginalDestination: func(net.Conn) (netip.AddrPort, error) { return netip.AddrPort{}, tt.err }}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- p.Serve(ctx, ln, sni.TLS) }()
			defer func() { cancel(); require.NoError(t, <-done) }()
			// The reset may come before the dial returns.
			if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
				defer c.Close()
				requireReset(t, c)
			}
			ev := rec.wait(t, 1)[0]
			assert.Equal(t, tt.action, ev.Action)
			assert.Equal(t, tt.reason, ev.Reason)
			assert.Equal(t, tt.err.Error(), ev.Detail)
		})
	}
}

func TestServeUnknownProtocolClosesListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var p sni.Proxy
	require.Error(t, p.Serve(context.Background(), ln, sni.Protocol(9)))
	_, err = ln.Accept()
	assert.ErrorIs(t, err, net.ErrClosed, "Serve closes ln, as its doc says")
}

// TestProxyHTTPHeadDripped: a request head that arrives a byte at a time
// is decided once whole (its end, "\r\n\r\n" or "\n\n", may fall across
// reads), and one that goes wrong early is refused before it ends.
func TestProxyHTTPHeadDripped(t *testing.T) {
	backend := httpBackend(t)
	for _, head := range []string{
		"GET /drip HTTP/1.1\r\nHost: a.example\r\nX-Pad: " + strings.Repeat("p", 300) + "\r\n\r\n",
		"GET /drip HTTP/1.1\nHost: a.example\n\n",
	} {
		h := startProxy(t, &sni.Proxy{Policy: allow(t, "a.example"), Resolver: loopback}, sni.HTTP, backend)
		c, err := net.Dial("tcp", h.addr)
		require.NoError(t, err)
		defer c.Close()
		c.(*net.TCPConn).SetNoDelay(true)
		for i := range len(head) {
			_, err := c.Write([]byte{head[i]})
			require.NoError(t, err)
			if i%8 == 0 {
				time.Sleep(time.Millisecond) // let some bytes arrive apart
			}
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		assert.Contains(t, readResponse(t, bufio.NewReader(c)), "a.example GET /drip")
	}

	h := startProxy(t, &sni.Proxy{Policy: allow(t, "a.example"), Resolver: loopback}, sni.HTTP, backend)
	c, err := net.Dial("tcp", h.addr)
	require.NoError(t, err)
	defer c.Close()
	for _, b := range []byte("G\x00T / HTTP/1.1\r\nHost: a.ex") {
		if _, err := c.Write([]byte{b}); err != nil {
			break // refused already
		}
		time.Sleep(time.Millisecond)
	}
	requireReset(t, c)
	assert.Equal(t, events.ReasonMalformed, h.events.wait(t, 1)[0].Reason)
}
