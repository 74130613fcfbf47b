//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// NSDialer dials from a namespace on threads that stay in it, made by
// [Env.BoxDialer]. Unlike [Env.DialContext], which starts a thread per
// connection, it suits load tests, where starting threads or switching
// namespaces per connection would cost more than what is measured.
type NSDialer struct {
	reqs chan dialRequest
}

type dialRequest struct {
	ctx              context.Context
	network, address string
	done             chan dialResult
}

type dialResult struct {
	c   net.Conn
	err error
}

// BoxDialer starts workers goroutines, each locked to a thread in the box
// namespace, that dial with d. They end, and their threads with them, when
// the test ends.
func (e *Env) BoxDialer(d net.Dialer, workers int) *NSDialer {
	e.t.Helper()
	nd := &NSDialer{reqs: make(chan dialRequest)}
	var wg sync.WaitGroup
	ready := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			// The thread is never unlocked: it ends with this goroutine.
			runtime.LockOSThread()
			fd, err := unix.Open(netnsDir+"/"+e.Box, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err == nil {
				err = unix.Setns(fd, unix.CLONE_NEWNET)
				unix.Close(fd)
			}
			ready <- err
			if err != nil {
				return
			}
			for r := range nd.reqs {
				c, err := d.DialContext(r.ctx, r.network, r.address)
				r.done <- dialResult{c, err}
			}
		})
	}
	e.t.Cleanup(func() {
		close(nd.reqs)
		wg.Wait()
	})
	for range workers {
		if err := <-ready; err != nil {
			e.t.Fatalf("e2e: box dialer: enter namespace %s: %v", e.Box, err)
		}
	}
	return nd
}

// DialContext dials address from the namespace. The caller closes the
// connection.
func (nd *NSDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	r := dialRequest{ctx: ctx, network: network, address: address, done: make(chan dialResult, 1)}
	select {
	case nd.reqs <- r:
	case <-ctx.Done():
		return nil, fmt.Errorf("e2e: dial %s: %w", address, ctx.Err())
	}
	res := <-r.done
	return res.c, res.err
}
