package sni

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireKnownError fails unless err is one of the sentinels, and checks that
// a parser given its maximum size has decided.
func requireKnownError(t *testing.T, err error, data []byte, maxSize int) {
	t.Helper()
	known := []error{ErrNeedMore, ErrNotTLS, ErrNotHTTP, ErrMalformed, ErrTooLarge}
	require.True(t, slices.ContainsFunc(known, func(e error) bool { return errors.Is(err, e) }), "unexpected error %v", err)
	if len(data) >= maxSize {
		require.NotErrorIs(t, err, ErrNeedMore, "%d bytes, still not decided", len(data))
	}
}

// requireNormalName fails unless name is in the normal form of the package
// documentation, or an IPv6 address if ipv6 is set.
func requireNormalName(t *testing.T, name []byte, ipv6 bool) {
	t.Helper()
	if ipv6 && bytes.IndexByte(name, ':') >= 0 {
		require.Empty(t, strings.Trim(string(name), "0123456789abcdef:."), "IPv6 literal %q", name)
		return
	}
	require.LessOrEqual(t, len(name), maxNameLen)
	for label := range strings.SplitSeq(string(name), ".") {
		require.NotEmpty(t, label, "name %q", name)
		require.LessOrEqual(t, len(label), maxLabelLen, "name %q", name)
		require.Empty(t, strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-_"), "name %q", name)
	}
}

func FuzzParseClientHello(f *testing.F) {
	for _, c := range capturedHellos {
		data := readHello(f, c.file)
		f.Add(data)
		f.Add(reframe(data, 7))
	}
	f.Add(hello(sniExt("Example.COM."), ext(extALPN, vec16(vec8([]byte("h2")))), ext(extECH)))
	f.Add(hello(ext(extServerName, vec16([]byte{1}, vec16([]byte("x")), []byte{0}, vec16([]byte("a.example"))))))
	f.Add(hello(sniExt("192.0.2.1")))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))

	var conn fakeConn
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseClientHello(data)
		if err != nil {
			requireKnownError(t, err, data, MaxHelloSize)
			return
		}
		require.Positive(t, h.Len)
		require.LessOrEqual(t, h.Len, min(len(data), MaxHelloSize))
		name := h.AppendServerName(nil)
		require.Equal(t, len(name) > 0, h.HasSNI())
		if h.HasSNI() {
			requireNormalName(t, name, false)
			require.False(t, isNumber(name[bytes.LastIndexByte(name, '.')+1:]), "IP address %q", name)
		}
		want := summarize(&h)

		// The hello ends at Len, and not before.
		again, err := ParseClientHello(data[:h.Len])
		require.NoError(t, err)
		require.Equal(t, want, summarize(&again))
		_, err = ParseClientHello(data[:h.Len-1])
		require.ErrorIs(t, err, ErrNeedMore)

		// Fragmenting the hello differently does not change it.
		reframed := reframe(data[:h.Len], 13)
		again, err = ParseClientHello(reframed)
		if len(reframed) > MaxHelloSize {
			require.ErrorIs(t, err, ErrTooLarge)
		} else {
			require.NoError(t, err)
			require.Equal(t, want, summarize(&again))
		}

		// crypto/tls, where it accepts the hello too, reads the same.
		info, err := cryptoTLSHello(&conn, data[:h.Len])
		if err != nil {
			return
		}
		assert.Equal(t, strings.ToLower(info.ServerName), want.ServerName)
		assert.Equal(t, info.SupportedProtos, want.ALPN)
		if h.versions != nil {
			// A list of GREASE values alone leaves crypto/tls an empty
			// slice and Versions nothing.
			got := slices.DeleteFunc(info.SupportedVersions, isGREASE)
			if len(got) == 0 {
				got = nil
			}
			assert.Equal(t, got, want.Versions)
		}
	})
}

func FuzzParseRequestHead(f *testing.F) {
	for _, tt := range headTests {
		f.Add([]byte(tt.in))
	}
	f.Add([]byte(browserHead))
	f.Add(readHello(f, "hello-tls13.bin"))

	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseRequestHead(data)
		if err != nil {
			requireKnownError(t, err, data, MaxHeadSize)
			return
		}
		require.LessOrEqual(t, h.HeadLen, min(len(data), MaxHeadSize))
		head := data[:h.HeadLen]
		require.True(t, bytes.HasSuffix(head, []byte("\n\n")) || bytes.HasSuffix(head, []byte("\n\r\n")), "head %q", head)
		require.True(t, h.ProtoMinor == 0 || h.ProtoMinor == 1)
		host := h.AppendHost(nil)
		require.Equal(t, len(host) > 0, h.HasHost())
		if h.HasHost() {
			requireNormalName(t, host, true)
		}

		// The head ends at HeadLen, and not before.
		again, err := ParseRequestHead(head)
		require.NoError(t, err)
		require.Equal(t, h, again)
		_, err = ParseRequestHead(data[:h.HeadLen-1])
		require.ErrorIs(t, err, ErrNeedMore)

		// net/http, where it accepts the request too, reads the same.
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			return
		}
		assert.Equal(t, r.Method, string(h.Method))
		assert.Equal(t, r.RequestURI, string(h.Target))
		assert.Equal(t, r.ProtoMinor, h.ProtoMinor)
		assert.Equal(t, normalizeGoHost(r.Host), h.Host())
	})
}
