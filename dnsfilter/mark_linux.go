package dnsfilter

import (
	"syscall"

	"github.com/g0lab/g0efilter/internal/sockmark"
)

// markControl returns a net.Dialer Control function that sets SO_MARK to
// mark on the socket before it connects, or nil when mark is zero. Setting
// a mark needs CAP_NET_ADMIN.
func markControl(mark uint32) func(network, address string, c syscall.RawConn) error {
	if mark == 0 {
		return nil
	}
	return sockmark.Control(mark)
}

// checkMark reports whether sockets can carry mark on this system.
func checkMark(uint32) error { return nil }
