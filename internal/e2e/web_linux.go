//go:build linux

package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/g0lab/g0efilter/internal/nsdial"
)

const (
	// HTTPPort and HTTPSPort are where [Env.WebServers] listen.
	HTTPPort  = 80
	HTTPSPort = 443

	serverShutdownTimeout = 2 * time.Second
	clientTimeout         = 5 * time.Second
)

// TestCA returns the test binary's CA ([SharedCA]), failing the test if it
// cannot be made.
func (e *Env) TestCA() *CA {
	e.t.Helper()
	ca, err := SharedCA()
	if err != nil {
		e.t.Fatalf("%v", err)
	}
	return ca
}

// WebRequest is a request one of [Env.WebServers] answered.
type WebRequest struct {
	Scheme string         // "http" or "https"
	Host   string         // the Host header, as sent
	SNI    string         // the TLS server name; empty over HTTP
	From   netip.AddrPort // the client's address
	To     netip.AddrPort // the server address the client reached
}

// WebServers is an HTTP and an HTTPS server in the upstream namespace,
// made by [Env.WebServers].
type WebServers struct {
	names map[string]bool
	env   *Env
	plain *http.Server
	tls   *http.Server
	wg    sync.WaitGroup // the Serve calls

	mu       sync.Mutex
	requests []WebRequest
}

// WebServers starts an HTTP server on port 80 and an HTTPS server on port
// 443 in the upstream namespace, each listening on every upstream address
// of both families (one dual-stack socket), so that a test can reach them
// at an allowlisted and a non-allowlisted address alike. Both answer for
// names, on every address:
//
//   - over HTTP, a request whose Host (port dropped, case ignored) is one of
//     names gets 200 and the body "served <host>"; any other Host gets 421
//     Misdirected Request and "unknown host <host>".
//   - over HTTPS, the certificate is chosen by SNI, issued by [Env.TestCA]
//     for that name; a handshake without SNI or with another name fails.
//     Every request gets 200 and "served <sni>", whatever its Host.
//
// Both stop, waiting for their goroutines, when the test ends; their error
// logs (failed handshakes, say) are logged if the test failed.
func (e *Env) WebServers(names ...string) *WebServers {
	e.t.Helper()
	if len(names) == 0 {
		e.t.Fatalf("e2e: web servers: no names")
	}
	ca := e.TestCA()
	w := &WebServers{names: map[string]bool{}, env: e}
	certs := map[string]*tls.Certificate{}
	for _, n := range names {
		n = normalHost(n)
		cert, err := ca.Issue(n)
		if err != nil {
			e.t.Fatalf("%v", err)
		}
		w.names[n] = true
		certs[n] = cert
	}

	errLog := &syncBuffer{}
	newServer := func(scheme string) *http.Server {
		return &http.Server{
			Handler:           http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { w.serve(scheme, rw, r) }),
			ReadHeaderTimeout: clientTimeout,
			ErrorLog:          log.New(errLog, scheme+": ", 0),
		}
	}
	plain := newServer("http")
	secure := newServer("https")
	secure.TLSConfig = &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c, ok := certs[normalHost(hello.ServerName)]; ok {
				return c, nil
			}
			return nil, fmt.Errorf("e2e: no certificate for server name %q", hello.ServerName)
		},
	}

	w.plain, w.tls = plain, secure
	w.Also(HTTPPort, false)
	w.Also(HTTPSPort, true)
	wg := &w.wg
	e.t.Cleanup(func() {
		for _, srv := range []*http.Server{plain, secure} {
			ctx, cancel := context.WithTimeout(context.Background(), serverShutdownTimeout)
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
			}
			cancel()
		}
		wg.Wait()
		if e.t.Failed() {
			if out := errLog.String(); out != "" {
				e.t.Logf("web servers' error log:\n%s", out)
			}
		}
	})
	return w
}

func (w *WebServers) serve(scheme string, rw http.ResponseWriter, r *http.Request) {
	req := WebRequest{Scheme: scheme, Host: r.Host}
	req.From = addrPort(r.RemoteAddr)
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		req.To = addrPort(a.String())
	}
	name := normalHost(r.Host)
	if r.TLS != nil {
		req.SNI = r.TLS.ServerName
		name = normalHost(r.TLS.ServerName)
	}
	w.mu.Lock()
	w.requests = append(w.requests, req)
	w.mu.Unlock()

	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !w.names[name] {
		rw.WriteHeader(http.StatusMisdirectedRequest)
		fmt.Fprintf(rw, "unknown host %s", name)
		return
	}
	fmt.Fprintf(rw, "served %s", name)
}

// Also serves HTTPS (tls) or HTTP on one more port, on every upstream
// address, as on 443 or 80.
func (w *WebServers) Also(port int, tls bool) {
	w.env.t.Helper()
	ln := w.env.Listen("tcp", ":"+strconv.Itoa(port))
	if tls {
		w.wg.Go(func() { _ = w.tls.ServeTLS(ln, "", "") })
	} else {
		w.wg.Go(func() { _ = w.plain.Serve(ln) })
	}
}

// Requests returns a copy of the requests answered so far, in order.
func (w *WebServers) Requests() []WebRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]WebRequest(nil), w.requests...)
}

// addrPort parses a socket address, IPv4 unmapped from IPv6 (as a
// dual-stack socket may give it); zero if it does not parse.
func addrPort(s string) netip.AddrPort {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// normalHost lowercases a host name and drops any port and trailing dot.
func normalHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// DialContext connects from the box namespace, like [Env.Dial], but may be
// called from any goroutine (an http.Transport's, say) and leaves the
// connection to the caller to close. address must be a literal IP and
// port: the name resolution and parallel dials a host name would bring run
// on other threads, outside the box.
func (e *Env) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if _, err := netip.ParseAddrPort(address); err != nil {
		return nil, fmt.Errorf("e2e: dial %s: want a literal IP and port: %w", address, err)
	}
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The thread is never unlocked: switched into the box, it ends
		// with this goroutine and serves no other.
		runtime.LockOSThread()
		if err := nsdial.Enter(netnsDir + "/" + e.Box); err != nil {
			done <- result{err: fmt.Errorf("e2e: %w", err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, address)
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}

// HTTPClient returns a client for the box that sends every request to the
// upstream address to, whatever the URL's host, on the URL's port (80 or
// 443 if it has none); the URL's host is still the Host header and the TLS
// server name. It trusts only [Env.TestCA], keeps no connection alive (each
// request is a connection of its own, as a filter sees it), follows no
// proxy, and gives up on a request after 5s.
func (e *Env) HTTPClient(to netip.Addr) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			p, err := strconv.ParseUint(port, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("e2e: dial %s: %w", address, err)
			}
			return e.DialContext(ctx, network, netip.AddrPortFrom(to, uint16(p)).String())
		},
		TLSClientConfig:   &tls.Config{RootCAs: e.TestCA().Pool(), MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
	}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: clientTimeout}
}
