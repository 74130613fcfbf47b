package dnsfilter

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// markControl returns a net.Dialer Control function that sets SO_MARK to
// mark on the socket before it connects, or nil when mark is zero. Setting
// a mark needs CAP_NET_ADMIN.
func markControl(mark uint32) func(network, address string, c syscall.RawConn) error {
	if mark == 0 {
		return nil
	}
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("dnsfilter: set SO_MARK %#x: %w", mark, serr)
		}
		return nil
	}
}

// checkMark reports whether sockets can carry mark on this system.
func checkMark(uint32) error { return nil }
