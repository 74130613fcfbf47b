package nflog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// ErrMalformed is wrapped by the errors that [Decode] returns.
var ErrMalformed = errors.New("nflog: malformed packet")

// IANA protocol numbers that [Decode] and [Packet.Protocol] know.
const (
	ProtoICMP    uint8 = 1
	ProtoTCP     uint8 = 6
	ProtoUDP     uint8 = 17
	ProtoDCCP    uint8 = 33
	ProtoGRE     uint8 = 47
	ProtoESP     uint8 = 50
	ProtoAH      uint8 = 51
	ProtoICMPv6  uint8 = 58
	ProtoSCTP    uint8 = 132
	ProtoUDPLite uint8 = 136
)

// IPv6 extension headers that Decode walks past, and header sizes.
const (
	ipv6HopByHop  uint8 = 0
	ipv6Routing   uint8 = 43
	ipv6Fragment  uint8 = 44
	ipv6AH              = ProtoAH // counted in 4-byte units, less 2
	ipv6DestOpts  uint8 = 60
	ipv6Mobility  uint8 = 135
	ipv6HIP       uint8 = 139
	ipv6Shim6     uint8 = 140
	ipv4HeaderLen       = 20
	ipv6HeaderLen       = 40
	// maxExtHeaders bounds the walk along an IPv6 header chain. Every
	// extension header takes at least 8 bytes, so a captured payload
	// bounds it too; this keeps a hostile chain from costing more than a
	// few dozen steps whatever the snap length.
	maxExtHeaders = 16
)

// Packet is what [Decode] reads from the start of a logged packet: the
// network header's addresses and, where the transport has them, its ports.
type Packet struct {
	// Proto is the IANA number of the transport protocol ([ProtoTCP],
	// [ProtoUDP], [ProtoICMP], [ProtoICMPv6], ...). When Truncated is set
	// on an IPv6 packet it may instead be the number of the extension
	// header that the capture cut.
	Proto uint8
	// Source and Destination are the packet's addresses and ports. The
	// ports are zero for protocols without ports, for fragments other than
	// the first, and when Truncated is set.
	Source, Destination netip.AddrPort
	// Truncated reports that the capture ended before the transport
	// ports: the snap length ([Reader.BufSize]) is too small for the
	// packet's IP options or IPv6 extension headers.
	Truncated bool
}

// Protocol returns the lower-case name of p.Proto as nft prints it ("tcp",
// "udp", "icmp", "icmpv6", "sctp", "udplite", "dccp", "gre", "esp", "ah"),
// or its number in decimal.
func (p Packet) Protocol() string {
	switch p.Proto {
	case ProtoICMP:
		return "icmp"
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoDCCP:
		return "dccp"
	case ProtoGRE:
		return "gre"
	case ProtoESP:
		return "esp"
	case ProtoAH:
		return "ah"
	case ProtoICMPv6:
		return "icmpv6"
	case ProtoSCTP:
		return "sctp"
	case ProtoUDPLite:
		return "udplite"
	}
	return strconv.Itoa(int(p.Proto))
}

// hasPorts reports whether the transport header of proto starts with a
// 16-bit source port and a 16-bit destination port.
func hasPorts(proto uint8) bool {
	switch proto {
	case ProtoTCP, ProtoUDP, ProtoDCCP, ProtoSCTP, ProtoUDPLite:
		return true
	}
	return false
}

// Decode reads an IPv4 or IPv6 packet, starting at its network header, as
// nflog delivers it from the inet, ip and ip6 families' hooks. It walks
// past IPv4 options and IPv6 extension headers (hop-by-hop, routing,
// fragment, destination options, AH, mobility, HIP, shim6) and reads the
// ports of TCP, UDP, UDP-Lite, SCTP and DCCP.
//
// A payload cut short by the snap length after the addresses is not an
// error: Decode returns what it read with Truncated set. A payload that is
// not an IP packet at all gives an error wrapping [ErrMalformed]. Decode
// never panics and does not keep payload.
func Decode(payload []byte) (Packet, error) {
	if len(payload) == 0 {
		return Packet{}, fmt.Errorf("%w: empty", ErrMalformed)
	}
	switch v := payload[0] >> 4; v {
	case 4:
		return decode4(payload)
	case 6:
		return decode6(payload)
	default:
		return Packet{}, fmt.Errorf("%w: IP version %d", ErrMalformed, v)
	}
}

func decode4(b []byte) (Packet, error) {
	if len(b) < ipv4HeaderLen {
		return Packet{}, fmt.Errorf("%w: IPv4 header of %d bytes", ErrMalformed, len(b))
	}
	hlen := int(b[0]&0x0f) * 4
	if hlen < ipv4HeaderLen {
		return Packet{}, fmt.Errorf("%w: IPv4 header length %d", ErrMalformed, hlen)
	}
	// A total length of zero is what the kernel writes for IPv4 BIG TCP
	// packets (over 64 KiB); only a non-zero one can be checked.
	if total := int(binary.BigEndian.Uint16(b[2:4])); total != 0 {
		if total < hlen {
			return Packet{}, fmt.Errorf("%w: IPv4 total length %d below header length %d", ErrMalformed, total, hlen)
		}
		if total < len(b) {
			b = b[:total]
		}
	}
	p := Packet{Proto: b[9]}
	src := netip.AddrFrom4([4]byte(b[12:16]))
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	var sport, dport uint16
	fragOffset := binary.BigEndian.Uint16(b[6:8]) & 0x1fff
	switch {
	case fragOffset != 0 || !hasPorts(p.Proto):
	case len(b) < hlen+4:
		p.Truncated = true
	default:
		sport = binary.BigEndian.Uint16(b[hlen:])
		dport = binary.BigEndian.Uint16(b[hlen+2:])
	}
	p.Source = netip.AddrPortFrom(src, sport)
	p.Destination = netip.AddrPortFrom(dst, dport)
	return p, nil
}

func decode6(b []byte) (Packet, error) {
	if len(b) < ipv6HeaderLen {
		return Packet{}, fmt.Errorf("%w: IPv6 header of %d bytes", ErrMalformed, len(b))
	}
	// A payload length of zero marks a jumbogram (or an IPv6 BIG TCP
	// packet); only a non-zero one bounds the packet.
	if plen := int(binary.BigEndian.Uint16(b[4:6])); plen != 0 && ipv6HeaderLen+plen < len(b) {
		b = b[:ipv6HeaderLen+plen]
	}
	src := netip.AddrFrom16([16]byte(b[8:24]))
	dst := netip.AddrFrom16([16]byte(b[24:40]))
	p := Packet{Source: netip.AddrPortFrom(src, 0), Destination: netip.AddrPortFrom(dst, 0)}
	next, off := b[6], ipv6HeaderLen
	for range maxExtHeaders {
		var hlen int
		switch next {
		case ipv6HopByHop, ipv6Routing, ipv6DestOpts, ipv6Mobility, ipv6HIP, ipv6Shim6:
			if len(b) < off+2 {
				p.Proto, p.Truncated = next, true
				return p, nil
			}
			hlen = (int(b[off+1]) + 1) * 8
		case ipv6Fragment:
			if len(b) < off+8 {
				p.Proto, p.Truncated = next, true
				return p, nil
			}
			if binary.BigEndian.Uint16(b[off+2:off+4])>>3 != 0 {
				// Not the first fragment: no transport header here.
				p.Proto = b[off]
				return p, nil
			}
			hlen = 8
		case ipv6AH:
			if len(b) < off+2 {
				p.Proto, p.Truncated = next, true
				return p, nil
			}
			hlen = (int(b[off+1]) + 2) * 4
		default:
			return transport6(p, next, b[off:]), nil
		}
		next = b[off]
		off += hlen
		if off > len(b) {
			// The header claims more than was captured; the next one
			// cannot be read.
			p.Proto, p.Truncated = next, true
			return p, nil
		}
	}
	return Packet{}, fmt.Errorf("%w: more than %d IPv6 extension headers", ErrMalformed, maxExtHeaders)
}

// transport6 fills in the transport protocol proto and the ports, read from
// th, the bytes after the last extension header.
func transport6(p Packet, proto uint8, th []byte) Packet {
	p.Proto = proto
	if !hasPorts(proto) {
		return p
	}
	if len(th) < 4 {
		p.Truncated = true
		return p
	}
	p.Source = netip.AddrPortFrom(p.Source.Addr(), binary.BigEndian.Uint16(th[0:2]))
	p.Destination = netip.AddrPortFrom(p.Destination.Addr(), binary.BigEndian.Uint16(th[2:4]))
	return p
}
