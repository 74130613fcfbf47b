package sni

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// errIdle ends a connection on which nothing moved for the idle timeout.
var errIdle = errors.New("idle timeout")

// chunk is how much one splice call forwards before the byte counters are
// updated. Deadlines, not the chunk, bound how long a call can block.
const chunk = 4 << 20

// Directions of a relayed connection.
const (
	up   = 0 // client to destination
	down = 1 // destination to client
)

// idleState tracks the two directions of a connection for the idle timeout:
// a direction is idle once it moved nothing for a whole timeout, or has
// finished. The connection ends when both are.
type idleState struct {
	timeout time.Duration
	idle    [2]atomic.Bool
}

// stalled records that direction dir moved nothing for a whole timeout and
// reports whether the other one is idle too.
func (s *idleState) stalled(dir int) bool {
	s.idle[dir].Store(true)
	return s.idle[1-dir].Load()
}

func (s *idleState) active(dir int) { s.idle[dir].Store(false) }

// relay forwards the connection both ways until both directions are done,
// the idle timeout passes, or either side fails. forwardUp, if not nil,
// carries the client-to-destination direction instead of a plain copy (the
// HTTP proxy checks each request there).
func (c *conn) relay(forwardUp func(*idleState) error) {
	st := &idleState{timeout: c.proxy.idleTimeout()}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := c.pipe(st, down, c.client, c.upstream, -1); err != nil {
			c.fail()
		}
	})
	var err error
	if forwardUp != nil {
		err = forwardUp(st)
	} else {
		err = c.pipe(st, up, c.upstream, c.client, -1)
	}
	if err != nil {
		c.fail()
	}
	wg.Wait()
}

// fail ends both sides of the connection with a reset: one side failed or
// was refused, and the other should not mistake that for a clean end.
func (c *conn) fail() {
	c.reset()
	c.mu.Lock()
	if tc, ok := c.upstream.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.mu.Unlock()
	c.abort()
}

// pipe copies from src to dst in direction dir: limit bytes, or until src
// ends if limit is negative, in which case it then half-closes dst. Between
// two *net.TCPConn the copy is a splice(2) inside the kernel. Stalls are
// bounded by the idle timeout of st.
func (c *conn) pipe(st *idleState, dir int, dst, src net.Conn, limit int64) error {
	counter := &c.proxy.stats.up
	if dir == down {
		counter = &c.proxy.stats.down
	}
	for limit != 0 {
		deadline := time.Now().Add(st.timeout)
		src.SetReadDeadline(deadline)
		dst.SetWriteDeadline(deadline)
		want := int64(chunk)
		if limit > 0 {
			want = min(limit, chunk)
		}
		n, err := copyN(dst, src, want)
		if n > 0 {
			st.active(dir)
			counter.Add(uint64(n))
			if limit > 0 {
				limit -= n
			}
		}
		switch {
		case err == nil && n < want: // src ended
			if limit > 0 {
				return io.ErrUnexpectedEOF
			}
			closeWrite(dst)
			st.idle[dir].Store(true)
			return nil
		case err == nil:
		case isTimeout(err):
			if n == 0 && st.stalled(dir) {
				return errIdle
			}
		default:
			return err
		}
	}
	src.SetReadDeadline(time.Time{})
	dst.SetWriteDeadline(time.Time{})
	return nil
}

// closeWrite half-closes c if it can, and closes it otherwise.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}
