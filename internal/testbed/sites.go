package testbed

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"github.com/g0lab/g0efilter/internal/localca"
)

// WebRequest is a request [Sites] answered.
type WebRequest struct {
	Scheme string         // "http" or "https"
	Host   string         // the Host header, as sent
	SNI    string         // the TLS server name; empty over HTTP
	From   netip.AddrPort // the client's address
	To     netip.AddrPort // the server address the client reached
}

// Sites answers for several names on one address, over HTTP and HTTPS
// (serve it with [Servers.HTTP], its [Sites.TLSConfig] for HTTPS):
//
//   - over HTTP, a request whose Host (port dropped, case ignored) is one of
//     the names gets 200 and the body "served <host>"; any other Host gets
//     421 Misdirected Request and "unknown host <host>".
//   - over HTTPS, the certificate is chosen by SNI, one for each name; a
//     handshake without SNI or with another name fails. Every request gets
//     200 and "served <sni>", whatever its Host.
//
// It records every request it answers ([Sites.Requests]).
type Sites struct {
	certs map[string]*tls.Certificate // by name, lowercase

	mu       sync.Mutex
	requests []WebRequest
}

// NewSites returns sites for names, with a certificate for each issued by
// ca.
func NewSites(ca *localca.CA, names ...string) (*Sites, error) {
	if len(names) == 0 {
		return nil, errors.New("testbed: web sites: no names")
	}
	s := &Sites{certs: map[string]*tls.Certificate{}}
	for _, n := range names {
		n = normalHost(n)
		cert, err := ca.Issue(n)
		if err != nil {
			return nil, err
		}
		s.certs[n] = cert
	}
	return s, nil
}

// TLSConfig returns the servers' TLS configuration: TLS 1.2 or later, the
// certificate of the name the client asks for.
func (s *Sites) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c, ok := s.certs[normalHost(hello.ServerName)]; ok {
				return c, nil
			}
			return nil, fmt.Errorf("testbed: no certificate for server name %q", hello.ServerName)
		},
	}
}

func (s *Sites) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	req := WebRequest{Scheme: "http", Host: r.Host, From: addrPort(r.RemoteAddr)}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		req.To = addrPort(a.String())
	}
	name := normalHost(r.Host)
	if r.TLS != nil {
		req.Scheme, req.SNI = "https", r.TLS.ServerName
		name = normalHost(r.TLS.ServerName)
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()

	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if _, ok := s.certs[name]; !ok {
		rw.WriteHeader(http.StatusMisdirectedRequest)
		fmt.Fprintf(rw, "unknown host %s", name)
		return
	}
	fmt.Fprintf(rw, "served %s", name)
}

// Requests returns a copy of the requests answered so far, in order.
func (s *Sites) Requests() []WebRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]WebRequest(nil), s.requests...)
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
