package testbed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"
)

// clientTimeout is how long an [HTTPClient] waits for a request.
const clientTimeout = 5 * time.Second

// DialFunc dials a connection, as net.Dialer.DialContext does; from a
// namespace, it takes a literal IP and port.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// HTTPClient returns a client that dials with dial and sends every
// request to the address to, whatever the URL's host, on the URL's port
// (80 or 443 if it has none); the URL's host is still the Host header and
// the TLS server name. It trusts only roots, keeps no connection alive
// (each request is a connection of its own, as a filter sees it), follows
// no proxy, and gives up on a request after 5s.
func HTTPClient(dial DialFunc, to netip.Addr, roots *x509.CertPool) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			p, err := strconv.ParseUint(port, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("testbed: dial %s: %w", address, err)
			}
			return dial(ctx, network, netip.AddrPortFrom(to, uint16(p)).String())
		},
		TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
	}
	return &http.Client{Transport: tr, Timeout: clientTimeout}
}
