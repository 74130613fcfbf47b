package sni

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// spliceSize is the most one splice(2) call moves, and the size asked for
// each pipe.
const spliceSize = 1 << 20

// splicePipe is a kernel pipe that splice(2) moves bytes through.
type splicePipe struct{ r, w int }

// idlePipes keeps empty pipes for reuse, at most 2×GOMAXPROCS of them; a
// pipe given back to a full pool is closed at once. The runtime's own
// splice keeps its pipes until the garbage collector drops them, which
// after a burst of connections can take minutes.
var idlePipes = make(chan *splicePipe, 2*runtime.GOMAXPROCS(0))

// pipe2 makes a pipe; tests replace it.
var pipe2 = unix.Pipe2

// errNoPipe is returned by splice when no pipe could be made.
var errNoPipe = errors.New("no pipe for splice")

func getPipe() (*splicePipe, error) {
	select {
	case p := <-idlePipes:
		return p, nil
	default:
	}
	var fds [2]int
	if err := pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, errNoPipe
	}
	// A smaller pipe than asked for works too, in more calls.
	unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, spliceSize)
	return &splicePipe{r: fds[0], w: fds[1]}, nil
}

// putPipe keeps an empty pipe for reuse, or closes it if enough are kept.
func putPipe(p *splicePipe) {
	select {
	case idlePipes <- p:
	default:
		p.close()
	}
}

func (p *splicePipe) close() {
	unix.Close(p.r)
	unix.Close(p.w)
}

// copyN copies up to n bytes from src to dst, fewer without an error if src
// ends first. Between two *net.TCPConn the bytes move inside the kernel,
// with splice(2); when no pipe can be made for it (out of descriptors),
// through memory.
func copyN(dst, src net.Conn, n int64) (int64, error) {
	d, ok1 := dst.(*net.TCPConn)
	s, ok2 := src.(*net.TCPConn)
	if !ok1 || !ok2 {
		return io.Copy(dst, &io.LimitedReader{R: src, N: n})
	}
	written, err := splice(d, s, n)
	if !errors.Is(err, errNoPipe) {
		return written, err
	}
	// Hide ReadFrom, which would splice through the runtime's pipes.
	m, err := io.Copy(struct{ io.Writer }{dst}, &io.LimitedReader{R: src, N: n - written})
	return written + m, err
}

// splice moves up to n bytes from src to dst through a pipe. It takes the
// pipe only once src has bytes to read and gives it back when src has none
// left, so a connection that waits holds no pipe. Deadlines on src and dst
// bound the waits.
func splice(dst, src *net.TCPConn, n int64) (written int64, err error) {
	rsrc, err := src.SyscallConn()
	if err != nil {
		return 0, err
	}
	rdst, err := dst.SyscallConn()
	if err != nil {
		return 0, err
	}
	var p *splicePipe
	defer func() {
		if p != nil {
			putPipe(p)
		}
	}()
	for written < n {
		// From src into the pipe, which is empty.
		var inPipe int
		var serr error
		err := rsrc.Read(func(fd uintptr) bool {
			if p == nil {
				if p, serr = getPipe(); serr != nil {
					return true
				}
			}
			var k int64
			k, serr = spliceRetry(int(fd), p.w, min(n-written, spliceSize))
			if serr == unix.EAGAIN {
				putPipe(p)
				p = nil
				return false
			}
			inPipe = int(k)
			return true
		})
		if err == nil && serr != nil {
			err = serr
			if serr != errNoPipe {
				err = os.NewSyscallError("splice", serr)
			}
		}
		if err != nil {
			return written, err
		}
		if inPipe == 0 {
			return written, nil // src ended
		}

		// From the pipe to dst, all of it.
		for inPipe > 0 {
			var k int64
			err := rdst.Write(func(fd uintptr) bool {
				k, serr = spliceRetry(p.r, int(fd), int64(inPipe))
				return serr != unix.EAGAIN
			})
			if err == nil && serr != nil {
				err = os.NewSyscallError("splice", serr)
			}
			if err != nil {
				p.close() // not empty
				p = nil
				return written, err
			}
			inPipe -= int(k)
			written += k
		}
	}
	return written, nil
}

// spliceRetry calls splice(2) without blocking, again if interrupted. It
// returns 0 with the error.
func spliceRetry(in, out int, n int64) (int64, error) {
	for {
		k, err := unix.Splice(in, nil, out, nil, int(n), unix.SPLICE_F_NONBLOCK)
		if err != unix.EINTR {
			if err != nil {
				return 0, err
			}
			return k, nil
		}
	}
}
