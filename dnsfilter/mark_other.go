//go:build !linux

package dnsfilter

import (
	"fmt"
	"runtime"
	"syscall"
)

// markControl returns nil: sockets carry no mark on this operating system,
// and [checkMark] refuses a non-zero one before any socket is made.
func markControl(uint32) func(network, address string, c syscall.RawConn) error { return nil }

// checkMark returns [ErrMarkUnsupported] for a non-zero mark.
func checkMark(mark uint32) error {
	if mark != 0 {
		return fmt.Errorf("%w (GOOS=%s, mark %#x)", ErrMarkUnsupported, runtime.GOOS, mark)
	}
	return nil
}
