package sni

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// soOriginalDst is SO_ORIGINAL_DST (linux/netfilter_ipv4.h), and also
// IP6T_SO_ORIGINAL_DST at level SOL_IPV6 (linux/netfilter_ipv6/ip6_tables.h).
const soOriginalDst = 80

// originalDestination returns where a redirected TCP connection was going,
// from the kernel's connection tracking.
func originalDestination(c net.Conn) (netip.AddrPort, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("%T is not a TCP connection", c)
	}
	local := addrPort(tc.LocalAddr())
	raw, err := tc.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	var dst netip.AddrPort
	var serr error
	err = raw.Control(func(fd uintptr) {
		if local.Addr().Is4() {
			var sa unix.RawSockaddrInet4
			serr = getsockopt(fd, unix.SOL_IP, unsafe.Pointer(&sa), unix.SizeofSockaddrInet4)
			port := uint16(sa.Port>>8 | sa.Port<<8)
			dst = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), port)
		} else {
			var sa unix.RawSockaddrInet6
			serr = getsockopt(fd, unix.SOL_IPV6, unsafe.Pointer(&sa), unix.SizeofSockaddrInet6)
			port := uint16(sa.Port>>8 | sa.Port<<8)
			dst = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("SO_ORIGINAL_DST: %w", err)
	}
	if dst == local {
		return netip.AddrPort{}, ErrNotRedirected
	}
	return dst, nil
}

func getsockopt(fd uintptr, level int, p unsafe.Pointer, size uint32) error {
	l := size
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, uintptr(level), soOriginalDst,
		uintptr(p), uintptr(unsafe.Pointer(&l)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// isResourceError reports whether an accept error is a shortage that
// clears by itself as connections close.
func isResourceError(err error) bool {
	for _, e := range []syscall.Errno{unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM, unix.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
