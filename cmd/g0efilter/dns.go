package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/g0lab/g0efilter/dnsfilter"
	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/nftrules"
	"github.com/g0lab/g0efilter/policy"
)

// pinTimeout is how long an address from an allowed answer stays pinned:
// its record's TTL, but at least DNS_PIN_MIN_TTL (clients and connection
// pools use an answer a little past its TTL), plus DNS_PIN_GRACE.
func pinTimeout(cfg config, ttl time.Duration) time.Duration {
	return max(ttl, cfg.DNSPinMinTTL) + cfg.DNSPinGrace
}

// dnsService is dns mode's filtering resolver, on DNS_PORT at 127.0.0.1
// and ::1, where the kernel's redirect delivers the workload's queries.
type dnsService struct {
	server   *dnsfilter.Server
	upstream *dnsfilter.Upstream
	local    *dnsfilter.Upstream // local names' resolver; nil: upstream
	pcs      []net.PacketConn
	lns      []net.Listener
}

// listenDNS opens the resolver's sockets. pin receives the addresses of
// each allowed answer; nil means no pinning.
func listenDNS(ctx context.Context, cfg config, p *policy.Holder, sink events.Sink, log *slog.Logger, pin func(dnsfilter.Answer)) (*dnsService, error) {
	up := &dnsfilter.Upstream{Servers: cfg.DNSUpstreams, Mark: cfg.bypassMark()}
	var local *dnsfilter.Upstream
	if len(cfg.DNSLocalUpstreams) > 0 && !slices.Equal(cfg.DNSLocalUpstreams, cfg.DNSUpstreams) {
		local = &dnsfilter.Upstream{Servers: cfg.DNSLocalUpstreams, Mark: cfg.bypassMark()}
	}
	s := &dnsService{upstream: up, local: local, server: &dnsfilter.Server{
		Handler: &dnsfilter.Handler{
			Policy:        policy.Names{Holder: p},
			Upstream:      up,
			LocalUpstream: local,
			Events:        sink,
			OnAnswer:      pin,
			LocalNames:    cfg.DNSLocalNames,
			Limits:        cfg.DNSLimits,
			Cache:         newDNSCache(cfg),
			Logger:        log,
		},
		Logger: log,
	}}
	var lc net.ListenConfig
	for _, lo := range []struct{ udp, tcp, addr string }{{"udp4", "tcp4", "127.0.0.1"}, {"udp6", "tcp6", "::1"}} {
		addr := net.JoinHostPort(lo.addr, strconv.Itoa(int(cfg.DNSPort)))
		pc, err := lc.ListenPacket(ctx, lo.udp, addr)
		if err != nil && lo.udp == "udp6" && isNoIPv6(err) {
			log.Warn("no IPv6 on loopback; the DNS server listens on IPv4 only", logKeyErr, err)
			continue
		}
		if err != nil {
			s.close()
			return nil, fmt.Errorf("DNS server: %w", err)
		}
		ln, err := lc.Listen(ctx, lo.tcp, addr)
		if err != nil {
			pc.Close()
			s.close()
			return nil, fmt.Errorf("DNS server: %w", err)
		}
		s.pcs, s.lns = append(s.pcs, pc), append(s.lns, ln)
	}
	return s, nil
}

// newDNSCache returns the resolver's answer cache, or nil with
// DNS_CACHE_SIZE=0.
func newDNSCache(cfg config) *dnsfilter.Cache {
	if cfg.DNSCacheSize == 0 {
		return nil
	}
	return dnsfilter.NewCache(cfg.DNSCacheSize, cfg.DNSCacheMaxTTL)
}

func (s *dnsService) close() {
	s.upstream.Close()
	if s.local != nil {
		s.local.Close()
	}
	for _, pc := range s.pcs {
		pc.Close()
	}
	for _, ln := range s.lns {
		ln.Close()
	}
}

// serve answers queries until ctx ends; a failure is reported through fail.
func (s *dnsService) serve(ctx context.Context, fail func(error)) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.server.Serve(ctx, s.pcs, s.lns); err != nil {
			fail(fmt.Errorf("DNS server: %w", err))
		}
	}()
	return func() { <-done }
}

// logUpstreams says at start-up which resolvers the filter forwards to,
// and why; see [chooseUpstreams].
func logUpstreams(cfg config, log *slog.Logger) {
	local := cfg.DNSLocalUpstreams
	if len(local) == 0 {
		local = cfg.DNSUpstreams
	}
	log.Info("DNS upstreams", logKeyUpstreams, fmt.Sprint(cfg.DNSUpstreams),
		logKeyLocalUpstreams, fmt.Sprint(local), logKeyFrom, cfg.DNSUpstreamsFrom)
	if cfg.DNSUpstreamsWarn != "" {
		log.Warn("DNS upstreams: "+cfg.DNSUpstreamsWarn, logKeyUpstreams, fmt.Sprint(cfg.DNSUpstreams))
	}
}

// answerPins are the pins for an allowed answer under snap: each address
// on every port when an entry without a port allows the name in dns mode
// (with pinning), and on the ports of each entry with a port that matches
// it. In https mode an entry with a port but no protocol is the proxies'
// to decide, so it pins nothing.
func answerPins(cfg config, snap *policy.Snapshot, a dnsfilter.Answer) []nftrules.Pin {
	dns := cfg.Mode == nftrules.ModeDNS
	if dns && !cfg.DNSPinning {
		return nil
	}
	_, plain := snap.MatchHost(a.Name)
	// An answer given only because the filter audits is pinned as a name
	// allowed on every port would be, so that connecting to its addresses
	// is not reported a second time. Back to enforce, the kernel empties
	// the pinned sets.
	plain = (plain || a.Audited) && dns
	rules := snap.MatchNamePorts(a.Name)
	var pins []nftrules.Pin
	for _, at := range a.Addrs {
		// The client may use the address for the record's TTL (and a
		// little past it): an earlier pin that lasts that long is
		// enough, as it does for the same answer given again from the
		// cache with its TTL counted down.
		pin := nftrules.Pin{Addr: at.Addr, Timeout: pinTimeout(cfg, at.TTL), Need: at.TTL + cfg.DNSPinGrace}
		if plain {
			pins = append(pins, pin)
		}
		for _, r := range rules {
			protos := []nftrules.Proto{nftrules.TCP, nftrules.UDP}
			switch {
			case r.Proto == policy.TCP:
				protos = protos[:1]
			case r.Proto == policy.UDP:
				protos = protos[1:]
			case !dns:
				continue // web traffic on that port, for the proxies
			}
			for _, proto := range protos {
				for port := int(r.Ports.First); port <= int(r.Ports.Last); port++ {
					pin.Proto, pin.Port = proto, uint16(port)
					pins = append(pins, pin)
				}
			}
		}
	}
	return pins
}

// pinner pins the addresses of allowed answers into the kernel's timeout
// sets through conn, as answerPins says, and returns how many.
func pinner(cfg config, conn *nftrules.Conn, live *policy.Holder, log *slog.Logger) func(dnsfilter.Answer) int {
	return func(a dnsfilter.Answer) int {
		pins := answerPins(cfg, live.Load(), a)
		if len(pins) == 0 {
			return 0
		}
		if err := conn.Pin(pins); err != nil {
			// The answer still goes out; connections to the addresses
			// are refused in the kernel (fail closed) and reported there.
			log.Error("cannot pin the addresses of an answer", logKeyName, a.Name, logKeyErr, err)
			return 0
		}
		return len(pins)
	}
}

// Attribute keys of logUpstreams.
const (
	logKeyLocalUpstreams = "local_upstreams"
	logKeyFrom           = "from"
)
