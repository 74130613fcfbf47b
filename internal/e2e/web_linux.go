//go:build linux

package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/g0lab/g0efilter/internal/testbed"
)

const (
	// HTTPPort and HTTPSPort are where [Env.WebServers] listen.
	HTTPPort  = 80
	HTTPSPort = 443
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
type WebRequest = testbed.WebRequest

// WebServers is an HTTP and an HTTPS server in the upstream namespace,
// made by [Env.WebServers].
type WebServers struct {
	env   *Env
	sites *testbed.Sites
	srv   *testbed.Servers
}

// WebServers starts an HTTP server on port 80 and an HTTPS server on port
// 443 in the upstream namespace, each listening on every upstream address
// of both families (one dual-stack socket), so that a test can reach them
// at an allowlisted and a non-allowlisted address alike. Both answer for
// names, on every address, as [testbed.Sites] does: "served <name>" for a
// name by SNI over HTTPS and by Host over HTTP, 421 for any other Host;
// certificates come from [Env.TestCA]. Both stop, waiting for their
// goroutines, when the test ends; their error logs (failed handshakes,
// say) are logged if the test failed.
func (e *Env) WebServers(names ...string) *WebServers {
	e.t.Helper()
	sites, err := testbed.NewSites(e.TestCA(), names...)
	if err != nil {
		e.t.Fatalf("e2e: %v", err)
	}
	errLog := &syncBuffer{}
	w := &WebServers{env: e, sites: sites, srv: &testbed.Servers{NS: e.Upstream, ErrorLog: errLog}}
	e.t.Cleanup(func() {
		w.srv.Close()
		if e.t.Failed() {
			if out := errLog.String(); out != "" {
				e.t.Logf("web servers' error log:\n%s", out)
			}
		}
	})
	w.Also(HTTPPort, false)
	w.Also(HTTPSPort, true)
	return w
}

// Also serves HTTPS (useTLS) or HTTP on one more port, on every upstream
// address, as on 443 or 80.
func (w *WebServers) Also(port int, useTLS bool) {
	w.env.t.Helper()
	var tc *tls.Config
	if useTLS {
		tc = w.sites.TLSConfig()
	}
	if err := w.srv.HTTP(":"+strconv.Itoa(port), w.sites, tc); err != nil {
		w.env.t.Fatalf("e2e: %v", err)
	}
}

// Requests returns a copy of the requests answered so far, in order.
func (w *WebServers) Requests() []WebRequest { return w.sites.Requests() }

// DialContext connects from the box namespace, like [Env.Dial], but may be
// called from any goroutine (an http.Transport's, say) and leaves the
// connection to the caller to close. address must be a literal IP and
// port: the name resolution and parallel dials a host name would bring run
// on other threads, outside the box.
func (e *Env) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if _, err := netip.ParseAddrPort(address); err != nil {
		return nil, fmt.Errorf("e2e: dial %s: want a literal IP and port: %w", address, err)
	}
	var c net.Conn
	var err error
	if ierr := testbed.In(e.Box, func() { c, err = (&net.Dialer{}).DialContext(ctx, network, address) }); ierr != nil {
		return nil, fmt.Errorf("e2e: %w", ierr)
	}
	return c, err
}

// HTTPClient returns a client for the box that sends every request to the
// upstream address to, whatever the URL's host, as [testbed.HTTPClient]
// does; it trusts only [Env.TestCA].
func (e *Env) HTTPClient(to netip.Addr) *http.Client {
	return testbed.HTTPClient(e.DialContext, to, e.TestCA().Pool())
}
