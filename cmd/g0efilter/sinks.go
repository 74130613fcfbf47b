package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/g0lab/g0efilter/dashboardapi"
	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/events/gotify"

	"github.com/g0lab/g0efilter/internal/sockmark"
)

// eventQueueSize bounds the events waiting for the log and the log file.
const eventQueueSize = 4096

// sinks are where decisions go: the log, and the LOG_FILE, Gotify and the
// dashboard when set.
// Each sits behind its own queue, so a slow disk or server never holds up a
// connection, the log or another sink.
type sinks struct {
	events.Sink
	queues   []namedQueue
	closer   []func() error
	notifier *gotify.Notifier
	shipper  *dashboardapi.Client
	observer *observer // OBSERVED_FILE's; nil without one
	// fileErrors counts the events the LOG_FILE could not take; nil
	// without one.
	fileErrors func() uint64
}

// reportingFile logs when events stop being written to the LOG_FILE (a
// full disk, say) and when they are written again: once each, not per
// event. Its Emit is called by one queue's goroutine only.
type reportingFile struct {
	*events.File
	log     *slog.Logger
	failing bool
}

func (r *reportingFile) Emit(e events.Event) {
	r.File.Emit(e)
	switch err := r.Err(); {
	case err != nil && !r.failing:
		r.failing = true
		r.log.Error("LOG_FILE: events cannot be written; they are dropped and counted (g0efilter_events_dropped_total{sink=\"file\"})", logKeyErr, err)
	case err == nil && r.failing:
		r.failing = false
		r.log.Info("LOG_FILE: events are written again", logKeyDropped, r.Errors())
	}
}

type namedQueue struct {
	name string // "log", "file"
	*events.Queue
}

// dropped returns, for each sink, a function that tells how many events it
// dropped.
func (s *sinks) dropped() map[string]func() uint64 {
	out := map[string]func() uint64{}
	for _, q := range s.queues {
		out[q.name] = q.Dropped
	}
	if fe := s.fileErrors; fe != nil {
		queue := out["file"]
		out["file"] = func() uint64 { return queue() + fe() }
	}
	if s.notifier != nil {
		out["gotify"] = s.notifier.Dropped
	}
	if s.shipper != nil {
		out["dashboard"] = s.shipper.Dropped
	}
	return out
}

// markedClient is an HTTP client whose connections carry the bypass mark:
// the filter's own requests must not be filtered as the workload's are.
func markedClient(mark uint32) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, Control: sockmark.Control(mark)}
	tr := &http.Transport{DialContext: d.DialContext, Proxy: nil, ForceAttemptHTTP2: true, IdleConnTimeout: 90 * time.Second}
	return &http.Client{Transport: tr}
}

// openSinks opens the sinks cfg asks for; extra sinks (metrics) take every
// event directly and must be as quick as a queue.
func openSinks(cfg config, log *slog.Logger, host string, extra ...events.Sink) (*sinks, error) {
	s := &sinks{}
	add := func(name string, next events.Sink) {
		s.queues = append(s.queues, namedQueue{name, events.NewQueue(next, eventQueueSize)})
	}
	add("log", events.NewLogSink(log))
	if cfg.LogFile != "" {
		f, err := events.OpenFile(cfg.LogFile, events.FileConfig{})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envLogFile, err)
		}
		add("file", &reportingFile{File: f, log: log})
		s.fileErrors = f.Errors
		s.closer = append(s.closer, f.Close)
	}
	if cfg.ObservedFile != "" {
		o, err := openObserver(cfg.ObservedFile, log)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envObservedFile, err)
		}
		add("observed", o)
		s.observer = o
	}
	all := append([]events.Sink(nil), extra...)
	for _, q := range s.queues {
		all = append(all, q)
	}
	if cfg.NotificationHost != nil {
		n, err := gotify.New(gotify.Config{
			URL:     cfg.NotificationHost.String(),
			Token:   cfg.NotificationKey,
			Host:    host,
			Backoff: cfg.NotificationBackoff,
			Ignore:  cfg.NotificationIgnoreDomains,
			Client:  markedClient(cfg.bypassMark()),
			Logger:  log,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envNotificationHost, err)
		}
		s.notifier = n
		all = append(all, n)
	}
	switch {
	case cfg.DashboardHost != nil && cfg.DashboardAPIKey != "":
		if err := dashboardapi.CheckFilterKey(cfg.DashboardAPIKey); err != nil {
			// The dashboard refuses to start with such a key, so this one
			// is not among its keys: say why events will not be taken.
			log.Warn(envDashboardAPIKey+" is a key the dashboard refuses (it takes 32 random bytes, as openssl rand -hex 32 makes): events will be refused", logKeyErr, err)
		}
		c, err := dashboardapi.NewClient(dashboardapi.ClientConfig{
			URL:        cfg.DashboardHost.String(),
			APIKey:     cfg.DashboardAPIKey,
			QueueSize:  cfg.DashboardQueueSize,
			StartDelay: cfg.DashboardStartDelay,
			HTTPClient: markedClient(cfg.bypassMark()),
			Logger:     log,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envDashboardHost, err)
		}
		s.shipper = c
		all = append(all, c)
	case cfg.DashboardHost != nil:
		log.Warn("DASHBOARD_HOST is set without DASHBOARD_API_KEY: events are not shipped")
	}
	multi := events.Multi(all...)
	// Every event names this filter, those of components that do not
	// know its name (the resolver) included: the dashboard files events
	// by it, and a key bound to a host name refuses the others.
	s.Sink = events.SinkFunc(func(e events.Event) {
		if e.Host == "" {
			e.Host = host
		}
		multi.Emit(e)
	})
	return s, nil
}

// close delivers what is queued, within ctx, and closes the sinks.
func (s *sinks) close(ctx context.Context, log *slog.Logger) {
	for _, q := range s.queues {
		if err := q.Close(ctx); err != nil {
			log.Warn("events not delivered at shutdown", logKeyErr, err)
		}
		if n := q.Dropped(); n > 0 {
			log.Warn("events dropped because a sink was too slow", logKeySink, q.name, logKeyDropped, n)
		}
	}
	if s.observer != nil {
		if err := s.observer.save(); err != nil {
			log.Warn("cannot write the record of observations at shutdown", logKeyErr, err, logKeyPath, s.observer.path)
		}
	}
	if s.shipper != nil {
		if err := s.shipper.Close(ctx); err != nil {
			log.Warn("events not shipped to the dashboard at shutdown", logKeyErr, err)
		}
	}
	if s.notifier != nil {
		if err := s.notifier.Close(ctx); err != nil {
			log.Warn("notifications not sent at shutdown", logKeyErr, err)
		}
	}
	for _, c := range s.closer {
		c()
	}
}
