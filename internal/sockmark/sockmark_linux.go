package sockmark

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Control returns a [net.Dialer] Control function that sets the socket's
// mark to mark before it connects. Setting a mark needs CAP_NET_ADMIN.
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
