package nflog

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Packets that the kernel test's rules logged, captured whole (the default
// BufSize is larger): Linux's TCP SYNs, with their options, and 5-byte UDP
// datagrams, blocked on their way from the box to 198.18.0.3 and
// fd00:18::3, port 7000.
var (
	realTCP4 = mustHex("4500003c50d2400040065dc1c6120001c6120003a02c1b58eebb722900000000" +
		"a002faf08c570000020405b40402080a045cb2ef000000000103030a")
	realUDP4 = mustHex("45000021a78940004011071ac6120001c6120003a0361b58000d8c4768656c6c6f")
	realTCP6 = mustHex("6009a13b00280640fd000018000000000000000000000001fd000018000000000000000000000003" +
		"a02e1b58188b7bdb00000000a002fd20fa630000020405a00402080afc07a277000000000103030a")
	realUDP6 = mustHex("600a1300000d1140fd000018000000000000000000000001fd000018000000000000000000000003" +
		"a0381b58000dfa5368656c6c6f")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// ipv4 returns an IPv4 header (20 bytes plus opts) followed by l4.
func ipv4(proto uint8, src, dst string, opts, l4 []byte) []byte {
	h := make([]byte, 20, 20+len(opts)+len(l4))
	h[0] = 0x40 | byte((20+len(opts))/4)
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(opts)+len(l4)))
	h[6] = 0x40 // don't fragment
	h[8] = 64
	h[9] = proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	h = append(h, opts...)
	return append(h, l4...)
}

// ipv6 returns an IPv6 header with the next header next followed by rest.
func ipv6(next uint8, src, dst string, rest []byte) []byte {
	h := make([]byte, 40, 40+len(rest))
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(rest)))
	h[6] = next
	h[7] = 64
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(h, rest...)
}

// tcpSYN returns a 20-byte TCP header with the SYN flag.
func tcpSYN(sport, dport uint16) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	h[12] = 5 << 4
	h[13] = 0x02
	binary.BigEndian.PutUint16(h[14:], 64240)
	return h
}

// udp returns a UDP header and payload.
func udp(sport, dport uint16, payload string) []byte {
	h := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[4:], uint16(8+len(payload)))
	return append(h, payload...)
}

// ext returns an IPv6 extension header of the hop-by-hop/routing/
// destination options layout, of n 8-byte units.
func ext(next uint8, n int) []byte {
	h := make([]byte, 8*n)
	h[0] = next
	h[1] = byte(n - 1)
	return h
}

// frag returns an IPv6 fragment header.
func frag(next uint8, offset uint16, more bool) []byte {
	h := make([]byte, 8)
	h[0] = next
	v := offset << 3
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(h[2:], v)
	binary.BigEndian.PutUint32(h[4:], 0xdeadbeef)
	return h
}

// ah returns an IPv6 Authentication Header with a 12-byte ICV.
func ah(next uint8) []byte {
	h := make([]byte, 24)
	h[0] = next
	h[1] = 4 // (24 / 4) - 2
	return h
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

const (
	v4a, v4b = "198.18.0.1", "198.18.0.2"
	v6a, v6b = "fd00:18::1", "fd00:18::2"
)

func TestDecode(t *testing.T) {
	fragment4 := ipv4(ProtoUDP, v4a, v4b, nil, udp(5000, 53, "later bytes"))
	binary.BigEndian.PutUint16(fragment4[6:], 185) // offset 1480 bytes
	shortTotal := ipv4(ProtoTCP, v4a, v4b, nil, tcpSYN(40000, 22))
	binary.BigEndian.PutUint16(shortTotal[2:], 22) // total length ends in the ports
	longOpts := ipv4(ProtoTCP, v4a, v4b, make([]byte, 40), tcpSYN(40000, 22))[:40]

	tests := []struct {
		name    string
		payload []byte
		want    Packet
	}{
		{"real IPv4 TCP SYN", realTCP4, Packet{Proto: ProtoTCP, Source: ap("198.18.0.1:41004"), Destination: ap("198.18.0.3:7000")}},
		{"real IPv4 UDP", realUDP4, Packet{Proto: ProtoUDP, Source: ap("198.18.0.1:41014"), Destination: ap("198.18.0.3:7000")}},
		{"real IPv6 TCP SYN", realTCP6, Packet{Proto: ProtoTCP, Source: ap("[fd00:18::1]:41006"), Destination: ap("[fd00:18::3]:7000")}},
		{"real IPv6 UDP", realUDP6, Packet{Proto: ProtoUDP, Source: ap("[fd00:18::1]:41016"), Destination: ap("[fd00:18::3]:7000")}},
		{"IPv4 TCP", ipv4(ProtoTCP, v4a, v4b, nil, tcpSYN(40000, 22)),
			Packet{Proto: ProtoTCP, Source: ap("198.18.0.1:40000"), Destination: ap("198.18.0.2:22")}},
		{"IPv4 UDP", ipv4(ProtoUDP, v4a, v4b, nil, udp(5353, 53, "q")),
			Packet{Proto: ProtoUDP, Source: ap("198.18.0.1:5353"), Destination: ap("198.18.0.2:53")}},
		{"IPv4 SCTP", ipv4(ProtoSCTP, v4a, v4b, nil, udp(9, 10, "")),
			Packet{Proto: ProtoSCTP, Source: ap("198.18.0.1:9"), Destination: ap("198.18.0.2:10")}},
		{"IPv4 options", ipv4(ProtoTCP, v4a, v4b, []byte{0x94, 4, 0, 0}, tcpSYN(40000, 443)),
			Packet{Proto: ProtoTCP, Source: ap("198.18.0.1:40000"), Destination: ap("198.18.0.2:443")}},
		{"IPv4 ICMP", ipv4(ProtoICMP, v4a, v4b, nil, []byte{8, 0, 0, 0, 0, 1, 0, 1}),
			Packet{Proto: ProtoICMP, Source: ap("198.18.0.1:0"), Destination: ap("198.18.0.2:0")}},
		{"IPv4 later fragment", fragment4,
			Packet{Proto: ProtoUDP, Source: ap("198.18.0.1:0"), Destination: ap("198.18.0.2:0")}},
		{"IPv4 capture ends in the ports", ipv4(ProtoTCP, v4a, v4b, nil, tcpSYN(40000, 22))[:22],
			Packet{Proto: ProtoTCP, Source: ap("198.18.0.1:0"), Destination: ap("198.18.0.2:0"), Truncated: true}},
		{"IPv4 total length ends in the ports", shortTotal,
			Packet{Proto: ProtoTCP, Source: ap("198.18.0.1:0"), Destination: ap("198.18.0.2:0"), Truncated: true}},
		{"IPv4 capture ends in the options", longOpts,
			Packet{Proto: ProtoTCP, Source: ap("198.18.0.1:0"), Destination: ap("198.18.0.2:0"), Truncated: true}},
		{"IPv6 TCP", ipv6(ProtoTCP, v6a, v6b, tcpSYN(40000, 443)),
			Packet{Proto: ProtoTCP, Source: ap("[fd00:18::1]:40000"), Destination: ap("[fd00:18::2]:443")}},
		{"IPv6 UDP", ipv6(ProtoUDP, v6a, v6b, udp(40000, 443, "quic")),
			Packet{Proto: ProtoUDP, Source: ap("[fd00:18::1]:40000"), Destination: ap("[fd00:18::2]:443")}},
		{"IPv6 ICMPv6", ipv6(ProtoICMPv6, v6a, v6b, []byte{128, 0, 0, 0, 0, 1, 0, 1}),
			Packet{Proto: ProtoICMPv6, Source: ap("[fd00:18::1]:0"), Destination: ap("[fd00:18::2]:0")}},
		{"IPv6 hop-by-hop, destination options", ipv6(ipv6HopByHop, v6a, v6b,
			cat(ext(ipv6DestOpts, 1), ext(ProtoTCP, 2), tcpSYN(1, 2))),
			Packet{Proto: ProtoTCP, Source: ap("[fd00:18::1]:1"), Destination: ap("[fd00:18::2]:2")}},
		{"IPv6 routing, AH", ipv6(ipv6Routing, v6a, v6b, cat(ext(ipv6AH, 3), ah(ProtoUDP), udp(7, 8, ""))),
			Packet{Proto: ProtoUDP, Source: ap("[fd00:18::1]:7"), Destination: ap("[fd00:18::2]:8")}},
		{"IPv6 first fragment", ipv6(ipv6Fragment, v6a, v6b, cat(frag(ProtoUDP, 0, true), udp(5000, 53, "x"))),
			Packet{Proto: ProtoUDP, Source: ap("[fd00:18::1]:5000"), Destination: ap("[fd00:18::2]:53")}},
		{"IPv6 later fragment", ipv6(ipv6Fragment, v6a, v6b, cat(frag(ProtoUDP, 185, false), udp(5000, 53, "x"))),
			Packet{Proto: ProtoUDP, Source: ap("[fd00:18::1]:0"), Destination: ap("[fd00:18::2]:0")}},
		{"IPv6 no next header", ipv6(59, v6a, v6b, nil),
			Packet{Proto: 59, Source: ap("[fd00:18::1]:0"), Destination: ap("[fd00:18::2]:0")}},
		{"IPv6 capture ends in an extension header", ipv6(ipv6HopByHop, v6a, v6b, cat(ext(ProtoTCP, 8), tcpSYN(1, 2)))[:96],
			Packet{Proto: ProtoTCP, Source: ap("[fd00:18::1]:0"), Destination: ap("[fd00:18::2]:0"), Truncated: true}},
		{"IPv6 capture ends before an extension header", ipv6(ipv6HopByHop, v6a, v6b, cat(ext(ipv6DestOpts, 1), ext(ProtoTCP, 1)))[:48],
			Packet{Proto: ipv6DestOpts, Source: ap("[fd00:18::1]:0"), Destination: ap("[fd00:18::2]:0"), Truncated: true}},
		{"IPv6 capture ends in the ports", ipv6(ProtoUDP, v6a, v6b, udp(1, 2, ""))[:42],
			Packet{Proto: ProtoUDP, Source: ap("[fd00:18::1]:0"), Destination: ap("[fd00:18::2]:0"), Truncated: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := bytes.Clone(tt.payload)
			got, err := Decode(tt.payload)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, orig, tt.payload, "Decode must not change its input")
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	badTotal := ipv4(ProtoTCP, v4a, v4b, nil, tcpSYN(1, 2))
	binary.BigEndian.PutUint16(badTotal[2:], 19)
	badIHL := ipv4(ProtoTCP, v4a, v4b, nil, tcpSYN(1, 2))
	badIHL[0] = 0x44
	var chain []byte
	for range maxExtHeaders + 1 {
		chain = append(chain, ext(ipv6DestOpts, 1)...)
	}

	tests := []struct {
		name    string
		payload []byte
	}{
		{"empty", nil},
		{"IP version 5", []byte{0x50, 0, 0, 0}},
		{"ARP-looking", []byte{0x00, 0x01, 0x08, 0x00, 0x06, 0x04}},
		{"short IPv4 header", ipv4(ProtoTCP, v4a, v4b, nil, nil)[:19]},
		{"IPv4 header length 16", badIHL},
		{"IPv4 total length below header", badTotal},
		{"short IPv6 header", ipv6(ProtoTCP, v6a, v6b, nil)[:39]},
		{"endless IPv6 chain", ipv6(ipv6DestOpts, v6a, v6b, chain)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.payload)
			assert.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func TestPacketProtocol(t *testing.T) {
	for proto, want := range map[uint8]string{
		ProtoTCP: "tcp", ProtoUDP: "udp", ProtoICMP: "icmp", ProtoICMPv6: "icmpv6",
		ProtoSCTP: "sctp", ProtoUDPLite: "udplite", ProtoDCCP: "dccp",
		ProtoGRE: "gre", ProtoESP: "esp", ProtoAH: "ah", 253: "253",
	} {
		assert.Equal(t, want, Packet{Proto: proto}.Protocol())
	}
}

func FuzzDecode(f *testing.F) {
	for _, seed := range [][]byte{
		realTCP4, realUDP4, realTCP6, realUDP6,
		ipv4(ProtoTCP, v4a, v4b, []byte{0x94, 4, 0, 0}, tcpSYN(40000, 443)),
		ipv4(ProtoICMP, v4a, v4b, nil, []byte{8, 0, 0, 0}),
		ipv6(ipv6HopByHop, v6a, v6b, cat(ext(ipv6Routing, 1), ext(ipv6Fragment, 1), frag(ipv6AH, 0, true), ah(ProtoUDP), udp(1, 2, ""))),
		ipv6(ipv6Fragment, v6a, v6b, cat(frag(ProtoTCP, 3, false), tcpSYN(1, 2))),
		{0x45},
		{0x60},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		orig := bytes.Clone(payload)
		p, err := Decode(payload)
		require.Equal(t, orig, payload, "Decode changed its input")
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			require.Equal(t, Packet{}, p)
			return
		}
		src, dst := p.Source.Addr(), p.Destination.Addr()
		switch payload[0] >> 4 {
		case 4:
			require.True(t, src.Is4() && dst.Is4())
			require.Equal(t, netip.AddrFrom4([4]byte(payload[12:16])), src)
			require.Equal(t, netip.AddrFrom4([4]byte(payload[16:20])), dst)
		case 6:
			require.True(t, src.Is6() && dst.Is6())
			require.Equal(t, netip.AddrFrom16([16]byte(payload[8:24])), src)
			require.Equal(t, netip.AddrFrom16([16]byte(payload[24:40])), dst)
		default:
			t.Fatalf("decoded IP version %d", payload[0]>>4)
		}
		if p.Truncated || !hasPorts(p.Proto) {
			require.Zero(t, p.Source.Port())
			require.Zero(t, p.Destination.Port())
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	for _, bm := range []struct {
		name    string
		payload []byte
	}{
		{"tcp4", realTCP4},
		{"tcp6", realTCP6},
		{"tcp6-ext", ipv6(ipv6HopByHop, v6a, v6b, cat(ext(ipv6DestOpts, 1), ext(ProtoTCP, 2), tcpSYN(1, 2)))},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(bm.payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
