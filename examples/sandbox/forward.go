package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/g0lab/g0efilter/internal/testbed"
)

const forwardDialTimeout = 5 * time.Second

// forwarder accepts connections on a listener (the machine's loopback)
// and joins each to a connection that Dial makes to Target (the dashboard,
// dialled from inside the box). Nothing in the machine's namespace
// changes: the sandbox process holds both ends.
type forwarder struct {
	Listener net.Listener
	Target   string
	Dial     testbed.DialFunc
	Log      *slog.Logger // nil means discard

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
}

// Start accepts, on a goroutine of its own, until Close.
func (f *forwarder) Start() {
	f.wg.Go(f.serve)
}

// serve accepts until the listener is closed. It runs counted in f.wg, so
// the connections' goroutines it adds are waited for too.
func (f *forwarder) serve() {
	for {
		c, err := f.Listener.Accept()
		if err != nil {
			return
		}
		if !f.track(c) {
			_ = c.Close()
			return
		}
		f.wg.Go(func() { f.forward(c) })
	}
}

func (f *forwarder) forward(c net.Conn) {
	defer f.untrack(c)
	ctx, cancel := context.WithTimeout(context.Background(), forwardDialTimeout)
	up, err := f.Dial(ctx, "tcp", f.Target)
	cancel()
	if err != nil {
		f.logger().Warn("forward: cannot reach the dashboard in the box", "err", err)
		return
	}
	if !f.track(up) {
		_ = up.Close()
		return
	}
	defer f.untrack(up)
	var wg sync.WaitGroup
	wg.Go(func() { pipe(up, c) })
	pipe(c, up)
	wg.Wait()
}

// pipe copies from src to dst, then half-closes dst (or closes it, when
// it cannot) so that the other side sees the end.
func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		_ = dst.Close()
	}
}

// track records c, so that Close can end it; false once closing.
func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return false
	}
	if f.conns == nil {
		f.conns = map[net.Conn]struct{}{}
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) untrack(c net.Conn) {
	_ = c.Close()
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

// Close stops accepting, ends the connections under way (a browser's
// event stream never ends by itself) and waits for them and the accept
// loop.
func (f *forwarder) Close() {
	_ = f.Listener.Close()
	f.mu.Lock()
	f.done = true
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *forwarder) logger() *slog.Logger {
	if f.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Log
}
