package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/g0lab/g0efilter/dashboardapi"
)

// metricsRegistry holds the dashboard's Prometheus metrics: what it
// ingested, its live-stream clients and remote unblocks (when on).
func metricsRegistry(srv *dashboardapi.Server, unblocks *dashboardapi.Unblocks) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "g0efilter_dashboard_events_ingested_total",
			Help: "Events filters shipped that were stored.",
		}, func() float64 { return float64(srv.Stats().Ingested) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "g0efilter_dashboard_events_rejected_total",
			Help: "Events filters shipped that were refused as invalid.",
		}, func() float64 { return float64(srv.Stats().Rejected) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "g0efilter_dashboard_sse_clients",
			Help: "Live-stream (SSE) clients connected now.",
		}, func() float64 { return float64(srv.Stats().Streams) }),
	)
	if unblocks != nil {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "g0efilter_dashboard_unblocks_created_total",
				Help: "Remote unblock requests created.",
			}, func() float64 { return float64(unblocks.Stats().Created) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "g0efilter_dashboard_unblocks_pending",
				Help: "Remote unblock requests waiting for their filter.",
			}, func() float64 { return float64(unblocks.Stats().Pending) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name:        "g0efilter_dashboard_unblocks_acknowledged_total",
				Help:        "Remote unblock requests filters acknowledged, by result.",
				ConstLabels: prometheus.Labels{"result": "applied"},
			}, func() float64 { return float64(unblocks.Stats().Applied) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name:        "g0efilter_dashboard_unblocks_acknowledged_total",
				Help:        "Remote unblock requests filters acknowledged, by result.",
				ConstLabels: prometheus.Labels{"result": "failed"},
			}, func() float64 { return float64(unblocks.Stats().Failed) }),
		)
	}
	return reg
}
