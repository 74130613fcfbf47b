// Package promserve serves a Prometheus registry at /metrics on a listener
// of its own, for the commands' opt-in METRICS_ADDR.
//
// Typical usage:
//
//	wait := promserve.Serve(ctx, ln, registry, logger)
//	defer wait() // after ctx has ended
package promserve

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// shutdownTimeout bounds how long a scrape in progress may finish once ctx
// has ended.
const shutdownTimeout = 2 * time.Second

// idleTimeout closes a kept-alive connection that asks nothing more for
// this long: longer than any usual scrape interval, so that a scraper's
// connection is reused, but scrapers that open a new connection each time
// leave nothing behind. A variable for tests.
var idleTimeout = 3 * time.Minute

// Serve serves reg at GET /metrics on ln until ctx ends, then shuts the
// server down. It returns at once; the function it returns waits until the
// server has stopped, and must be called only after ctx has ended. A
// serving error is logged to log.
func Serve(ctx context.Context, ln net.Listener, reg *prometheus.Registry, log *slog.Logger) (wait func()) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second,
		IdleTimeout: idleTimeout}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		hs.Shutdown(sctx)
	})
	return func() {
		<-done
		stop()
	}
}
