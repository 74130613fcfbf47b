package main

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
		s = sum(s, p)
	}
	return fold(s) == 0xffff
}

func TestUDPFrame(t *testing.T) {
	tests := []struct {
		name      string
		src, dst  netip.AddrPort
		payload   []byte
		etherType uint16
		ipLen     int
	}{
		{"IPv4", netip.MustParseAddrPort("198.18.0.1:40000"), netip.MustParseAddrPort("198.18.0.2:9000"), []byte("g0e-raw"), etherTypeIPv4, ipv4HeaderLen},
		{"IPv4 even payload", netip.MustParseAddrPort("198.18.0.1:1"), netip.MustParseAddrPort("198.18.0.4:65535"), []byte("pingpong"), etherTypeIPv4, ipv4HeaderLen},
		{"IPv6", netip.MustParseAddrPort("[fd00:18::1]:40000"), netip.MustParseAddrPort("[fd00:18::2]:9000"), []byte("g0e-raw"), etherTypeIPv6, ipv6HeaderLen},
		{"IPv6 empty payload", netip.MustParseAddrPort("[fd00:18::1]:53"), netip.MustParseAddrPort("[fd00:18::4]:53"), nil, etherTypeIPv6, ipv6HeaderLen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, et, err := udpFrame(srcMAC, dstMAC, tc.src, tc.dst, tc.payload)
			require.NoError(t, err)
			assert.Equal(t, tc.etherType, et)
			require.Len(t, f, ethHeaderLen+tc.ipLen+udpHeaderLen+len(tc.payload))
			assert.Equal(t, []byte(dstMAC), f[0:6])
			assert.Equal(t, []byte(srcMAC), f[6:12])
			assert.Equal(t, tc.etherType, binary.BigEndian.Uint16(f[12:14]))

			ip, udp := f[ethHeaderLen:ethHeaderLen+tc.ipLen], f[ethHeaderLen+tc.ipLen:]
			sa, da := tc.src.Addr().AsSlice(), tc.dst.Addr().AsSlice()
			var pseudo []byte
			if tc.etherType == etherTypeIPv4 {
				assert.Equal(t, byte(0x45), ip[0])
				assert.Equal(t, len(ip)+len(udp), int(binary.BigEndian.Uint16(ip[2:4])))
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
			assert.Equal(t, string(tc.payload), string(udp[udpHeaderLen:]))
		})
	}
}

// TestIPv4ChecksumKnownAnswer checks the header checksum against the
// well-known example header 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7.
func TestIPv4ChecksumKnownAnswer(t *testing.T) {
	payload := make([]byte, 0x73-ipv4HeaderLen-udpHeaderLen)
	f, _, err := udpFrame(srcMAC, dstMAC, netip.MustParseAddrPort("192.168.0.1:1"),
		netip.MustParseAddrPort("192.168.0.199:2"), payload)
	require.NoError(t, err)
	assert.Equal(t, uint16(0xb861), binary.BigEndian.Uint16(f[ethHeaderLen+10:]))
}

func TestUDPFrameRefuses(t *testing.T) {
	v4 := netip.MustParseAddrPort("198.18.0.1:1")
	v6 := netip.MustParseAddrPort("[fd00:18::1]:1")
	_, _, err := udpFrame(srcMAC, dstMAC, v4, v6, nil)
	assert.Error(t, err, "mixed families")
	_, _, err = udpFrame(srcMAC[:4], dstMAC, v4, v4, nil)
	assert.Error(t, err, "short MAC")
	_, _, err = udpFrame(srcMAC, dstMAC, v4, v4, make([]byte, 0x10000))
	assert.Error(t, err, "too long")
}

func TestUsage(t *testing.T) {
	tests := [][]string{
		nil,
		{"nope"},
		{"tcp"},
		{"tcp", "-addr", "example.test:80"},
		{"tcp", "-addr", "198.18.0.2:80", "-mark", "x"},
		{"udp", "-addr", "198.18.0.2:80", "-timeout", "0s"},
		{"udp", "-addr", "198.18.0.2:80", "extra"},
		{"raw", "-ifname", "veth0", "-dstmac", "02:00:00:00:00:02", "-src", "198.18.0.1", "-dst", "fd00:18::2", "-port", "9"},
		{"raw", "-ifname", "veth0", "-dstmac", "zz", "-src", "198.18.0.1", "-dst", "198.18.0.2", "-port", "9"},
		{"raw", "-ifname", "veth0", "-dstmac", "02:00:00:00:00:02", "-src", "198.18.0.1", "-dst", "198.18.0.2"},
		{"raw", "-dstmac", "02:00:00:00:00:02", "-src", "198.18.0.1", "-dst", "198.18.0.2", "-port", "9"},
		{"caps", "-x"},
	}
	for _, args := range tests {
		var stdout, stderr bytes.Buffer
		code := run(args, &stdout, &stderr)
		assert.Equal(t, exitUsage, code, "%q", args)
		assert.Regexp(t, `^err usage: [^\n]*\n$`, stdout.String(), "%q", args)
	}
}
