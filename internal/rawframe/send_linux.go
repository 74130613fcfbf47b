package rawframe

import (
	"encoding/binary"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// Send writes frame to the device ifname through an AF_PACKET socket,
// with PACKET_QDISC_BYPASS when bypass is set (the frame then skips the
// device's queueing discipline). It needs CAP_NET_RAW.
func Send(ifname string, frame []byte, bypass bool) error {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return err
	}
	if len(frame) < 14 {
		return fmt.Errorf("rawframe: frame of %d bytes", len(frame))
	}
	proto := binary.BigEndian.Uint16(frame[12:14])
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(proto)))
	if err != nil {
		return fmt.Errorf("rawframe: packet socket: %w", err)
	}
	defer unix.Close(fd)
	if bypass {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			return fmt.Errorf("rawframe: PACKET_QDISC_BYPASS: %w", err)
		}
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifi.Index, Halen: 6}
	copy(sa.Addr[:], frame[:6])
	if err := unix.Sendto(fd, frame, 0, sa); err != nil {
		return fmt.Errorf("rawframe: send on %s: %w", ifname, err)
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
