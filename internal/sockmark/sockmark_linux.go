package sockmark

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Control returns a [net.Dialer] Control function that sets the socket's
// mark to mark before it connects. Setting a mark needs CAP_NET_ADMIN or,
// since Linux 5.17, CAP_NET_RAW, which containers have by default: a mark
// alone does not show that a socket is g0efilter's.
func Control(mark uint32) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("set SO_MARK %#x: %w", mark, serr)
		}
		return nil
	}
}

// Get returns the mark of the socket of c, such as a [net.TCPConn] or a
// [net.UDPConn].
func Get(c syscall.Conn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var mark int
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		mark, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK)
	}); err != nil {
		return 0, err
	}
	if gerr != nil {
		return 0, fmt.Errorf("get SO_MARK: %w", gerr)
	}
	return uint32(mark), nil
}
