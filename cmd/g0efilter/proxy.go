package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"syscall"

	"github.com/g0lab/g0efilter/dnsfilter"
	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/policy"
	"github.com/g0lab/g0efilter/sni"
)

// proxies are the HTTP and HTTPS proxies of https mode, listening on
// loopback where the ruleset redirects ports 80 and 443.
type proxies struct {
	proxy     *sni.Proxy
	upstream  *dnsfilter.Upstream // the name check's resolvers
	listeners []proxyListener
}

type proxyListener struct {
	ln    net.Listener
	proto sni.Protocol
}

// listenProxies opens the proxies' listeners: HTTP_PORT and HTTPS_PORT on
// 127.0.0.1 and ::1, where the kernel's redirect delivers IPv4 and IPv6
// connections. A namespace without IPv6 has no IPv6 traffic to redirect, so
// failing to listen on ::1 there is only logged.
func listenProxies(ctx context.Context, cfg config, p *policy.Holder, sink events.Sink, host string, log *slog.Logger) (*proxies, error) {
	up := &dnsfilter.Upstream{Servers: cfg.DNSUpstreams, Mark: cfg.bypassMark()}
	ps := &proxies{upstream: up, proxy: &sni.Proxy{
		Policy:       p,
		HostPorts:    slices.Concat([]uint16{80, 443}, cfg.HTTPPorts, cfg.TLSPorts),
		Resolver:     &dnsfilter.Resolver{Upstream: up},
		Destination:  cfg.DestinationCheck,
		Mark:         cfg.bypassMark(),
		HelloTimeout: cfg.HelloTimeout,
		DialTimeout:  cfg.DialTimeout,
		IdleTimeout:  cfg.IdleTimeout,
		Events:       sink,
		Host:         host,
		Logger:       log,
	}}
	var lc net.ListenConfig
	for _, l := range []struct {
		port  uint16
		proto sni.Protocol
	}{{cfg.HTTPPort, sni.HTTP}, {cfg.HTTPSPort, sni.TLS}} {
		for _, lo := range []struct{ network, addr string }{{"tcp4", "127.0.0.1"}, {"tcp6", "::1"}} {
			ln, err := lc.Listen(ctx, lo.network, net.JoinHostPort(lo.addr, strconv.Itoa(int(l.port))))
			if err != nil {
				if lo.network == "tcp6" && isNoIPv6(err) {
					log.Warn("no IPv6 on loopback; the proxy listens on IPv4 only", logKeyErr, err)
					continue
				}
				ps.close()
				return nil, fmt.Errorf("%s proxy: %w", l.proto, err)
			}
			ps.listeners = append(ps.listeners, proxyListener{ln, l.proto})
		}
	}
	return ps, nil
}

// isNoIPv6 reports whether a listen error means the namespace has no IPv6.
func isNoIPv6(err error) bool {
	return errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT)
}

func (ps *proxies) close() {
	ps.upstream.Close()
	for _, l := range ps.listeners {
		l.ln.Close()
	}
}

// serve runs the proxies until ctx ends, then waits for their connections
// to close. An accept error that is not a shortage stops the whole filter:
// it is reported through fail.
func (ps *proxies) serve(ctx context.Context, fail func(error)) (wait func()) {
	var wg sync.WaitGroup
	for _, l := range ps.listeners {
		wg.Go(func() {
			if err := ps.proxy.Serve(ctx, l.ln, l.proto); err != nil {
				fail(fmt.Errorf("%s proxy on %s: %w", l.proto, l.ln.Addr(), err))
			}
		})
	}
	return wg.Wait
}
