package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/g0lab/g0efilter/dnsfilter"
	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/events/nflog"
	"github.com/g0lab/g0efilter/internal/promserve"
	"github.com/g0lab/g0efilter/nftrules"
	"github.com/g0lab/g0efilter/policy"
)

// filter is one "g0efilter run": what it opened, so that it can close it
// in order.
type filter struct {
	cfg  config
	log  *slog.Logger
	host string

	live    policy.Holder // the policy the proxies and the DNS server ask
	v4, v6  []netip.Prefix
	sinks   *sinks
	metrics *metrics // nil without METRICS_ADDR
	proxies *proxies // https mode
	dns     *dnsService
	conn    *nftrules.Conn
	metln   net.Listener

	wg    sync.WaitGroup // the services started by serve
	fatal atomic.Pointer[error]
	stop  context.CancelFunc
}

func cmdRun(ctx context.Context, cfg config, stderr io.Writer) int {
	f := &filter{cfg: cfg, log: newLogger(stderr, cfg.LogLevel), host: cfg.Hostname}
	if f.host == "" {
		f.host, _ = os.Hostname()
	}
	f.log.Info("starting", logKeyVersion, version, logKeyMode, cfg.Mode.String(),
		logKeyPolicy, cfg.PolicyPath, logKeyHostname, f.host)
	defer f.close()
	if err := f.open(ctx); err != nil {
		f.log.Error(err.Error())
		return exitFailure
	}

	ctx, f.stop = context.WithCancel(ctx)
	f.serve(ctx)
	err := f.watch(ctx)
	f.stop()
	f.wg.Wait()
	if fatal := f.fatal.Load(); fatal != nil {
		f.log.Error("stopping; the rules stay installed (fail closed)", logKeyErr, *fatal)
		return exitFailure
	}
	if err != nil {
		f.log.Error("cannot watch the policy; the rules stay installed", logKeyErr, err)
		return exitFailure
	}
	f.log.Info("stopping; the rules stay installed (fail closed)")
	return exitOK
}

// open loads the policy, opens the sinks and the listeners, and installs
// the ruleset. The listeners come first, so that no redirected connection
// or query finds its port closed.
func (f *filter) open(ctx context.Context) error {
	cfg, log := f.cfg, f.log
	snap, err := loadSnapshot(cfg)
	if err != nil {
		return fmt.Errorf("policy does not load; no rules installed: %w", err)
	}
	rs, err := buildRuleset(cfg, snap)
	if err != nil {
		return fmt.Errorf("cannot build the ruleset: %w", err)
	}
	f.live.Store(snap)

	var extra []events.Sink
	if cfg.MetricsAddr != "" {
		f.metrics = newMetrics()
		extra = append(extra, f.metrics)
		// Bound now, answering only once serve runs, after the rules are
		// installed: a readiness probe on /metrics (Kubernetes, see
		// examples/kubernetes) then holds the workload back until then.
		if f.metln, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("cannot serve metrics; no rules installed: %w", err)
		}
	}
	if f.sinks, err = openSinks(cfg, log, f.host, extra...); err != nil {
		return fmt.Errorf("cannot open the event sinks; no rules installed: %w", err)
	}

	if cfg.Mode == nftrules.ModeHTTPS {
		if f.proxies, err = listenProxies(ctx, cfg, &f.live, f.sinks, f.host, log); err != nil {
			return fmt.Errorf("cannot listen; no rules installed: %w", err)
		}
	}
	if cfg.Mode == nftrules.ModeDNS || cfg.FilterDNS {
		var pin func(dnsfilter.Answer)
		if cfg.Mode == nftrules.ModeDNS && cfg.DNSPinning {
			pin = f.pin
		}
		if f.dns, err = listenDNS(ctx, cfg, &f.live, f.sinks, log, pin); err != nil {
			return fmt.Errorf("cannot listen; no rules installed: %w", err)
		}
	}

	if f.conn, err = nftrules.Open(nftrules.ConnConfig{}); err != nil {
		return fmt.Errorf("cannot open netlink: %w", err)
	}
	if err := f.conn.Apply(rs); err != nil {
		return fmt.Errorf("cannot install the ruleset: %w", err)
	}
	f.v4, f.v6 = snap.Prefixes()
	log.Info("ruleset installed", logKeyIPv4, len(f.v4), logKeyIPv6, len(f.v6),
		logKeyDomains, len(snap.Policy().Domains), logKeyAnyDomain, snap.AllowsAnyDomain())
	if snap.AllowsAnyDomain() {
		log.Warn(`the policy allows any domain ("*"): name filtering is off`)
	}
	return nil
}

// pin pins the addresses of an allowed DNS answer in the kernel.
func (f *filter) pin(a dnsfilter.Answer) {
	pinner(f.cfg, f.conn, f.log)(a)
	if f.metrics != nil {
		f.metrics.pinned.Add(float64(len(a.Addrs)))
	}
}

// serve starts the services: the proxies or the DNS server, the kernel's
// log and the metrics. One that fails for good stops the filter.
func (f *filter) serve(ctx context.Context) {
	cfg, log := f.cfg, f.log
	fail := func(err error) {
		f.fatal.CompareAndSwap(nil, &err)
		f.stop()
	}
	if f.proxies != nil {
		f.wg.Go(f.proxies.serve(ctx, fail))
		log.Info("proxies listening", logKeyHTTPPort, cfg.HTTPPort, logKeyHTTPSPort, cfg.HTTPSPort,
			logKeyDestinationCheck, cfg.DestinationCheck.String())
	}
	if f.dns != nil {
		f.wg.Go(f.dns.serve(ctx, fail))
		log.Info("DNS server listening", logKeyDNSPort, cfg.DNSPort, logKeyUpstreams, fmt.Sprint(cfg.DNSUpstreams))
	}

	// The kernel's own verdicts (allowed by address, blocked) come through
	// nflog. Without them the filter still filters; it only reports less.
	nfl := &nflog.Reader{
		Group:   nftrules.DefaultNflogGroup,
		BufSize: uint32(cfg.NflogBufSize),
		QThresh: uint32(cfg.NflogQThresh),
		Host:    f.host,
		Logger:  log,
		Sink:    f.sinks,
	}
	f.wg.Go(func() {
		if err := nfl.Run(ctx); err != nil {
			log.Error("cannot read the kernel's log; kernel verdicts are not reported", logKeyErr, err)
		}
	})

	if m := f.metrics; m != nil {
		if f.proxies != nil {
			m.watchProxy(f.proxies.proxy)
		}
		for name, dropped := range f.sinks.dropped() {
			m.watchDropped(name, dropped)
		}
		m.reloaded(true) // the policy loaded at start
		f.wg.Go(promserve.Serve(ctx, f.metln, m.reg, log))
		log.Info("metrics listening", logKeyAddr, f.metln.Addr().String())
	}

	if cfg.EnableRemoteUnblock && f.sinks.shipper != nil {
		p := f.unblockPoller()
		f.wg.Go(func() { p.Run(ctx) })
		log.Info("polling the dashboard for unblock requests", logKeyInterval, cfg.UnblockPollInterval.String())
	}
}

// watch follows the policy until ctx ends. Each valid edit changes the
// kernel's sets and the live policy together: if the sets cannot be
// updated, neither changes.
func (f *filter) watch(ctx context.Context) error {
	log := f.log
	reloaded := func(ok bool) {
		if f.metrics != nil {
			f.metrics.reloaded(ok)
		}
	}
	w := &policy.Watcher{
		Loader: loader(f.cfg),
		OnReload: func(next *policy.Snapshot) {
			if cur := f.live.Load().Policy(); slices.Equal(cur.IPs, next.Policy().IPs) &&
				slices.Equal(cur.Domains, next.Policy().Domains) {
				log.Debug("policy file read; nothing changed")
				return
			}
			n4, n6 := next.Prefixes()
			added, removed := diff(f.v4, n4)
			a6, r6 := diff(f.v6, n6)
			added, removed = added+a6, removed+r6
			if added != 0 || removed != 0 {
				if err := f.conn.UpdateSets(n4, n6); err != nil {
					log.Error("cannot update the allowlist sets; the previous policy stays", logKeyErr, err)
					reloaded(false)
					return
				}
				f.v4, f.v6 = n4, n6
			}
			f.live.Store(next)
			reloaded(true)
			log.Info("policy reloaded", logKeyIPv4, len(n4), logKeyIPv6, len(n6),
				logKeyDomains, len(next.Policy().Domains), logKeyAdded, added, logKeyRemoved, removed)
		},
		OnError: func(err error) {
			log.Warn("policy not reloaded; the previous policy stays", logKeyErr, err)
			reloaded(false)
		},
		Logger: log,
	}
	err := w.Run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// close releases what open opened, in reverse: the listeners (which ends
// nothing already accepted: serve's services have returned by now), the
// netlink connection, then the sinks, which deliver what is queued. The
// rules stay installed.
func (f *filter) close() {
	if f.proxies != nil {
		f.proxies.close()
	}
	if f.dns != nil {
		f.dns.close()
	}
	if f.metln != nil {
		f.metln.Close()
	}
	if f.conn != nil {
		f.conn.Close()
	}
	if f.sinks != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.sinks.close(ctx, f.log)
	}
}
