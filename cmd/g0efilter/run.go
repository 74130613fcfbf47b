package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
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

	live    policy.Holder  // the policy the proxies and the DNS server ask
	lists   nftrules.Lists // the sets as installed
	sinks   *sinks
	metrics *metrics // nil without METRICS_ADDR
	proxies *proxies // https mode
	dns     *dnsService
	conn    *nftrules.Conn
	metln   net.Listener
	guards  guards     // what is in force, after install
	links   *linkWatch // nil without egress chains

	wg    sync.WaitGroup // the services started by serve
	fatal atomic.Pointer[error]
	stop  context.CancelFunc

	// Set by tests: updateSets stands for conn.UpdateLists, retry for
	// watchRetry.
	updateSets func(nftrules.Lists) error
	retry      time.Duration
}

func cmdRun(ctx context.Context, cfg config, stderr io.Writer) int {
	f := &filter{cfg: cfg, log: newLogger(stderr, cfg.LogLevel), host: cfg.Hostname}
	if f.host == "" {
		f.host, _ = os.Hostname()
	}
	f.log.Info("starting", logKeyVersion, version, logKeyMode, cfg.Mode.String(),
		logKeyPolicy, cfg.PolicyPath, logKeyHostname, f.host)
	logUpstreams(cfg, f.log)
	switch host, err := hostNamespace(); {
	case err != nil:
		f.log.Warn("cannot tell whether this is the machine's own network namespace", logKeyErr, err)
	case host && !cfg.AllowHostNamespace:
		f.log.Error("refusing to install rules in the machine's own network namespace: they would filter the whole host; " +
			"run the filter in the workload's namespace (a container), or set " + envAllowHostNamespace + "=true if you mean it")
		return exitFailure
	case host:
		f.log.Warn("installing rules in the machine's own network namespace (" + envAllowHostNamespace + "=true)")
	}
	// Unguessable, so that with no cgroup to tell the filter's sockets
	// apart the mark is still no public key.
	f.cfg.BypassMark = randomMark()
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
	// The device watch opens before the devices are listed, so that none
	// appears unseen in between.
	if f.links, err = watchLinks(); err != nil {
		log.Warn("devices added later will not be guarded", logKeyErr, err)
	}
	g := findGuards().alone()
	if err := requireGuarantees(cfg, g); err != nil {
		return err
	}
	lists := setLists(cfg, snap)
	if _, err := nftrules.Build(ruleConfig(cfg, g, lists)); err != nil {
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
		if f.dns, err = listenDNS(ctx, cfg, &f.live, f.sinks, log, f.pin); err != nil {
			return fmt.Errorf("cannot listen; no rules installed: %w", err)
		}
	}

	if f.conn, err = nftrules.Open(nftrules.ConnConfig{}); err != nil {
		return fmt.Errorf("cannot open netlink: %w", err)
	}
	if f.guards, err = f.install(g, lists); err != nil {
		return err
	}
	f.reportGuarantees()
	f.lists = lists
	log.Info("ruleset installed", logKeyIPv4, len(lists.Allow4), logKeyIPv6, len(lists.Allow6),
		logKeyDenied, len(lists.Deny4)+len(lists.Deny6)+len(snap.Policy().DenyDomains),
		logKeyDomains, len(snap.Policy().Domains), logKeyAnyDomain, snap.AllowsAnyDomain())
	if snap.AllowsAnyDomain() {
		log.Warn(`the policy allows any domain ("*"): name filtering is off`)
	}
	f.warnNamePorts(snap)
	f.announceMode(snap, false)
	return nil
}

// announceMode says loudly, in the log and as an event, that the filter
// only audits: at start (switched false) and whenever the mode switches,
// either way.
func (f *filter) announceMode(snap *policy.Snapshot, switched bool) {
	f.metrics.auditing(snap.Audit())
	if !snap.Audit() && !switched {
		return
	}
	e := events.Event{Time: time.Now(), Host: f.host, Component: events.Policy, Action: events.Changed}
	if snap.Audit() {
		e.Reason = events.ReasonAuditMode
		e.Detail = "nothing is blocked: what the policy refuses is let through and reported as would-block"
		f.log.Warn("AUDIT MODE: " + e.Detail + "; set \"mode: enforce\" in the policy file (or " + envEnforce + "=enforce) to block")
	} else {
		e.Reason = events.ReasonEnforceMode
		e.Detail = "the policy is enforced: what it refuses is blocked"
		f.log.Warn("enforce mode: " + e.Detail)
	}
	f.sinks.Emit(e)
}

// warnNamePorts says when the policy has names on ports that only the
// filter's resolver can open, and the workload's DNS does not pass it.
func (f *filter) warnNamePorts(snap *policy.Snapshot) {
	if f.cfg.Mode == nftrules.ModeDNS && f.cfg.DNSPinning || f.cfg.Mode == nftrules.ModeHTTPS && f.cfg.FilterDNS {
		return
	}
	var pinned []string
	for _, r := range snap.Policy().NamePorts {
		if r.Proto != policy.AnyProto || f.cfg.Mode == nftrules.ModeDNS {
			pinned = append(pinned, r.String())
		}
	}
	if len(pinned) > 0 {
		f.log.Warn("names on ports are opened by the filter's DNS answers, which the workload's DNS does not pass through ("+
			envFilterDNS+"=false or "+envDNSPinning+"=false): they stay blocked", logKeyRules, strings.Join(pinned, ", "))
	}
}

// install applies the ruleset with the guards g, or, where the kernel
// refuses them, with fewer, and returns the guards in force. A guarantee
// that REQUIRE_GUARANTEES asks for is never given up.
func (f *filter) install(g guards, lists nftrules.Lists) (guards, error) {
	required := func(name string) bool { return slices.Contains(f.cfg.RequireGuarantees, name) }
	try := func(g guards) error {
		rs, err := nftrules.Build(ruleConfig(f.cfg, g, lists))
		if err != nil {
			return err
		}
		return f.conn.Apply(rs)
	}
	err := try(g)
	if err == nil {
		return g, nil
	}
	first := err
	if len(g.devices) > 0 && !required(guaranteeEgress) {
		noEgress := g
		noEgress.devices, noEgress.egressWhy = nil, "the kernel refused the egress chains: "+first.Error()
		if err = try(noEgress); err == nil {
			return noEgress, nil
		}
	}
	if g.cgroupID != 0 && !required(guaranteeCgroup) {
		noCgroup := g
		noCgroup.cgroupID, noCgroup.cgroupLevel, noCgroup.cgroupWhy = 0, 0, "the kernel refused socket cgroupv2 matching: "+first.Error()
		if err = try(noCgroup); err == nil {
			return noCgroup, nil
		}
		if len(g.devices) > 0 && !required(guaranteeEgress) {
			noCgroup.devices, noCgroup.egressWhy = nil, "the kernel refused the egress chains: "+first.Error()
			if err = try(noCgroup); err == nil {
				return noCgroup, nil
			}
		}
	}
	return g, fmt.Errorf("cannot install the ruleset: %w", first)
}

// requireGuarantees refuses to start, before anything is installed, when
// REQUIRE_GUARANTEES asks for what this process and namespace cannot give.
func requireGuarantees(cfg config, g guards) error {
	for _, name := range cfg.RequireGuarantees {
		switch {
		case name == guaranteeCgroup && g.cgroupID == 0:
			return fmt.Errorf("%s asks for %s (its default), but the filter's own sockets cannot be told apart by cgroup (%s); "+
				"no rules installed. Run the filter in a cgroup of its own (a container of its own does that), "+
				"or set %s= (empty) to run on a random mark alone, which a workload with CAP_NET_RAW could guess",
				envRequireGuarantees, name, g.cgroupWhy, envRequireGuarantees)
		case name == guaranteeEgress && g.egressWhy != "":
			return fmt.Errorf("%s asks for %s, but %s; no rules installed", envRequireGuarantees, name, g.egressWhy)
		}
	}
	return nil
}

// reportGuarantees says, at start-up and in the metrics, which guarantees
// against a hostile workload hold here, and warns of those that do not.
func (f *filter) reportGuarantees() {
	g, log := f.guards, f.log
	if g.cgroupID != 0 {
		log.Info("own sockets told apart by mark and cgroup", logKeyCgroup, g.cgroupID, logKeyLevel, g.cgroupLevel)
	} else {
		log.Warn("own sockets told apart by a random mark only: a workload that guesses it gets out", logKeyErr, g.cgroupWhy)
	}
	if len(g.devices) > 0 {
		log.Info("frames from packet sockets dropped at egress", logKeyDevices, strings.Join(g.devices, ","))
	} else {
		log.Warn("no egress guard: a workload with CAP_NET_RAW can send frames past the rules", logKeyErr, g.egressWhy)
	}
	if g.afXDP {
		log.Warn("AF_XDP: " + afXDPWarning)
	}
	if f.metrics != nil {
		f.metrics.guarantee(guaranteeCgroup, g.cgroupID != 0)
		f.metrics.guarantee(guaranteeEgress, len(g.devices) > 0)
		f.metrics.guarantee(guaranteeNoXDP, !g.afXDP)
	}
}

// guardDevices adds an egress chain for each device that appears, until
// ctx ends; when the watch fails (its socket overran), it lists the
// devices again and watches anew.
func (f *filter) guardDevices(ctx context.Context) {
	add := func(name string) {
		if err := f.conn.AddEgress(name); err != nil {
			f.log.Error("cannot guard a new device: frames from packet sockets may leave through it", logKeyName, name, logKeyErr, err)
			return
		}
		f.log.Debug("device guarded", logKeyName, name)
	}
	for w := f.links; w != nil; {
		err := w.run(ctx, add)
		if err == nil || ctx.Err() != nil {
			return
		}
		f.log.Warn("device watch failed; listing the devices again", logKeyErr, err)
		if w, err = watchLinks(); err != nil {
			f.log.Error("devices added later will not be guarded", logKeyErr, err)
			return
		}
		devs, _ := devices()
		for _, d := range devs {
			add(d)
		}
	}
}

// rawFrameInterval is how often the egress counters are read into events.
const rawFrameInterval = time.Second

// reportRawFrames turns the egress chains' counters into events, one per
// device and interval with frames dropped, until ctx ends.
func (f *filter) reportRawFrames(ctx context.Context) {
	tick := time.NewTicker(rawFrameInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		counts, err := f.conn.RawFrames()
		if err != nil {
			f.log.Warn("cannot read the raw frame counters", logKeyErr, err)
			continue
		}
		for dev, n := range counts {
			f.sinks.Emit(events.Event{
				Time: time.Now(), Host: f.host, Component: events.Kernel, Action: events.Blocked,
				Reason: events.ReasonRawFrame,
				Detail: fmt.Sprintf("%d frames sent below the IP stack on %s, dropped", n, dev),
			})
		}
	}
}

// pin pins the addresses of an allowed DNS answer in the kernel.
func (f *filter) pin(a dnsfilter.Answer) {
	n := pinner(f.cfg, f.conn, &f.live, f.log)(a)
	if f.metrics != nil && n > 0 {
		f.metrics.pinned.Add(float64(n))
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

	if o := f.sinks.observer; o != nil {
		f.wg.Go(func() { o.run(ctx) })
		log.Info("keeping a record of what the workload does, for g0efilter suggest", logKeyPath, o.path)
	}

	if len(f.guards.devices) > 0 {
		f.wg.Go(func() { f.guardDevices(ctx) })
		f.wg.Go(func() { f.reportRawFrames(ctx) })
	} else if f.links != nil {
		_ = f.links.c.Close()
	}

	if cfg.EnableRemoteUnblock && f.sinks.shipper != nil {
		p := f.unblockPoller()
		f.wg.Go(func() { p.Run(ctx) })
		log.Info("polling the dashboard for unblock requests", logKeyInterval, cfg.UnblockPollInterval.String())
	}
}

// watchRetry is how long watch waits before it applies again a policy
// that it could not apply; the wait doubles with each failure, up to a
// minute.
const watchRetry = time.Second

// watch follows the policy until ctx ends. Each valid edit changes the
// kernel's sets and the live policy together: if the sets cannot be
// updated, neither changes, and the edit is applied again after a
// back-off until it goes through or the file changes.
func (f *filter) watch(ctx context.Context) error {
	log := f.log
	updateSets := f.updateSets
	if updateSets == nil {
		updateSets = f.conn.UpdateLists
	}
	retry := f.retry
	if retry == 0 {
		retry = watchRetry
	}
	w := &policy.Watcher{
		Loader: loader(f.cfg),
		OnReload: func(next *policy.Snapshot) error {
			cur, np := f.live.Load().Policy(), next.Policy()
			if slices.Equal(cur.IPs, np.IPs) && slices.Equal(cur.Domains, np.Domains) &&
				slices.Equal(cur.DenyIPs, np.DenyIPs) && slices.Equal(cur.DenyDomains, np.DenyDomains) &&
				slices.Equal(cur.AddrPorts, np.AddrPorts) && slices.Equal(cur.NamePorts, np.NamePorts) && cur.Mode == np.Mode {
				log.Debug("policy file read; nothing changed")
				f.metrics.notPending()
				return nil
			}
			nl := setLists(f.cfg, next)
			n4, n6 := nl.Allow4, nl.Allow6
			added, removed := diff(f.lists.Allow4, n4)
			a6, r6 := diff(f.lists.Allow6, n6)
			added, removed = added+a6, removed+r6
			d4a, d4r := diff(f.lists.Deny4, nl.Deny4)
			d6a, d6r := diff(f.lists.Deny6, nl.Deny6)
			if added != 0 || removed != 0 || d4a+d4r+d6a+d6r != 0 || !slices.Equal(f.lists.AllowPorts, nl.AllowPorts) ||
				!slices.Equal(f.lists.TLSPorts, nl.TLSPorts) || !slices.Equal(f.lists.HTTPPorts, nl.HTTPPorts) || f.lists.Audit != nl.Audit {
				if err := updateSets(nl); err != nil {
					return fmt.Errorf("cannot update the allowlist and denylist sets: %w", err)
				}
				f.lists = nl
			}
			f.live.Store(next)
			f.warnNamePorts(next)
			if cur.Mode != np.Mode {
				f.announceMode(next, true)
			}
			f.metrics.reloaded(true)
			f.metrics.notPending()
			dAdded, dRemoved := diff(cur.Domains, np.Domains)
			log.Info("policy reloaded", logKeyIPv4, len(n4), logKeyIPv6, len(n6),
				logKeyDomains, len(np.Domains), logKeyDenied, len(nl.Deny4)+len(nl.Deny6)+len(np.DenyDomains), logKeyAdded, added, logKeyRemoved, removed,
				logKeyDomainsAdded, dAdded, logKeyDomainsRemoved, dRemoved, logKeyWithPorts, len(np.AddrPorts)+len(np.NamePorts))
			return nil
		},
		OnError: func(err error) {
			if errors.Is(err, policy.ErrNotApplied) {
				// The kernel and the proxies stay on the previous policy,
				// together, until the edit goes through.
				log.Error("policy not applied yet; the previous policy stays in force", logKeyErr, err)
				f.metrics.retrying()
				return
			}
			log.Warn("policy not reloaded; the previous policy stays", logKeyErr, err)
			// An edit waiting to be applied is given up for this one.
			f.metrics.reloaded(false)
			f.metrics.notPending()
		},
		RetryInterval: retry,
		Logger:        log,
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
