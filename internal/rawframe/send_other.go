//go:build !linux

package rawframe

import (
	"fmt"
	"runtime"
)

// Send fails: packet sockets are Linux's.
func Send(ifname string, frame []byte, bypass bool) error {
	return fmt.Errorf("rawframe: not implemented on %s", runtime.GOOS)
}
