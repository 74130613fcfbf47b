package sni

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseClientHelloCaptured(t *testing.T) {
	for _, c := range capturedHellos {
		t.Run(c.file, func(t *testing.T) {
			data := readHello(t, c.file)
			h, err := ParseClientHello(data)
			require.NoError(t, err)
			assert.Equal(t, c.want, summarize(&h))
			assert.Equal(t, len(data), h.Len)

			// What follows the hello, here a ChangeCipherSpec
			// record, is not part of it.
			more := append(slices.Clip(data), 20, 3, 3, 0, 1, 1)
			h, err = ParseClientHello(more)
			require.NoError(t, err)
			assert.Equal(t, c.want, summarize(&h))
			assert.Equal(t, len(data), h.Len)
		})
	}
}

// The hellos are large enough to need more than one read, so a proxy calls
// ParseClientHello with ever longer prefixes.
func TestParseClientHelloIncremental(t *testing.T) {
	for _, c := range capturedHellos {
		t.Run(c.file, func(t *testing.T) {
			data := readHello(t, c.file)
			for n := range len(data) {
				_, err := ParseClientHello(data[:n])
				require.ErrorIs(t, err, ErrNeedMore, "prefix of %d bytes", n)
			}
			h, err := ParseClientHello(data)
			require.NoError(t, err)
			assert.Equal(t, c.want, summarize(&h))
		})
	}
}

// Clients may fragment the hello into records of any size.
func TestParseClientHelloReframed(t *testing.T) {
	for _, c := range capturedHellos {
		for _, size := range []int{1, 7, 100} {
			t.Run(fmt.Sprintf("%s/%d", c.file, size), func(t *testing.T) {
				data := reframe(readHello(t, c.file), size)
				h, err := ParseClientHello(data)
				require.NoError(t, err)
				assert.Equal(t, c.want, summarize(&h))
				assert.Equal(t, len(data), h.Len)
				for n := range len(data) {
					_, err := ParseClientHello(data[:n])
					require.ErrorIs(t, err, ErrNeedMore, "prefix of %d bytes", n)
				}
			})
		}
	}
}

// crypto/tls, reading the same bytes as a server, sees the same hello.
func TestParseClientHelloAgreesWithCryptoTLS(t *testing.T) {
	for _, c := range capturedHellos {
		for _, size := range []int{7, 1 << 14} {
			t.Run(fmt.Sprintf("%s/%d", c.file, size), func(t *testing.T) {
				data := reframe(readHello(t, c.file), size)
				h, err := ParseClientHello(data)
				require.NoError(t, err)
				info, err := cryptoTLSHello(&fakeConn{}, data)
				require.NoError(t, err)
				assert.Equal(t, strings.ToLower(info.ServerName), h.ServerName())
				assert.Equal(t, info.SupportedProtos, summarize(&h).ALPN)
				assert.Equal(t, info.SupportedVersions, slices.Collect(h.Versions()))
			})
		}
	}
}

func TestParseClientHelloServerName(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	name253 := strings.Repeat(label63+".", 3) + strings.Repeat("b", 61) // 253 bytes
	tests := []struct {
		name string // as sent
		want string // "" means ErrMalformed
	}{
		{"example.com", "example.com"},
		{"Example.COM", "example.com"},
		{"example.com.", "example.com"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"_acme-challenge.a-b.example", "_acme-challenge.a-b.example"},
		{"localhost", "localhost"},
		{"1.2.3.example", "1.2.3.example"},
		{"0xbad.example", "0xbad.example"},
		{"example.0xbad.x", "example.0xbad.x"},
		{label63 + ".example", label63 + ".example"},
		{name253, name253},
		{name253 + ".", name253},

		{"", ""},
		{".", ""},
		{"example.com..", ""},
		{".example.com", ""},
		{"a..example", ""},
		{"a" + label63 + ".example", ""},
		{name253 + "b", ""},
		{"exa\x00mple.com", ""},
		{"exa mple.com", ""},
		{"example.com/path", ""},
		{"*.example.com", ""},
		{"exämple.com", ""},
		{"example.com:443", ""},
		{"user@example.com", ""},
		{"example.com\r\n", ""},
		{"192.0.2.1", ""},
		{"192.0.2.1.", ""},
		{"127.1", ""},
		{"2130706433", ""},
		{"0x7f000001", ""},
		{"example.0x", ""},
		{"example.0X1F", ""},
		{"::1", ""},
		{"[::1]", ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.40q", tt.name), func(t *testing.T) {
			h, err := ParseClientHello(hello(sniExt(tt.name)))
			if tt.want == "" {
				require.ErrorIs(t, err, ErrMalformed)
				return
			}
			require.NoError(t, err)
			assert.True(t, h.HasSNI())
			assert.Equal(t, tt.want, h.ServerName())
			assert.Equal(t, "prefix:"+tt.want, string(h.AppendServerName([]byte("prefix:"))))
		})
	}
}

// Extension types of 64 and above are checked for duplicates apart from the
// common ones: different types are not duplicates, the same type twice is.
func TestParseClientHelloHighExtensions(t *testing.T) {
	h, err := ParseClientHello(hello(ext(0x41), sniExt("example.com"), ext(0x63), ext(extECH)))
	require.NoError(t, err)
	assert.Equal(t, "example.com", h.ServerName())
	assert.True(t, h.ECH)

	_, err = ParseClientHello(hello(ext(0x41), ext(0x63), ext(0x41)))
	require.ErrorIs(t, err, ErrMalformed)
	assert.ErrorContains(t, err, "duplicate extension 0x0041")
}

func TestParseClientHelloErrors(t *testing.T) {
	valid := hello(sniExt("example.com"))
	msg := handshakeMsg(helloBody(sniExt("example.com")))
	// patch returns a copy of b with b[i] = v.
	patch := func(b []byte, i int, v byte) []byte {
		b = slices.Clone(b)
		b[i] = v
		return b
	}
	tooManyExts := make([][]byte, maxHighExtensions+1)
	for i := range tooManyExts {
		tooManyExts[i] = ext(0x1000 + i)
	}
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrNeedMore},
		{"record type only", []byte{22}, ErrNeedMore},
		{"record header", valid[:5], ErrNeedMore},
		{"handshake type only", valid[:6], ErrNeedMore},
		{"handshake header", valid[:9], ErrNeedMore},

		{"HTTP", []byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), ErrNotTLS},
		{"SSH", []byte("SSH-2.0-OpenSSH_9.6\r\n"), ErrNotTLS},
		{"SSLv2 hello", []byte{0x80, 0x2e, 0x01, 0x03, 0x01}, ErrNotTLS},
		{"alert record", []byte{21, 3, 3, 0, 2, 2, 40}, ErrNotTLS},
		{"application data", []byte{23, 3, 3, 0, 1, 0}, ErrNotTLS},
		{"record version 2.0", []byte{22, 2}, ErrNotTLS},
		{"record version 3.5", []byte{22, 3, 5}, ErrNotTLS},

		{"record length 0", patch(patch(valid, 3, 0), 4, 0), ErrMalformed},
		{"record length over 2^14+256", append([]byte{22, 3, 1, 0x41, 1}, msg...), ErrMalformed},
		{"not a ClientHello", patch(valid, 5, 2), ErrMalformed},
		{"ClientHello too short", record(handshakeMsg(make([]byte, minHelloBodyLen-1))), ErrMalformed},
		{"record longer than ClientHello", record(append(slices.Clone(msg), 0)), ErrMalformed},
		{"second record not handshake", slices.Concat(record(msg[:10]), []byte{23, 3, 3, 0, 1, 0}), ErrMalformed},
		{"second record bad version", slices.Concat(record(msg[:10]), []byte{22, 3, 9}), ErrMalformed},
		{"second record longer than ClientHello", slices.Concat(record(msg[:10]), record(append(msg[10:], 0))), ErrMalformed},
		{"legacy_version 2.0", patch(valid, 9, 2), ErrMalformed},
		{"session id of 33 bytes", record(handshakeMsg(slices.Concat(u16(0x0303), make([]byte, 32), vec8(make([]byte, 33)), vec16(u16(0x1301)), vec8([]byte{0})))), ErrMalformed},
		{"no cipher suites", record(handshakeMsg(slices.Concat(u16(0x0303), make([]byte, 32), vec8(), vec16(), vec8([]byte{0}), []byte{0, 0, 0}))), ErrMalformed},
		{"odd cipher suites", record(handshakeMsg(slices.Concat(u16(0x0303), make([]byte, 32), vec8(), vec16([]byte{0x13, 1, 0x13}), vec8([]byte{0})))), ErrMalformed},
		{"no compression methods", record(handshakeMsg(slices.Concat(u16(0x0303), make([]byte, 32), vec8(), vec16(u16(0x1301)), vec8(), []byte{0, 0, 0}))), ErrMalformed},
		{"extensions length short", record(handshakeMsg(append(helloBody(sniExt("a")), 0))), ErrMalformed},
		{"extensions length long", record(handshakeMsg(helloBody(sniExt("a"))[:len(helloBody(sniExt("a")))-1])), ErrMalformed},
		{"extension truncated", hello([]byte{0, 1, 0}), ErrMalformed},
		{"duplicate extension", hello(ext(23), ext(23)), ErrMalformed},
		{"duplicate server_name", hello(sniExt("a.example"), sniExt("a.example")), ErrMalformed},
		{"duplicate high extension", hello(ext(extECH), ext(0xff01, []byte{0}), ext(extECH)), ErrMalformed},
		{"too many extensions", hello(tooManyExts...), ErrMalformed},
		{"server_name empty", hello(ext(extServerName)), ErrMalformed},
		{"server_name empty list", hello(ext(extServerName, vec16())), ErrMalformed},
		{"server_name list too long", hello(ext(extServerName, u16(100), []byte{0}, vec16([]byte("a.example")))), ErrMalformed},
		{"server_name trailing bytes", hello(ext(extServerName, vec16([]byte{0}, vec16([]byte("a.example"))), []byte{0})), ErrMalformed},
		{"server_name two host names", hello(sniExt("a.example", "b.example")), ErrMalformed},
		{"server_name no host name", hello(ext(extServerName, vec16([]byte{1}, vec16([]byte("a.example"))))), ErrMalformed},
		{"server_name entry truncated", hello(ext(extServerName, vec16([]byte{0}, u16(5), []byte("a")))), ErrMalformed},
		{"ALPN empty list", hello(ext(extALPN, vec16())), ErrMalformed},
		{"ALPN empty protocol", hello(ext(extALPN, vec16(vec8([]byte("h2")), vec8()))), ErrMalformed},
		{"ALPN protocol truncated", hello(ext(extALPN, vec16([]byte{5, 'h', '2'}))), ErrMalformed},
		{"ALPN trailing bytes", hello(ext(extALPN, vec16(vec8([]byte("h2"))), []byte{0})), ErrMalformed},
		{"supported_versions empty", hello(ext(extSupportedVersions, vec8())), ErrMalformed},
		{"supported_versions odd", hello(ext(extSupportedVersions, vec8([]byte{3, 4, 3}))), ErrMalformed},
		{"supported_versions trailing bytes", hello(ext(extSupportedVersions, vec8(u16(0x0304)), []byte{0})), ErrMalformed},

		{"ClientHello over the cap", record([]byte{typeClientHello, 0, 0x44, 0}), ErrTooLarge},
		{"ClientHello of 16 MiB", record([]byte{typeClientHello, 0xff, 0xff, 0xff}), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseClientHello(tt.data)
			require.ErrorIs(t, err, tt.want)
			assert.Equal(t, ClientHello{}, h)
		})
	}
}

// Cut the body of a hello short anywhere and fix up the lengths around it:
// the hello is malformed, unless the cut falls just before the extensions,
// which TLS 1.2 hellos may omit.
func TestParseClientHelloTruncatedBody(t *testing.T) {
	for _, c := range capturedHellos {
		t.Run(c.file, func(t *testing.T) {
			body := handshakeBytes(readHello(t, c.file))[handshakeHeaderLen:]
			extsAt := 2 + 32
			extsAt += 1 + int(body[extsAt])                            // legacy_session_id
			extsAt += 2 + (int(body[extsAt])<<8 | int(body[extsAt+1])) // cipher_suites
			extsAt += 1 + int(body[extsAt])                            // legacy_compression_methods
			for cut := range len(body) {
				h, err := ParseClientHello(record(handshakeMsg(body[:cut])))
				if cut == extsAt {
					require.NoError(t, err)
					assert.False(t, h.HasSNI())
					continue
				}
				require.ErrorIs(t, err, ErrMalformed, "body cut at %d", cut)
			}
		})
	}
}

// Damage any byte of a hello, in one record or in many: the parser reports
// one of its errors, or success, and never panics.
func TestParseClientHelloDamaged(t *testing.T) {
	for _, c := range capturedHellos {
		for _, data := range [][]byte{readHello(t, c.file), reframe(readHello(t, c.file), 50)} {
			for i := range data {
				for _, v := range []byte{0, 0xff, data[i] ^ 1, data[i] + 1} {
					damaged := slices.Clone(data)
					damaged[i] = v
					_, err := ParseClientHello(damaged)
					if err != nil && !errors.Is(err, ErrNeedMore) && !errors.Is(err, ErrNotTLS) &&
						!errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
						t.Fatalf("%s: byte %d = %#x: unexpected error %v", c.file, i, v, err)
					}
				}
			}
		}
	}
}

func TestParseClientHelloSizeLimit(t *testing.T) {
	// withBodyLen returns a hello whose body is n bytes long, padded with
	// an unknown extension, in records of at most maxRecordLen bytes.
	withBodyLen := func(n int) []byte {
		body := helloBody(ext(0x1234, make([]byte, n-len(helloBody(ext(0x1234))))))
		return reframe(record(handshakeMsg(body)), maxRecordLen)
	}
	// Two record headers, a handshake header and the body fill
	// MaxHelloSize exactly.
	fits := withBodyLen(MaxHelloSize - 2*recordHeaderLen - handshakeHeaderLen)
	require.Len(t, fits, MaxHelloSize)
	h, err := ParseClientHello(fits)
	require.NoError(t, err)
	assert.Equal(t, MaxHelloSize, h.Len)

	// One more byte, and the handshake header already says it is too
	// large.
	tooLarge := withBodyLen(MaxHelloSize - 2*recordHeaderLen - handshakeHeaderLen + 1)
	_, err = ParseClientHello(tooLarge[:recordHeaderLen+handshakeHeaderLen])
	require.ErrorIs(t, err, ErrTooLarge)

	// A 3 KB hello in 1-byte records takes 6 bytes per byte and does not
	// fit either. ParseClientHello says so once the record headers so far
	// and the bytes still to come exceed MaxHelloSize, but not at first.
	fragmented := reframe(hello(sniExt("example.com"), ext(0x1234, make([]byte, 3000))), 1)
	require.Greater(t, len(fragmented), MaxHelloSize)
	_, err = ParseClientHello(fragmented[:MaxHelloSize])
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = ParseClientHello(fragmented[:MaxHelloSize/2])
	require.ErrorIs(t, err, ErrNeedMore)
}

func TestClientHelloAccessors(t *testing.T) {
	h, err := ParseClientHello(hello(
		sniExt("Example.com"),
		ext(extALPN, vec16(vec8([]byte("h2")), vec8([]byte("http/1.1")))),
		ext(extSupportedVersions, vec8(u16(0x7a7a), u16(tls.VersionTLS13), u16(tls.VersionTLS12))),
	))
	require.NoError(t, err)
	assert.True(t, h.HasALPN("h2"))
	assert.True(t, h.HasALPN("http/1.1"))
	assert.False(t, h.HasALPN("h3"))
	assert.False(t, h.HasALPN(""))
	for p := range h.ALPN() {
		assert.Equal(t, "h2", string(p), "first protocol")
		assert.Equal(t, len(p), cap(p), "appending to a protocol must not overwrite the hello")
		break
	}
	// GREASE values are not versions.
	assert.Equal(t, []uint16{tls.VersionTLS13, tls.VersionTLS12}, slices.Collect(h.Versions()))
	assert.True(t, h.SupportsVersion(tls.VersionTLS13))
	assert.False(t, h.SupportsVersion(0x7a7a))
	assert.False(t, h.SupportsVersion(tls.VersionTLS11))
	for v := range h.Versions() {
		assert.Equal(t, uint16(tls.VersionTLS13), v, "first version")
		break
	}

	// Without supported_versions, legacy_version stands for the versions.
	h, err = ParseClientHello(hello())
	require.NoError(t, err)
	assert.Equal(t, []uint16{tls.VersionTLS12}, slices.Collect(h.Versions()))
	assert.True(t, h.SupportsVersion(tls.VersionTLS12))
	assert.False(t, h.HasSNI())
	assert.Empty(t, h.ServerName())
	assert.Nil(t, h.AppendServerName(nil))
	assert.Empty(t, slices.Collect(h.ALPN()))
}

func TestParseClientHelloAllocs(t *testing.T) {
	for _, c := range capturedHellos {
		data := readHello(t, c.file)
		name := make([]byte, 0, maxNameLen)
		var found bool
		allocs := testing.AllocsPerRun(100, func() {
			h, err := ParseClientHello(data)
			if err != nil {
				panic(err)
			}
			name = h.AppendServerName(name[:0])
			found = h.HasALPN("h2") && h.SupportsVersion(tls.VersionTLS13)
			for range h.ALPN() {
			}
			for range h.Versions() {
			}
		})
		assert.Zero(t, allocs, c.file)
		assert.Equal(t, c.want.ServerName, string(name), c.file)
		assert.Equal(t, slices.Contains(c.want.ALPN, "h2"), found, c.file)
	}
}
