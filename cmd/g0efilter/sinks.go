package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/events/gotify"
	"github.com/g0lab/g0efilter/nftrules"
)

// eventQueueSize bounds the events waiting for the log and the log file.
const eventQueueSize = 4096

// sinks are where decisions go: the log, the LOG_FILE and Gotify when set.
// Each sits behind its own queue, so a slow disk or server never holds up a
// connection, the log or another sink.
type sinks struct {
	events.Sink
	queues   []*events.Queue
	closer   []func() error
	notifier *gotify.Notifier
}

// markedClient is an HTTP client whose connections carry the bypass mark:
// the filter's own requests must not be filtered as the workload's are.
func markedClient() *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, Control: markControl(nftrules.DefaultBypassMark)}
	tr := &http.Transport{DialContext: d.DialContext, Proxy: nil, ForceAttemptHTTP2: true, IdleConnTimeout: 90 * time.Second}
	return &http.Client{Transport: tr}
}

func openSinks(cfg config, log *slog.Logger, host string) (*sinks, error) {
	s := &sinks{}
	add := func(next events.Sink) {
		q := events.NewQueue(next, eventQueueSize)
		s.queues = append(s.queues, q)
	}
	add(events.NewLogSink(log))
	if cfg.LogFile != "" {
		f, err := events.OpenFile(cfg.LogFile, events.FileConfig{})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envLogFile, err)
		}
		add(f)
		s.closer = append(s.closer, f.Close)
	}
	all := make([]events.Sink, len(s.queues))
	for i, q := range s.queues {
		all[i] = q
	}
	if cfg.NotificationHost != nil {
		n, err := gotify.New(gotify.Config{
			URL:     cfg.NotificationHost.String(),
			Token:   cfg.NotificationKey,
			Host:    host,
			Backoff: cfg.NotificationBackoff,
			Ignore:  cfg.NotificationIgnoreDomains,
			Client:  markedClient(),
			Logger:  log,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envNotificationHost, err)
		}
		s.notifier = n
		all = append(all, n)
	}
	s.Sink = events.Multi(all...)
	return s, nil
}

// close delivers what is queued, within ctx, and closes the sinks.
func (s *sinks) close(ctx context.Context, log *slog.Logger) {
	for _, q := range s.queues {
		if err := q.Close(ctx); err != nil {
			log.Warn("events not delivered at shutdown", logKeyErr, err)
		}
		if n := q.Dropped(); n > 0 {
			log.Warn("events dropped because a sink was too slow", logKeyDropped, n)
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
