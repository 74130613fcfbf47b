package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
)

// Ethernet types and the IP protocol number of UDP.
const (
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
	protoUDP      = 17

	ethHeaderLen  = 14
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	udpHeaderLen  = 8
	hopLimit      = 64
)

// udpFrame returns an Ethernet frame from srcMAC to dstMAC holding an IP
// packet (version by the family of src and dst) that holds a UDP datagram
// from src to dst with payload, and its Ethernet type. Both checksums are
// set; IPv4 packets carry Don't Fragment.
func udpFrame(srcMAC, dstMAC net.HardwareAddr, src, dst netip.AddrPort, payload []byte) ([]byte, uint16, error) {
	if len(srcMAC) != 6 || len(dstMAC) != 6 {
		return nil, 0, fmt.Errorf("frame: want Ethernet MAC addresses, got %s and %s", srcMAC, dstMAC)
	}
	s, d := src.Addr().Unmap(), dst.Addr().Unmap()
	if s.Is4() != d.Is4() {
		return nil, 0, fmt.Errorf("frame: %s and %s are not of one family", s, d)
	}
	udpLen := udpHeaderLen + len(payload)
	etherType, ipLen := uint16(etherTypeIPv6), ipv6HeaderLen
	if s.Is4() {
		etherType, ipLen = etherTypeIPv4, ipv4HeaderLen
	}
	if ipLen+udpLen > 0xffff {
		return nil, 0, fmt.Errorf("frame: payload of %d bytes too long", len(payload))
	}

	f := make([]byte, ethHeaderLen+ipLen+udpLen)
	copy(f[0:6], dstMAC)
	copy(f[6:12], srcMAC)
	binary.BigEndian.PutUint16(f[12:14], etherType)

	ip := f[ethHeaderLen : ethHeaderLen+ipLen]
	udp := f[ethHeaderLen+ipLen:]
	sa, da := s.AsSlice(), d.AsSlice()
	if s.Is4() {
		ip[0] = 0x45                                              // version 4, 5 words of header
		binary.BigEndian.PutUint16(ip[2:4], uint16(ipLen+udpLen)) // total length
		binary.BigEndian.PutUint16(ip[6:8], 0x4000)               // Don't Fragment
		ip[8] = hopLimit
		ip[9] = protoUDP
		copy(ip[12:16], sa)
		copy(ip[16:20], da)
		binary.BigEndian.PutUint16(ip[10:12], ^fold(sum(0, ip)))
	} else {
		ip[0] = 0x60 // version 6
		binary.BigEndian.PutUint16(ip[4:6], uint16(udpLen))
		ip[6] = protoUDP
		ip[7] = hopLimit
		copy(ip[8:24], sa)
		copy(ip[24:40], da)
	}

	binary.BigEndian.PutUint16(udp[0:2], src.Port())
	binary.BigEndian.PutUint16(udp[2:4], dst.Port())
	binary.BigEndian.PutUint16(udp[4:6], uint16(udpLen))
	copy(udp[udpHeaderLen:], payload)
	binary.BigEndian.PutUint16(udp[6:8], udpChecksum(sa, da, udp))
	return f, etherType, nil
}

// udpChecksum returns the checksum of the UDP datagram udp (its checksum
// field zero) from src to dst, over the pseudo-header of their family.
// A sum of zero is sent as 0xffff: zero means "none", which IPv6 forbids.
func udpChecksum(src, dst, udp []byte) uint16 {
	s := sum(0, src)
	s = sum(s, dst)
	s += protoUDP + uint32(len(udp)) // the pseudo-header's zero, protocol and length
	s = sum(s, udp)
	c := ^fold(s)
	if c == 0 {
		c = 0xffff
	}
	return c
}

// sum adds b, as big-endian 16-bit words (the last one padded with zero),
// to the one's-complement sum s, unfolded.
func sum(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// fold folds the carries of s into 16 bits.
func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}
