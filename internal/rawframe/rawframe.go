// Package rawframe builds Ethernet frames carrying a UDP datagram and
// sends them through a packet socket, below the IP stack: what a workload
// with CAP_NET_RAW can do to get around rules that only the inet hooks
// apply. It also sends packets with a forged source, through a raw socket
// ([SendIP]) or a transparent one ([SendTransparent]). It is for this
// module's tests only.
//
//	frame := rawframe.UDP(srcMAC, dstMAC, src, dst, []byte("hello"))
//	err := rawframe.Send("eth0", frame, false)
//	err = rawframe.SendIP(frame, dst.Addr()) // the IP packet alone, from src
package rawframe

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// Ethernet types.
const (
	EtherIPv4 = 0x0800
	EtherIPv6 = 0x86dd
)

// UDP returns an Ethernet frame from srcMAC to dstMAC (both 6 bytes) with
// an IPv4 or IPv6 header (by the family of dst, which src must share) and a
// UDP datagram carrying payload, with valid checksums. IPv4 packets carry
// Don't Fragment.
func UDP(srcMAC, dstMAC net.HardwareAddr, src, dst netip.AddrPort, payload []byte) []byte {
	udp := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], src.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[8:], payload)

	frame := append(append([]byte{}, dstMAC...), srcMAC...)
	s, d := src.Addr().AsSlice(), dst.Addr().AsSlice()
	// The pseudo-header's sum: addresses, protocol and UDP length.
	pseudo := sum(sum(sum(0, s), d), []byte{0, 17}) + uint32(len(udp))
	if dst.Addr().Is4() {
		frame = binary.BigEndian.AppendUint16(frame, EtherIPv4)
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
		ip[6] = 0x40 // Don't Fragment
		ip[8] = 64   // TTL
		ip[9] = 17   // UDP
		copy(ip[12:], s)
		copy(ip[16:], d)
		binary.BigEndian.PutUint16(ip[10:], fold(sum(0, ip)))
		frame = append(frame, ip...)
	} else {
		frame = binary.BigEndian.AppendUint16(frame, EtherIPv6)
		ip := make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(udp)))
		ip[6] = 17 // next header: UDP
		ip[7] = 64 // hop limit
		copy(ip[8:], s)
		copy(ip[24:], d)
		frame = append(frame, ip...)
	}
	c := fold(sum(pseudo, udp))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:], c)
	return append(frame, udp...)
}

// sum adds b to the ones' complement sum s, 16 bits at a time.
func sum(s uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

// fold returns the checksum of the sum s.
func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}
