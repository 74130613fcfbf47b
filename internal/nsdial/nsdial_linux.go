package nsdial

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// Dialer dials from a namespace. Its threads serve nothing else and end
// with it ([Dialer.Close]).
type Dialer struct {
	reqs chan request
	quit chan struct{} // closed by Close; reqs never is, as dials may race it
	wg   sync.WaitGroup
	once sync.Once
}

type request struct {
	ctx              context.Context
	network, address string
	done             chan result
}

type result struct {
	c   net.Conn
	err error
}

// New starts workers threads in the namespace at path (such as
// /run/netns/NAME) that dial with d.
func New(path string, d net.Dialer, workers int) (*Dialer, error) {
	nd := &Dialer{reqs: make(chan request), quit: make(chan struct{})}
	ready := make(chan error, workers)
	for range workers {
		nd.wg.Go(func() {
			// Never unlocked: the thread ends with this goroutine
			// instead of going back to the pool in the namespace.
			runtime.LockOSThread()
			err := Enter(path)
			ready <- err
			if err != nil {
				return
			}
			for {
				select {
				case r := <-nd.reqs:
					c, err := d.DialContext(r.ctx, r.network, r.address)
					r.done <- result{c, err}
				case <-nd.quit:
					return
				}
			}
		})
	}
	var errs []error
	for range workers {
		errs = append(errs, <-ready)
	}
	if err := errors.Join(errs...); err != nil {
		nd.Close()
		return nil, err
	}
	return nd, nil
}

// Enter moves the calling thread into the network namespace at path. The
// caller has locked its goroutine to the thread (runtime.LockOSThread),
// and unlocks it only once the thread is back in its own namespace; else
// the thread ends with the goroutine.
func Enter(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter namespace %s: %w", path, err)
	}
	return nil
}

// DialContext dials address, a literal IP and port, from the namespace: a
// host name would be resolved on other threads, outside it. The caller
// closes the connection.
func (nd *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if _, err := netip.ParseAddrPort(address); err != nil {
		return nil, fmt.Errorf("dial %s: want a literal IP and port", address)
	}
	r := request{ctx: ctx, network: network, address: address, done: make(chan result, 1)}
	select {
	case nd.reqs <- r:
	case <-ctx.Done():
		return nil, fmt.Errorf("dial %s: %w", address, ctx.Err())
	case <-nd.quit:
		return nil, fmt.Errorf("dial %s: %w", address, net.ErrClosed)
	}
	res := <-r.done
	return res.c, res.err
}

// Close ends the threads once the dials under way are done.
func (nd *Dialer) Close() {
	nd.once.Do(func() { close(nd.quit) })
	nd.wg.Wait()
}
