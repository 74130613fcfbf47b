package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/sni"
)

// metrics are the filter's Prometheus metrics, served on METRICS_ADDR
// only. Names follow Prometheus conventions: a g0efilter_ prefix, _total
// for counters, base units.
type metrics struct {
	reg        *prometheus.Registry
	decisions  *prometheus.CounterVec
	dns        *prometheus.CounterVec
	pinned     prometheus.Counter
	reloads    *prometheus.CounterVec
	lastLoad   prometheus.Gauge
	waiting    prometheus.Gauge
	guarantees *prometheus.GaugeVec
	audit      prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "g0efilter_decisions_total",
			Help: "Decisions taken, by component (https, http, dns, kernel), action (allowed, blocked, would-block, error) and reason. would-block: refused by the policy and let through, auditing.",
		}, []string{"component", "action", "reason"}),
		dns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "g0efilter_dns_queries_total",
			Help: "DNS queries answered by the filtering resolver, by action.",
		}, []string{"action"}),
		pinned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "g0efilter_dns_pinned_addresses_total",
			Help: "Addresses from allowed DNS answers pinned in the kernel, or found pinned long enough already (each answer counts again).",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "g0efilter_policy_reloads_total",
			Help: "Policy reloads, by result (ok: applied; error: refused, the previous policy stays; retry: valid, but could not be applied yet, tried again later).",
		}, []string{"result"}),
		lastLoad: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "g0efilter_policy_last_reload_timestamp_seconds",
			Help: "When the policy in force was loaded, as a Unix time.",
		}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "g0efilter_policy_pending",
			Help: "1 while a valid policy edit waits to be applied (the kernel refused it; it is tried again with back-off), the previous policy still in force; 0 otherwise.",
		}),
		guarantees: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "g0efilter_guarantee",
			Help: "1 where a guarantee against a hostile workload holds: cgroup (own sockets told apart by cgroup, not by a mark alone), egress (frames from packet sockets dropped at every device), no_af_xdp (the kernel has no AF_XDP sockets, which would send frames past the egress guard).",
		}, []string{"guarantee"}),
	}
	m.audit = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "g0efilter_audit_mode",
		Help: "1 while the filter only audits (the policy's mode: audit): nothing is blocked, what would be is counted as would-block; 0 while it enforces.",
	})
	m.reg.MustRegister(m.decisions, m.dns, m.pinned, m.reloads, m.lastLoad, m.waiting, m.guarantees, m.audit,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, result := range []string{"ok", "error", "retry"} {
		m.reloads.WithLabelValues(result)
	}
	return m
}

// Emit counts an event; metrics is one of the sinks. A change of mode is
// not a decision: g0efilter_audit_mode shows it.
func (m *metrics) Emit(e events.Event) {
	if e.Action == events.Changed {
		return
	}
	m.decisions.WithLabelValues(string(e.Component), e.Action.String(), string(e.Reason)).Inc()
	if e.Component == events.DNS {
		m.dns.WithLabelValues(e.Action.String()).Inc()
	}
}

var _ events.Sink = (*metrics)(nil)

// auditing sets whether the filter only audits. m may be nil (no metrics).
func (m *metrics) auditing(audit bool) {
	if m == nil {
		return
	}
	v := 0.0
	if audit {
		v = 1
	}
	m.audit.Set(v)
}

// guarantee sets whether the named guarantee holds.
func (m *metrics) guarantee(name string, holds bool) {
	v := 0.0
	if holds {
		v = 1
	}
	m.guarantees.WithLabelValues(name).Set(v)
}

// reloaded counts a policy applied (ok) or refused. m may be nil.
func (m *metrics) reloaded(ok bool) {
	if m == nil {
		return
	}
	if !ok {
		m.reloads.WithLabelValues("error").Inc()
		return
	}
	m.reloads.WithLabelValues("ok").Inc()
	m.lastLoad.SetToCurrentTime()
}

// retrying counts a valid policy that could not be applied, tried again
// later, and marks it pending. m may be nil.
func (m *metrics) retrying() {
	if m == nil {
		return
	}
	m.reloads.WithLabelValues("retry").Inc()
	m.waiting.Set(1)
}

// notPending marks that no valid policy waits to be applied: the one the
// file holds is in force, or the file's is invalid. m may be nil.
func (m *metrics) notPending() {
	if m == nil {
		return
	}
	m.waiting.Set(0)
}

// watchProxy exports the proxies' connection and byte counters.
func (m *metrics) watchProxy(p *sni.Proxy) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "g0efilter_proxy_connections_active",
			Help: "Connections the HTTP and HTTPS proxies hold open now.",
		}, func() float64 { return float64(p.Stats().Active) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "g0efilter_proxy_connections_total",
			Help: "Connections the HTTP and HTTPS proxies accepted.",
		}, func() float64 { return float64(p.Stats().Accepted) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "g0efilter_proxy_accept_waits_total",
			Help: "Accepts of the HTTP and HTTPS proxies that failed for want of descriptors or buffers, each followed by a wait (5ms, doubling up to 1s) before the next.",
		}, func() float64 { return float64(p.Stats().AcceptWaits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "g0efilter_proxy_bytes_total",
			Help:        "Bytes forwarded by the proxies, by direction (up: client to destination).",
			ConstLabels: prometheus.Labels{"direction": "up"},
		}, func() float64 { return float64(p.Stats().BytesUp) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "g0efilter_proxy_bytes_total",
			Help:        "Bytes forwarded by the proxies, by direction (up: client to destination).",
			ConstLabels: prometheus.Labels{"direction": "down"},
		}, func() float64 { return float64(p.Stats().BytesDown) }),
	)
}

// watchDropped exports how many events a sink's queue dropped.
func (m *metrics) watchDropped(sink string, dropped func() uint64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "g0efilter_events_dropped_total",
		Help:        "Events a sink did not deliver: its queue was full (the sink too slow) or, for the file, the write failed (a full disk, say).",
		ConstLabels: prometheus.Labels{"sink": sink},
	}, func() float64 { return float64(dropped()) }))
}
