//go:build linux

package testbed

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/miekg/dns"
)

const (
	readHeaderTimeout = 5 * time.Second
	shutdownTimeout   = 2 * time.Second
)

// Servers runs HTTP and DNS servers in a network namespace until
// [Servers.Close]. Set NS before the first server; its methods are safe
// for concurrent use.
type Servers struct {
	NS       string    // the namespace the servers listen in
	ErrorLog io.Writer // the HTTP servers' error logs (failed handshakes, say); nil means discard

	wg    sync.WaitGroup // the servers' goroutines
	mu    sync.Mutex
	stops []func(context.Context) // run latest first by Close
}

// HTTP serves h on a TCP listener at addr (":80" for every address of
// both families, one dual-stack socket) in NS, over TLS when tc is not
// nil, until Close.
func (s *Servers) HTTP(addr string, h http.Handler, tc *tls.Config) error {
	var ln net.Listener
	var err error
	if ierr := In(s.NS, func() { ln, err = net.Listen("tcp", addr) }); ierr != nil {
		return ierr
	}
	if err != nil {
		return fmt.Errorf("testbed: listen in %s: %w", s.NS, err)
	}
	scheme, errLog := "http", s.ErrorLog
	if tc != nil {
		scheme = "https"
	}
	if errLog == nil {
		errLog = io.Discard
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tc,
		ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog:          log.New(errLog, scheme+": ", log.LstdFlags),
	}
	s.onClose(func(ctx context.Context) {
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close()
		}
		_ = ln.Close() // should Serve not have run yet
	})
	s.wg.Go(func() {
		if tc != nil {
			_ = srv.ServeTLS(ln, "", "")
		} else {
			_ = srv.Serve(ln)
		}
	})
	return nil
}

// DNS serves h over UDP and TCP at addr (":53" for every address of both
// families) in NS until Close, and returns once both servers are serving.
func (s *Servers) DNS(addr string, h dns.Handler) error {
	var pc net.PacketConn
	var ln net.Listener
	var err error
	ierr := In(s.NS, func() {
		if pc, err = net.ListenPacket("udp", addr); err == nil {
			if ln, err = net.Listen("tcp", addr); err != nil {
				_ = pc.Close()
			}
		}
	})
	if ierr != nil {
		return ierr
	}
	if err != nil {
		return fmt.Errorf("testbed: listen in %s: %w", s.NS, err)
	}
	// Should a server not have started, closing its socket ends it.
	s.onClose(func(context.Context) { _ = pc.Close(); _ = ln.Close() })
	for _, srv := range []*dns.Server{{Net: "udp", PacketConn: pc}, {Net: "tcp", Listener: ln}} {
		started := make(chan struct{})
		done := make(chan error, 1)
		srv.Handler, srv.NotifyStartedFunc = h, func() { close(started) }
		s.onClose(func(ctx context.Context) { _ = srv.ShutdownContext(ctx) })
		s.wg.Go(func() { done <- srv.ActivateAndServe() })
		select {
		case <-started:
		case err := <-done:
			return fmt.Errorf("testbed: DNS server (%s): %w", srv.Net, err)
		}
	}
	return nil
}

func (s *Servers) onClose(fn func(context.Context)) {
	s.mu.Lock()
	s.stops = append(s.stops, fn)
	s.mu.Unlock()
}

// Close shuts the servers down, giving their requests under way 2s, and
// waits for their goroutines.
func (s *Servers) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	s.mu.Lock()
	stops := s.stops
	s.stops = nil
	s.mu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i](ctx)
	}
	s.wg.Wait()
}
