package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/g0lab/g0efilter/events"
)

// eventQueueSize bounds the events waiting for the log and the log file.
const eventQueueSize = 4096

// sinks are where decisions go: the log, and the LOG_FILE when set. Each
// sits behind its own queue, so a slow disk never holds up a connection or
// the log.
type sinks struct {
	events.Sink
	queues []*events.Queue
	closer []func() error
}

func openSinks(cfg config, log *slog.Logger) (*sinks, error) {
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
	for _, c := range s.closer {
		c()
	}
}
