package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

const (
	dnsTTL                = 60
	serverShutdownTimeout = 2 * time.Second
	readHeaderTimeout     = 5 * time.Second
)

// webHandler answers the test sites over HTTP and HTTPS: a request for a
// known name (the TLS server name, or the Host header over HTTP) gets 200
// and "hello from <name> over <scheme>", any other 421 Misdirected
// Request.
func webHandler(names []string) http.Handler {
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, name := "http", hostOnly(r.Host)
		if r.TLS != nil {
			scheme, name = "https", hostOnly(r.TLS.ServerName)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !known[name] {
			w.WriteHeader(http.StatusMisdirectedRequest)
			fmt.Fprintf(w, "no site %q here\n", name)
			return
		}
		fmt.Fprintf(w, "hello from %s over %s\n", name, scheme)
	})
}

// rawHandler answers the direct-IP target, which has no name.
func rawHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		local := "this address"
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			local = a.String()
		}
		fmt.Fprintf(w, "hello from %s: no name, the address alone decided\n", local)
	})
}

// hostOnly lowercases a host and drops any port and trailing dot.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// tlsConfig presents cert to clients that ask for one of its names, and
// fails the handshake for any other server name.
func tlsConfig(cert *tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if err := hello.SupportsCertificate(cert); err != nil || hello.ServerName == "" {
				return nil, fmt.Errorf("no certificate for server name %q", hello.ServerName)
			}
			return cert, nil
		},
	}
}

// dnsHandler answers, with authority, A and AAAA questions for the site
// names with the sites' addresses; other types of a known name get an
// empty answer, unknown names NXDOMAIN.
func dnsHandler(names []string) dns.Handler {
	known := map[string]bool{}
	for _, n := range names {
		known[dns.CanonicalName(n)] = true
	}
	return dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		if len(r.Question) != 1 {
			m.Rcode = dns.RcodeFormatError
			_ = w.WriteMsg(m)
			return
		}
		q := r.Question[0]
		if !known[dns.CanonicalName(q.Name)] {
			m.Rcode = dns.RcodeNameError
			_ = w.WriteMsg(m)
			return
		}
		hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: dnsTTL}
		switch q.Qtype {
		case dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: siteAddr4.AsSlice()})
		case dns.TypeAAAA:
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: siteAddr6.AsSlice()})
		}
		_ = w.WriteMsg(m)
	})
}

// servers runs HTTP and DNS servers on listeners made elsewhere (in the
// net namespace) until Close.
type servers struct {
	wg   sync.WaitGroup
	http []*http.Server
	dns  []*dns.Server
	errc chan error
}

func newServers() *servers { return &servers{errc: make(chan error, 16)} }

// HTTP serves h on ln, over TLS when tc is not nil. Its error log goes to
// errLog.
func (s *servers) HTTP(ln net.Listener, h http.Handler, tc *tls.Config, errLog io.Writer) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog:          log.New(errLog, "web: ", log.LstdFlags),
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	s.http = append(s.http, srv)
	s.wg.Go(func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.errc <- fmt.Errorf("web server on %s: %w", ln.Addr(), err)
		}
	})
}

// DNS serves h on a UDP socket or a TCP listener, whichever is not nil,
// and returns once it is serving.
func (s *servers) DNS(pc net.PacketConn, ln net.Listener, h dns.Handler) error {
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Listener: ln, Handler: h, NotifyStartedFunc: func() { close(started) }}
	if pc != nil {
		srv.Net = "udp"
	} else {
		srv.Net = "tcp"
	}
	s.dns = append(s.dns, srv)
	done := make(chan error, 1)
	s.wg.Go(func() { done <- srv.ActivateAndServe() })
	select {
	case <-started:
		return nil
	case err := <-done:
		return fmt.Errorf("DNS server (%s): %w", srv.Net, err)
	}
}

// Close shuts the servers down and waits for them.
func (s *servers) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), serverShutdownTimeout)
	defer cancel()
	for _, srv := range s.http {
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
	}
	for _, srv := range s.dns {
		_ = srv.ShutdownContext(ctx)
	}
	s.wg.Wait()
}
