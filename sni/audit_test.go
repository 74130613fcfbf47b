package sni_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/policy"
	"github.com/g0lab/g0efilter/sni"
)

var _ sni.Auditor = (*policy.Holder)(nil)

// auditPolicy is a live policy whose mode the test switches.
type auditPolicy struct {
	*policy.Holder
	audit atomic.Bool
}

func (p *auditPolicy) Audit() bool { return p.audit.Load() }

func audited(h *policy.Holder, on bool) *auditPolicy {
	p := &auditPolicy{Holder: h}
	p.audit.Store(on)
	return p
}

// settled waits until the proxy handles no connection and returns every
// event it emitted.
func (h *harness) settled(t *testing.T) []events.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.proxy.Stats().Active != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open", h.proxy.Stats().Active)
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.events.mu.Lock()
	defer h.events.mu.Unlock()
	return append([]events.Event(nil), h.events.events...)
}

// exchange is what a client says on a connection to the proxy, and what
// it hears back.
type exchange func(c net.Conn) (string, error)

// tlsLine shakes hands for name and returns the server's first line.
func tlsLine(cfg *tls.Config, name string) exchange {
	return func(c net.Conn) (string, error) {
		cfg := cfg.Clone()
		cfg.ServerName = name
		cfg.InsecureSkipVerify = name == ""
		line, err := bufio.NewReader(tls.Client(c, cfg)).ReadString('\n')
		return strings.TrimSuffix(line, "\n"), err
	}
}

// httpGet sends req and returns the body of the response.
func httpGet(req string) exchange {
	return func(c net.Conn) (string, error) {
		if _, err := io.WriteString(c, req); err != nil {
			return "", err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
}

// echo sends b and returns as many bytes as it reads back.
func echo(b string) exchange {
	return func(c net.Conn) (string, error) {
		if _, err := io.WriteString(c, b); err != nil {
			return "", err
		}
		got := make([]byte, len(b))
		_, err := io.ReadFull(c, got)
		return string(got), err
	}
}

// TestProxyAudit runs each refusal of the proxies in audit mode, where the
// client reaches its destination and the refusal is one would-block event,
// and in enforce mode, where it is reset with one blocked event that says
// the same.
func TestProxyAudit(t *testing.T) {
	tlsDst, tlsCfg := tlsBackend(t, "evil.example.net", "bad.example.com", "ok.example.com")
	httpDst := httpBackend(t)
	elsewhere := resolverFunc(func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("198.18.0.9")}, nil
	})
	failing := resolverFunc(func(context.Context, string) ([]netip.Addr, error) {
		return nil, errors.New("upstream down")
	})
	const garbage = "\x00\x01garbage that is neither TLS nor HTTP\r\n\r\n"
	// raw is a backend that echoes what it is sent once it has all of b.
	raw := func(b string) netip.AddrPort {
		dst, _ := rawBackend(t, len(b))
		return dst
	}
	allowed := allow(t, "*.example.com", "a.example")
	denyName := withDeny(t, []string{"*.example.com", "a.example"}, nil, []string{"bad.example.com", "bad.example"})
	denyDst := withDeny(t, []string{"*.example.com", "a.example"}, []string{"127.0.0.1"}, nil)
	upgrade := "GET / HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"
	connect := "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n\x16\x03\x01 tunnelled"

	tests := []struct {
		name     string
		proto    sni.Protocol
		policy   *policy.Holder
		resolver sni.Resolver // loopback if nil
		dst      netip.AddrPort
		talk     exchange
		want     string // what the client hears in audit mode, as a prefix
		reason   events.Reason
	}{
		{"tls not allowlisted", sni.TLS, allowed, nil, tlsDst, tlsLine(tlsCfg, "evil.example.net"), "served evil.example.net", events.ReasonNotAllowlisted},
		{"tls denied name", sni.TLS, denyName, nil, tlsDst, tlsLine(tlsCfg, "bad.example.com"), "served bad.example.com", events.ReasonDenied},
		{"tls denied destination", sni.TLS, denyDst, nil, tlsDst, tlsLine(tlsCfg, "ok.example.com"), "served ok.example.com", events.ReasonDenied},
		{"tls no server name", sni.TLS, allowed, nil, tlsDst, tlsLine(tlsCfg, ""), "served ", events.ReasonNoName},
		{"tls wrong address", sni.TLS, allowed, elsewhere, tlsDst, tlsLine(tlsCfg, "ok.example.com"), "served ok.example.com", events.ReasonWrongAddress},
		{"tls resolve failed", sni.TLS, allowed, failing, tlsDst, tlsLine(tlsCfg, "ok.example.com"), "served ok.example.com", events.ReasonResolve},
		{"tls not TLS", sni.TLS, allowed, nil, raw(garbage), echo(garbage), garbage, events.ReasonMalformed},
		{"tls timeout", sni.TLS, allowed, nil, raw("\x16\x03"), echo("\x16\x03"), "\x16\x03", events.ReasonTimeout},

		{"http not allowlisted", sni.HTTP, allowed, nil, httpDst, httpGet("GET /x HTTP/1.1\r\nHost: b.example\r\n\r\n"), "b.example GET /x 0", events.ReasonNotAllowlisted},
		{"http denied name", sni.HTTP, denyName, nil, httpDst, httpGet("GET /x HTTP/1.1\r\nHost: bad.example\r\n\r\n"), "bad.example GET /x 0", events.ReasonDenied},
		{"http denied destination", sni.HTTP, denyDst, nil, httpDst, httpGet("GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n"), "a.example GET /x 0", events.ReasonDenied},
		{"http no host", sni.HTTP, allowed, nil, httpDst, httpGet("GET /x HTTP/1.0\r\n\r\n"), " GET /x 0", events.ReasonNoName},
		{"http host mismatch", sni.HTTP, allowed, nil, httpDst, httpGet("GET http://evil.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n"), "evil.example GET /x 0", events.ReasonHostMismatch},
		{"http wrong address", sni.HTTP, allowed, elsewhere, httpDst, httpGet("GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n"), "a.example GET /x 0", events.ReasonWrongAddress},
		{"http resolve failed", sni.HTTP, allowed, failing, httpDst, httpGet("GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n"), "a.example GET /x 0", events.ReasonResolve},
		{"http not HTTP", sni.HTTP, allowed, nil, raw(garbage), echo(garbage), garbage, events.ReasonMalformed},
		{"http ambiguous body", sni.HTTP, allowed, nil,
			raw("POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
			echo("POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
			"POST / HTTP/1.1", events.ReasonMalformed},
		{"http timeout", sni.HTTP, allowed, nil, raw("GET / HT"), echo("GET / HT"), "GET / HT", events.ReasonTimeout},
		// After these, the rest of the stream is forwarded without being
		// read as requests: the echoed bytes after the head give no event.
		{"http upgrade", sni.HTTP, allowed, nil, raw(upgrade), echo(upgrade), upgrade, events.ReasonUnsupported},
		{"http connect", sni.HTTP, allowed, nil, raw(connect), echo(connect), connect, events.ReasonUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := func(audit bool) events.Event {
				resolver := tt.resolver
				if resolver == nil {
					resolver = loopback
				}
				p := &sni.Proxy{Policy: audited(tt.policy, audit), Resolver: resolver, HelloTimeout: 200 * time.Millisecond}
				h := startProxy(t, p, tt.proto, tt.dst)
				c, err := net.Dial("tcp", h.addr)
				require.NoError(t, err)
				c.SetDeadline(time.Now().Add(5 * time.Second))
				got, err := tt.talk(c)
				if audit {
					require.NoError(t, err, "audit mode forwards the connection")
					assert.True(t, strings.HasPrefix(got, tt.want), "got %q, want %q first", got, tt.want)
				} else {
					require.Error(t, err, "enforce mode resets the connection")
					require.False(t, isTimeout(err), "connection still open: %v", err)
				}
				c.Close()
				evs := h.settled(t)
				require.Len(t, evs, 1, "one event per decision: %+v", evs)
				st := p.Stats()
				if audit {
					assert.Equal(t, events.WouldBlock, evs[0].Action)
					assert.Equal(t, uint64(1), st.WouldBlock)
					assert.Zero(t, st.Blocked)
				} else {
					assert.Equal(t, events.Blocked, evs[0].Action)
					assert.Equal(t, uint64(1), st.Blocked)
					assert.Zero(t, st.WouldBlock)
				}
				assert.Zero(t, st.Allowed)
				assert.Zero(t, st.Errors)
				return evs[0]
			}
			enforced, audit := run(false), run(true)
			assert.Equal(t, tt.reason, enforced.Reason, enforced.Detail)
			assert.Equal(t, enforced.Reason, audit.Reason)
			assert.Equal(t, enforced.Rule, audit.Rule)
			assert.Equal(t, enforced.Detail, audit.Detail)
			assert.Equal(t, enforced.Name, audit.Name)
			assert.Equal(t, tt.dst, audit.Destination)
		})
	}
}

// A connection made to the proxy directly is refused in audit mode too.
func TestProxyAuditLocalService(t *testing.T) {
	rec := newRecorder()
	p := &sni.Proxy{Policy: audited(allow(t, "*"), true), Destination: sni.TrustDestination, Events: rec,
		OriginalDestination: func(net.Conn) (netip.AddrPort, error) { return netip.AddrPort{}, sni.ErrNotRedirected }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln, sni.HTTP) }()
	defer func() { cancel(); require.NoError(t, <-done) }()
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		defer c.Close()
		requireReset(t, c)
	}
	ev := rec.wait(t, 1)[0]
	assert.Equal(t, events.Blocked, ev.Action)
	assert.Equal(t, events.ReasonLocalService, ev.Reason)
	assert.Zero(t, p.Stats().WouldBlock)
}

// The mode is read at each decision: a switch applies from the next
// connection.
func TestProxyAuditSwitchedOff(t *testing.T) {
	backend, cfg := tlsBackend(t, "evil.example.net")
	pol := audited(allow(t, "*.example.com"), true)
	h := startProxy(t, &sni.Proxy{Policy: pol, Resolver: loopback}, sni.TLS, backend)

	c, err := dialTLS(t, h, cfg, "evil.example.net")
	require.NoError(t, err)
	assert.Equal(t, "served evil.example.net", readLine(t, c))

	pol.audit.Store(false)
	_, err = dialTLS(t, h, cfg, "evil.example.net")
	require.Error(t, err)

	evs := h.events.wait(t, 2)
	assert.Equal(t, events.WouldBlock, evs[0].Action)
	assert.Equal(t, events.Blocked, evs[1].Action)
	for _, ev := range evs {
		assert.Equal(t, events.ReasonNotAllowlisted, ev.Reason)
	}
	st := h.proxy.Stats()
	assert.Equal(t, uint64(1), st.WouldBlock)
	assert.Equal(t, uint64(1), st.Blocked)
}

// The policy file's "mode: audit" reaches the proxy through the Holder.
func TestProxyAuditPolicyMode(t *testing.T) {
	backend, cfg := tlsBackend(t, "evil.example.net")
	pol := holder(t, &policy.Policy{Domains: []string{"*.example.com"}, Mode: policy.Audit})
	h := startProxy(t, &sni.Proxy{Policy: pol, Resolver: loopback}, sni.TLS, backend)
	c, err := dialTLS(t, h, cfg, "evil.example.net")
	require.NoError(t, err)
	assert.Equal(t, "served evil.example.net", readLine(t, c))
	assert.Equal(t, events.WouldBlock, h.events.wait(t, 1)[0].Action)
}

// On a kept-alive connection each request is decided: in audit mode a
// refused one is forwarded on the same connection, and once the mode is
// switched off the next refused one ends it.
func TestProxyAuditHTTPKeepAlive(t *testing.T) {
	backend := httpBackend(t)
	pol := audited(allow(t, "a.example"), true)
	h := startProxy(t, &sni.Proxy{Policy: pol, Resolver: loopback}, sni.HTTP, backend)
	c, err := net.Dial("tcp", h.addr)
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	get := func(host string) string {
		t.Helper()
		_, err := io.WriteString(c, "GET /k HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
		require.NoError(t, err)
		return readResponse(t, br)
	}
	assert.Contains(t, get("a.example"), "a.example GET /k")
	assert.Contains(t, get("evil.example"), "evil.example GET /k")
	assert.Contains(t, get("a.example"), "a.example GET /k")

	pol.audit.Store(false)
	_, err = io.WriteString(c, "GET /k HTTP/1.1\r\nHost: evil.example\r\n\r\n")
	require.NoError(t, err)
	_, err = br.ReadByte()
	require.Error(t, err)

	evs := h.settled(t)
	want := []struct {
		action events.Action
		name   string
	}{
		{events.Allowed, "a.example"},
		{events.WouldBlock, "evil.example"},
		{events.Allowed, "a.example"},
		{events.Blocked, "evil.example"},
	}
	require.Len(t, evs, len(want))
	for i, w := range want {
		assert.Equal(t, w.action, evs[i].Action, i)
		assert.Equal(t, w.name, evs[i].Name, i)
		assert.Equal(t, evs[0].Flow, evs[i].Flow, "one connection, one flow")
	}
	assert.Equal(t, events.ReasonNotAllowlisted, evs[1].Reason)
}

// A later request that the proxy cannot follow is reported once; the rest
// of the connection is forwarded without being read as requests.
func TestProxyAuditHTTPLaterUpgrade(t *testing.T) {
	backend := httpBackend(t)
	h := startProxy(t, &sni.Proxy{Policy: audited(allow(t, "a.example"), true), Resolver: loopback}, sni.HTTP, backend)
	c, err := net.Dial("tcp", h.addr)
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for _, req := range []string{
		"GET /1 HTTP/1.1\r\nHost: a.example\r\n\r\n",
		"GET /2 HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"GET /3 HTTP/1.1\r\nHost: evil.example\r\n\r\n", // the server declined the upgrade
	} {
		_, err := io.WriteString(c, req)
		require.NoError(t, err)
		assert.Contains(t, readResponse(t, br), "GET /")
	}
	c.Close()
	evs := h.settled(t)
	require.Len(t, evs, 2, "%+v", evs)
	assert.Equal(t, events.Allowed, evs[0].Action)
	assert.Equal(t, events.WouldBlock, evs[1].Action)
	assert.Equal(t, events.ReasonUnsupported, evs[1].Reason)
}

// Dialling by name, a connection whose first request was forwarded to its
// original destination in audit mode was not dialled for any name: a later
// request for the same name is not taken as allowed there.
func TestProxyAuditHTTPDialName(t *testing.T) {
	backend := httpBackend(t)
	failing := resolverFunc(func(context.Context, string) ([]netip.Addr, error) {
		return nil, errors.New("upstream down")
	})
	p := &sni.Proxy{Policy: audited(allow(t, "a.example"), true), Resolver: failing, Destination: sni.DialName}
	h := startProxy(t, p, sni.HTTP, backend)
	c, err := net.Dial("tcp", h.addr)
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for range 2 {
		_, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
		require.NoError(t, err)
		assert.Contains(t, readResponse(t, br), "a.example GET /")
	}
	evs := h.events.wait(t, 2)
	assert.Equal(t, events.WouldBlock, evs[0].Action)
	assert.Equal(t, events.ReasonResolve, evs[0].Reason)
	assert.Equal(t, events.WouldBlock, evs[1].Action)
	assert.Equal(t, events.ReasonWrongAddress, evs[1].Reason)
	assert.Zero(t, p.Stats().Allowed)
}

// A forward that cannot be dialled is reported as would-block, then as
// the dial's error, as an allowed connection's is; the client is reset.
func TestProxyAuditDialFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	_, cfg := tlsBackend(t, "evil.example.net")
	h := startProxy(t, &sni.Proxy{Policy: audited(allow(t, "a.example"), true), Resolver: loopback}, sni.TLS, closed)
	_, err = dialTLS(t, h, cfg, "evil.example.net")
	require.Error(t, err)
	evs := h.settled(t)
	require.Len(t, evs, 2, "%+v", evs)
	assert.Equal(t, events.WouldBlock, evs[0].Action)
	assert.Equal(t, events.ReasonNotAllowlisted, evs[0].Reason)
	assert.Equal(t, events.Error, evs[1].Action)
	assert.Equal(t, events.ReasonDial, evs[1].Reason)
	assert.Contains(t, evs[1].Detail, "refused")
	st := h.proxy.Stats()
	assert.Equal(t, uint64(1), st.WouldBlock)
	assert.Equal(t, uint64(1), st.Errors)
}

// A proxy that is stopping forwards nothing more, auditing or not: a
// client still silent when Serve ends is cut off and reported once, as
// blocked, not as would-block followed by a failed dial.
func TestProxyAuditStopping(t *testing.T) {
	dst, _ := tlsBackend(t, "a.example")
	rec := newRecorder()
	p := &sni.Proxy{Policy: audited(allow(t, "a.example"), true), Resolver: loopback, Events: rec,
		OriginalDestination: func(net.Conn) (netip.AddrPort, error) { return dst, nil }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln, sni.TLS) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.Eventually(t, func() bool { return p.Stats().Active == 1 }, 5*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)

	rec.mu.Lock()
	evs := append([]events.Event(nil), rec.events...)
	rec.mu.Unlock()
	require.Len(t, evs, 1, "%+v", evs)
	assert.Equal(t, events.Blocked, evs[0].Action)
	st := p.Stats()
	assert.Zero(t, st.WouldBlock)
	assert.Zero(t, st.Errors)
}
