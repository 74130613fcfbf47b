package rawframe_test

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/internal/rawframe"
)

const (
	ethLen   = 14
	ipv4Len  = 20
	ipv6Len  = 40
	udpLen   = 8
	protoUDP = 17
)

var (
	srcMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	dstMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

// verifies reports whether the one's-complement sum of the parts, their
// checksum included, is all ones, as a receiver checks it.
func verifies(parts ...[]byte) bool {
	var s uint32
	for _, p := range parts {
		for ; len(p) >= 2; p = p[2:] {
			s += uint32(binary.BigEndian.Uint16(p))
		}
		if len(p) == 1 {
			s += uint32(p[0]) << 8
		}
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return s == 0xffff
}

func TestUDP(t *testing.T) {
	tests := []struct {
		name      string
		src, dst  netip.AddrPort
		payload   []byte
		etherType uint16
		ipLen     int
	}{
		{"IPv4", netip.MustParseAddrPort("198.18.0.1:40000"), netip.MustParseAddrPort("198.18.0.2:9000"), []byte("g0e-raw"), rawframe.EtherIPv4, ipv4Len},
		{"IPv4 even payload", netip.MustParseAddrPort("198.18.0.1:1"), netip.MustParseAddrPort("198.18.0.4:65535"), []byte("pingpong"), rawframe.EtherIPv4, ipv4Len},
		{"IPv6", netip.MustParseAddrPort("[fd00:18::1]:40000"), netip.MustParseAddrPort("[fd00:18::2]:9000"), []byte("g0e-raw"), rawframe.EtherIPv6, ipv6Len},
		{"IPv6 empty payload", netip.MustParseAddrPort("[fd00:18::1]:53"), netip.MustParseAddrPort("[fd00:18::4]:53"), nil, rawframe.EtherIPv6, ipv6Len},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := rawframe.UDP(srcMAC, dstMAC, tc.src, tc.dst, tc.payload)
			require.Len(t, f, ethLen+tc.ipLen+udpLen+len(tc.payload))
			assert.Equal(t, []byte(dstMAC), f[0:6])
			assert.Equal(t, []byte(srcMAC), f[6:12])
			assert.Equal(t, tc.etherType, binary.BigEndian.Uint16(f[12:14]))

			ip, udp := f[ethLen:ethLen+tc.ipLen], f[ethLen+tc.ipLen:]
			sa, da := tc.src.Addr().AsSlice(), tc.dst.Addr().AsSlice()
			var pseudo []byte
			if tc.etherType == rawframe.EtherIPv4 {
				assert.Equal(t, byte(0x45), ip[0])
				assert.Equal(t, len(ip)+len(udp), int(binary.BigEndian.Uint16(ip[2:4])))
				assert.Equal(t, uint16(0x4000), binary.BigEndian.Uint16(ip[6:8]), "Don't Fragment")
				assert.Equal(t, byte(protoUDP), ip[9])
				assert.Equal(t, sa, ip[12:16])
				assert.Equal(t, da, ip[16:20])
				assert.True(t, verifies(ip), "IPv4 header checksum")
				pseudo = append(append(append([]byte{}, sa...), da...), 0, protoUDP)
				pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(len(udp)))
			} else {
				assert.Equal(t, byte(0x60), ip[0])
				assert.Equal(t, len(udp), int(binary.BigEndian.Uint16(ip[4:6])))
				assert.Equal(t, byte(protoUDP), ip[6])
				assert.Equal(t, sa, ip[8:24])
				assert.Equal(t, da, ip[24:40])
				pseudo = append(append(append([]byte{}, sa...), da...), 0, 0)
				pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(len(udp)))
				pseudo = append(pseudo, 0, 0, 0, protoUDP)
			}
			assert.Equal(t, tc.src.Port(), binary.BigEndian.Uint16(udp[0:2]))
			assert.Equal(t, tc.dst.Port(), binary.BigEndian.Uint16(udp[2:4]))
			assert.Equal(t, len(udp), int(binary.BigEndian.Uint16(udp[4:6])))
			assert.NotZero(t, binary.BigEndian.Uint16(udp[6:8]), "a UDP checksum is always sent")
			assert.True(t, verifies(pseudo, udp), "UDP checksum")
			assert.Equal(t, string(tc.payload), string(udp[udpLen:]))
		})
	}
}

// TestIPv4ChecksumKnownAnswer checks the header checksum against the
// well-known example header 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7.
func TestIPv4ChecksumKnownAnswer(t *testing.T) {
	payload := make([]byte, 0x73-ipv4Len-udpLen)
	f := rawframe.UDP(srcMAC, dstMAC, netip.MustParseAddrPort("192.168.0.1:1"),
		netip.MustParseAddrPort("192.168.0.199:2"), payload)
	want := []byte{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7}
	assert.Equal(t, want, f[ethLen:ethLen+ipv4Len])
}
