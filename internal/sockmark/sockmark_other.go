//go:build !linux

package sockmark

import (
	"fmt"
	"runtime"
	"syscall"
)

// ErrUnsupported is the error of every connection on a system without
// socket marks.
var ErrUnsupported = fmt.Errorf("SO_MARK is not supported on %s", runtime.GOOS)

// Control returns a [net.Dialer] Control function that fails with
// [ErrUnsupported]: this system has no socket marks.
func Control(uint32) func(network, address string, c syscall.RawConn) error {
	return func(string, string, syscall.RawConn) error { return ErrUnsupported }
}

// Get fails with [ErrUnsupported]: this system has no socket marks.
func Get(syscall.Conn) (uint32, error) { return 0, ErrUnsupported }
