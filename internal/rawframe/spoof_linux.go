package rawframe

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// SendIP sends the IP packet of frame (an Ethernet frame, as [UDP] makes
// it) to dst through a raw socket that writes whole IP headers
// (IPPROTO_RAW, so IP_HDRINCL): its source is whatever the packet says.
// It needs CAP_NET_RAW.
func SendIP(frame []byte, dst netip.Addr) error {
	if len(frame) < 14 {
		return fmt.Errorf("rawframe: frame of %d bytes", len(frame))
	}
	family := unix.AF_INET
	if dst.Is6() {
		family = unix.AF_INET6
	}
	s, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	return unix.Sendto(s, frame[14:], 0, sockaddr(netip.AddrPortFrom(dst, 0)))
}

// SendTransparent sends payload to dst from src, an address that need not
// be the host's, through a UDP socket with IP_TRANSPARENT (or
// IPV6_TRANSPARENT). It needs CAP_NET_RAW or CAP_NET_ADMIN.
func SendTransparent(src, dst netip.AddrPort, payload []byte) error {
	family, level, opt := unix.AF_INET, unix.IPPROTO_IP, unix.IP_TRANSPARENT
	if dst.Addr().Is6() {
		family, level, opt = unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_TRANSPARENT
	}
	s, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	if err := unix.SetsockoptInt(s, level, opt, 1); err != nil {
		return fmt.Errorf("rawframe: IP_TRANSPARENT: %w", err)
	}
	if err := unix.Bind(s, sockaddr(src)); err != nil {
		return err
	}
	return unix.Sendto(s, payload, 0, sockaddr(dst))
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
	}
	return &unix.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}
}
