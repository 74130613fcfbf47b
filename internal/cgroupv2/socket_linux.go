package cgroupv2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Attribute and sizes of the inet sock_diag interface (linux/inet_diag.h).
const (
	inetDiagCgroupID = 21 // INET_DIAG_CGROUP_ID: the socket's cgroup v2 id, u64
	inetDiagReqLen   = 56 // struct inet_diag_req_v2
	inetDiagMsgLen   = 72 // struct inet_diag_msg
	allStates        = 0xffffffff
)

// SocketID returns the id of the cgroup (version 2) that the calling
// process's new sockets belong to, as the kernel reports it for a socket
// through sock_diag. Unlike [Self], it needs no cgroup2 file system in
// sight: in a container whose /sys/fs/cgroup shows only version 1
// hierarchies, the process still has a cgroup v2, and nftables' "socket
// cgroupv2" matches it. It needs Linux 5.7 or later.
func SocketID() (uint64, error) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("cgroupv2: socket to ask about: %w", err)
	}
	defer pc.Close()
	port := uint16(pc.LocalAddr().(*net.UDPAddr).Port)

	c, err := netlink.Dial(unix.NETLINK_SOCK_DIAG, nil)
	if err != nil {
		return 0, fmt.Errorf("cgroupv2: sock_diag: %w", err)
	}
	defer c.Close()
	req := make([]byte, inetDiagReqLen)
	req[0], req[1] = unix.AF_INET, unix.IPPROTO_UDP
	binary.NativeEndian.PutUint32(req[4:], allStates)
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.SOCK_DIAG_BY_FAMILY, Flags: netlink.Request | netlink.Dump},
		Data:   req,
	})
	if err != nil {
		return 0, fmt.Errorf("cgroupv2: sock_diag: %w", err)
	}
	for _, m := range msgs {
		if id, ok, err := socketCgroup(m.Data, port); ok || err != nil {
			return id, err
		}
	}
	return 0, errors.New("cgroupv2: sock_diag did not list the socket")
}

// socketCgroup reads the cgroup id from one inet_diag_msg if it describes
// the socket bound to 127.0.0.1:port.
func socketCgroup(b []byte, port uint16) (uint64, bool, error) {
	if len(b) < inetDiagMsgLen {
		return 0, false, nil
	}
	sport := binary.BigEndian.Uint16(b[4:])
	src, _ := netip.AddrFromSlice(b[8:12])
	if sport != port || src != netip.AddrFrom4([4]byte{127, 0, 0, 1}) {
		return 0, false, nil
	}
	ad, err := netlink.NewAttributeDecoder(b[inetDiagMsgLen:])
	if err != nil {
		return 0, true, fmt.Errorf("cgroupv2: sock_diag: %w", err)
	}
	for ad.Next() {
		if ad.Type() == inetDiagCgroupID {
			return ad.Uint64(), true, nil
		}
	}
	if err := ad.Err(); err != nil {
		return 0, true, fmt.Errorf("cgroupv2: sock_diag: %w", err)
	}
	return 0, true, errors.New("cgroupv2: the kernel reports no cgroup id for sockets (Linux 5.7 or later does)")
}
