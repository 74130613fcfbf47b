//go:build !linux

package rawframe

import (
	"fmt"
	"net/netip"
	"runtime"
)

// Send fails: packet sockets are Linux's.
func Send(ifname string, frame []byte, bypass bool) error {
	return fmt.Errorf("rawframe: not implemented on %s", runtime.GOOS)
}

// SendIP fails: it is written for Linux.
func SendIP(frame []byte, dst netip.Addr) error {
	return fmt.Errorf("rawframe: not implemented on %s", runtime.GOOS)
}

// SendTransparent fails: it is written for Linux.
func SendTransparent(src, dst netip.AddrPort, payload []byte) error {
	return fmt.Errorf("rawframe: not implemented on %s", runtime.GOOS)
}
