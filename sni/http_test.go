package sni

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// headTest is a request head and what ParseRequestHead must read from it.
type headTest struct {
	name     string
	in       string
	method   string
	target   string
	minor    int
	host     string
	mismatch bool
	headLen  int   // 0 means len(in)
	err      error // nil means success
}

var headTests = []headTest{
	{name: "origin form", in: "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n",
		method: "GET", target: "/index.html?q=1", minor: 1, host: "example.com"},
	{name: "port and case", in: "GET / HTTP/1.1\r\nHost: Example.COM:8080\r\n\r\n",
		method: "GET", target: "/", minor: 1, host: "example.com"},
	{name: "empty port", in: "GET / HTTP/1.1\r\nHost: example.com:\r\n\r\n",
		method: "GET", target: "/", minor: 1, host: "example.com"},
	{name: "trailing dot", in: "GET / HTTP/1.1\r\nHost: example.com.\r\n\r\n",
		method: "GET", target: "/", minor: 1, host: "example.com"},
	{name: "field name case", in: "GET / HTTP/1.1\r\nx-a: 1\r\nhOsT: example.com\r\n\r\n",
		method: "GET", target: "/", minor: 1, host: "example.com"},
	{name: "whitespace around value", in: "GET / HTTP/1.1\r\nHost: \t example.com \t\r\n\r\n",
		method: "GET", target: "/", minor: 1, host: "example.com"},
	{name: "IPv4", in: "GET / HTTP/1.1\r\nHost: 192.0.2.1:80\r\n\r\n",
		method: "GET", target: "/", minor: 1, host: "192.0.2.1"},
	{name: "IPv6 with port", in: "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
		method: "GET", target: "/", minor: 1, host: "::1"},
	{name: "IPv6", in: "GET / HTTP/1.1\r\nHost: [2001:DB8::1]\r\n\r\n",
		method: "GET", target: "/", minor: 1, host: "2001:db8::1"},
	{name: "absolute form", in: "GET http://Example.com:80/x HTTP/1.1\r\nHost: example.com\r\n\r\n",
		method: "GET", target: "http://Example.com:80/x", minor: 1, host: "example.com"},
	{name: "absolute form mismatch", in: "GET http://evil.example/ HTTP/1.1\r\nHost: allowed.example\r\n\r\n",
		method: "GET", target: "http://evil.example/", minor: 1, host: "evil.example", mismatch: true},
	{name: "absolute form empty Host", in: "GET http://evil.example/ HTTP/1.1\r\nHost:\r\n\r\n",
		method: "GET", target: "http://evil.example/", minor: 1, host: "evil.example", mismatch: true},
	{name: "absolute form without Host", in: "GET http://a.example/ HTTP/1.1\r\n\r\n",
		method: "GET", target: "http://a.example/", minor: 1, host: "a.example"},
	{name: "absolute form query", in: "GET HTTPS://A.example?x=/ HTTP/1.0\r\n\r\n",
		method: "GET", target: "HTTPS://A.example?x=/", host: "a.example"},
	{name: "absolute form IPv6", in: "GET http://[::1]:8080/ HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
		method: "GET", target: "http://[::1]:8080/", minor: 1, host: "::1"},
	{name: "CONNECT", in: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
		method: "CONNECT", target: "example.com:443", minor: 1, host: "example.com"},
	{name: "CONNECT mismatch", in: "CONNECT evil.example:443 HTTP/1.1\r\nHost: allowed.example\r\n\r\n",
		method: "CONNECT", target: "evil.example:443", minor: 1, host: "evil.example", mismatch: true},
	{name: "asterisk form", in: "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n",
		method: "OPTIONS", target: "*", minor: 1, host: "example.com"},
	{name: "HTTP/1.0 without Host", in: "GET / HTTP/1.0\r\n\r\n",
		method: "GET", target: "/"},
	{name: "HTTP/1.0 with Host", in: "GET / HTTP/1.0\r\nHost: example.com\r\n\r\n",
		method: "GET", target: "/", host: "example.com"},
	{name: "empty Host", in: "GET / HTTP/1.1\r\nHost:\r\n\r\n",
		method: "GET", target: "/", minor: 1},
	{name: "bare LF", in: "GET / HTTP/1.1\nHost: example.com\n\n",
		method: "GET", target: "/", minor: 1, host: "example.com"},
	{name: "mixed line endings", in: "GET / HTTP/1.1\r\nHost: example.com\n\r\n",
		method: "GET", target: "/", minor: 1, host: "example.com"},
	{name: "body follows", in: "POST /f HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nabc",
		method: "POST", target: "/f", minor: 1, host: "example.com", headLen: 58},
	{name: "pipelined", in: "GET /1 HTTP/1.1\r\nHost: a.example\r\n\r\nGET /2 HTTP/1.1\r\nHost: b.example\r\n\r\n",
		method: "GET", target: "/1", minor: 1, host: "a.example", headLen: 36},
	{name: "extension method", in: "M-SEARCH * HTTP/1.1\r\nHost: 239.255.255.250:1900\r\n\r\n",
		method: "M-SEARCH", target: "*", minor: 1, host: "239.255.255.250"},
	{name: "non-ASCII field value", in: "GET / HTTP/1.1\r\nHost: example.com\r\nX-Name: J\xc3\xbcrgen\r\n\r\n",
		method: "GET", target: "/", minor: 1, host: "example.com"},

	{name: "empty", in: "", err: ErrNeedMore},
	{name: "method only", in: "GET", err: ErrNeedMore},
	{name: "request line only", in: "GET / HTTP/1.1\r\n", err: ErrNeedMore},
	{name: "no empty line", in: "GET / HTTP/1.1\r\nHost: example.com\r\n", err: ErrNeedMore},
	{name: "half a CRLF", in: "GET / HTTP/1.1\r\nHost: example.com\r\n\r", err: ErrNeedMore},

	{name: "TLS", in: "\x16\x03\x01\x02\x00\x01", err: ErrNotHTTP},
	{name: "SSH", in: "SSH-2.0-OpenSSH_9.6\r\n", err: ErrNotHTTP},
	{name: "leading space", in: " GET / HTTP/1.1\r\n\r\n", err: ErrNotHTTP},
	{name: "leading empty line", in: "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", err: ErrNotHTTP},
	{name: "tab after method", in: "GET\t/ HTTP/1.1\r\n\r\n", err: ErrNotHTTP},
	{name: "method too long", in: strings.Repeat("A", 33) + " / HTTP/1.1\r\n\r\n", err: ErrNotHTTP},
	{name: "no version", in: "EHLO mail.example\r\n", err: ErrNotHTTP},
	{name: "HTTP/0.9", in: "GET /\r\n\r\n", err: ErrNotHTTP},
	{name: "lower-case version", in: "GET / http/1.1\r\nHost: a\r\n\r\n", err: ErrNotHTTP},

	{name: "HTTP/2 preface", in: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", err: ErrMalformed},
	{name: "HTTP/1.2", in: "GET / HTTP/1.2\r\nHost: a\r\n\r\n", err: ErrMalformed},
	{name: "two spaces", in: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", err: ErrMalformed},
	{name: "space in target", in: "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", err: ErrMalformed},
	{name: "NUL in target", in: "GET /a\x00 HTTP/1.1\r\nHost: a\r\n\r\n", err: ErrMalformed},
	{name: "non-ASCII target", in: "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", err: ErrMalformed},
	{name: "fragment", in: "GET http://a.example#@evil.example/ HTTP/1.1\r\n\r\n", err: ErrMalformed},
	{name: "two Host headers", in: "GET / HTTP/1.1\r\nHost: a.example\r\nHost: a.example\r\n\r\n", err: ErrMalformed},
	{name: "two Host headers any case", in: "GET / HTTP/1.1\r\nHost: a.example\r\nHOST: b.example\r\n\r\n", err: ErrMalformed},
	{name: "obs-fold", in: "GET / HTTP/1.1\r\nHost: a.example\r\nX: 1\r\n 2\r\n\r\n", err: ErrMalformed},
	{name: "whitespace before first field", in: "GET / HTTP/1.1\r\n Host: a.example\r\n\r\n", err: ErrMalformed},
	{name: "no colon", in: "GET / HTTP/1.1\r\nHost a.example\r\n\r\n", err: ErrMalformed},
	{name: "space before colon", in: "GET / HTTP/1.1\r\nHost : a.example\r\n\r\n", err: ErrMalformed},
	{name: "empty field name", in: "GET / HTTP/1.1\r\n: a.example\r\nHost: a\r\n\r\n", err: ErrMalformed},
	{name: "NUL in value", in: "GET / HTTP/1.1\r\nHost: a.example\r\nX: \x00\r\n\r\n", err: ErrMalformed},
	{name: "bare CR", in: "GET / HTTP/1.1\r\nX: 1\rHost: evil.example\r\nHost: a.example\r\n\r\n", err: ErrMalformed},
	{name: "HTTP/1.1 without Host", in: "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", err: ErrMalformed},
	{name: "Host with space", in: "GET / HTTP/1.1\r\nHost: a example\r\n\r\n", err: ErrMalformed},
	{name: "Host with slash", in: "GET / HTTP/1.1\r\nHost: a.example/x\r\n\r\n", err: ErrMalformed},
	{name: "Host with user", in: "GET / HTTP/1.1\r\nHost: u@a.example\r\n\r\n", err: ErrMalformed},
	{name: "Host with percent", in: "GET / HTTP/1.1\r\nHost: %61.example\r\n\r\n", err: ErrMalformed},
	{name: "Host empty label", in: "GET / HTTP/1.1\r\nHost: a..example\r\n\r\n", err: ErrMalformed},
	{name: "Host port not a number", in: "GET / HTTP/1.1\r\nHost: a.example:http\r\n\r\n", err: ErrMalformed},
	{name: "Host port too long", in: "GET / HTTP/1.1\r\nHost: a.example:123456\r\n\r\n", err: ErrMalformed},
	{name: "Host two ports", in: "GET / HTTP/1.1\r\nHost: a.example:80:80\r\n\r\n", err: ErrMalformed},
	{name: "IPv6 unclosed", in: "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", err: ErrMalformed},
	{name: "IPv6 junk after", in: "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", err: ErrMalformed},
	{name: "IPv6 bad byte", in: "GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n", err: ErrMalformed},
	{name: "IPv6 zone", in: "GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n", err: ErrMalformed},
	{name: "IPv4 in brackets", in: "GET / HTTP/1.1\r\nHost: [192.0.2.1]\r\n\r\n", err: ErrMalformed},
	{name: "bad Host with absolute form", in: "GET http://a.example/ HTTP/1.1\r\nHost: a b\r\n\r\n", err: ErrMalformed},
	{name: "userinfo in target", in: "GET http://a.example@evil.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", err: ErrMalformed},
	{name: "target without host", in: "GET http:///x HTTP/1.1\r\nHost: a.example\r\n\r\n", err: ErrMalformed},
	{name: "target port only", in: "GET http://:80/ HTTP/1.1\r\nHost: a.example\r\n\r\n", err: ErrMalformed},
	{name: "target without scheme", in: "GET a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n", err: ErrMalformed},
	{name: "target opaque", in: "GET http:a.example HTTP/1.1\r\nHost: a.example\r\n\r\n", err: ErrMalformed},
	{name: "CONNECT asterisk", in: "CONNECT * HTTP/1.1\r\nHost: a.example\r\n\r\n", err: ErrMalformed},
	{name: "CONNECT bad authority", in: "CONNECT http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", err: ErrMalformed},

	{name: "head too large", in: "GET / HTTP/1.1\r\nHost: a.example\r\nX: " + strings.Repeat("a", MaxHeadSize) + "\r\n\r\n", err: ErrTooLarge},
	{name: "no line end", in: "GET /" + strings.Repeat("a", MaxHeadSize), err: ErrTooLarge},
}

func TestParseRequestHead(t *testing.T) {
	for _, tt := range headTests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseRequestHead([]byte(tt.in))
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				assert.Equal(t, RequestHead{}, h)
				return
			}
			require.NoError(t, err)
			wantLen := tt.headLen
			if wantLen == 0 {
				wantLen = len(tt.in)
			}
			assert.Equal(t, tt.method, string(h.Method), "Method")
			assert.Equal(t, tt.target, string(h.Target), "Target")
			assert.Equal(t, tt.minor, h.ProtoMinor, "ProtoMinor")
			assert.Equal(t, tt.host, h.Host(), "Host")
			assert.Equal(t, tt.host != "", h.HasHost(), "HasHost")
			assert.Equal(t, "x"+tt.host, string(h.AppendHost([]byte("x"))), "AppendHost")
			assert.Equal(t, tt.mismatch, h.HostMismatch, "HostMismatch")
			assert.Equal(t, wantLen, h.HeadLen, "HeadLen")

			// net/http reads the same request.
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tt.in)))
			require.NoError(t, err)
			assert.Equal(t, tt.method, r.Method)
			assert.Equal(t, tt.target, r.RequestURI)
			assert.Equal(t, tt.minor, r.ProtoMinor)
			assert.Equal(t, tt.host, normalizeGoHost(r.Host))
		})
	}
}

// normalizeGoHost brings the Host of a net/http Request into the form
// RequestHead.Host returns.
func normalizeGoHost(host string) string {
	host = strings.ToLower(host)
	if strings.HasPrefix(host, "[") {
		host, _, _ = strings.Cut(host[1:], "]")
		return host
	}
	host, _, _ = strings.Cut(host, ":")
	return strings.TrimSuffix(host, ".")
}

func TestParseRequestHeadIncremental(t *testing.T) {
	for _, tt := range headTests {
		if tt.err != nil {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			h, err := ParseRequestHead(in)
			require.NoError(t, err)
			for n := range h.HeadLen {
				_, err := ParseRequestHead(in[:n])
				require.ErrorIs(t, err, ErrNeedMore, "prefix %q", in[:n])
			}
			got, err := ParseRequestHead(in[:h.HeadLen])
			require.NoError(t, err)
			assert.Equal(t, h, got)
		})
	}
}

// On a keep-alive connection the next request starts at HeadLen.
func TestParseRequestHeadPipelined(t *testing.T) {
	in := []byte("GET /1 HTTP/1.1\r\nHost: a.example\r\n\r\nGET /2 HTTP/1.1\nHost: B.example\n\n")
	first, err := ParseRequestHead(in)
	require.NoError(t, err)
	assert.Equal(t, "a.example", first.Host())
	second, err := ParseRequestHead(in[first.HeadLen:])
	require.NoError(t, err)
	assert.Equal(t, "/2", string(second.Target))
	assert.Equal(t, "b.example", second.Host())
	assert.Equal(t, len(in), first.HeadLen+second.HeadLen)
}

func TestParseRequestHeadSizeLimit(t *testing.T) {
	start := "GET / HTTP/1.1\r\nHost: a.example\r\nX: "
	end := "\r\n\r\n"
	fits := start + strings.Repeat("a", MaxHeadSize-len(start)-len(end)) + end
	h, err := ParseRequestHead([]byte(fits))
	require.NoError(t, err)
	assert.Equal(t, MaxHeadSize, h.HeadLen)

	tooLarge := start + strings.Repeat("a", MaxHeadSize-len(start)-len(end)+1) + end
	_, err = ParseRequestHead([]byte(tooLarge))
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = ParseRequestHead([]byte(tooLarge[:MaxHeadSize]))
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = ParseRequestHead([]byte(tooLarge[:MaxHeadSize-1]))
	require.ErrorIs(t, err, ErrNeedMore)
}

func TestParseRequestHeadAllocs(t *testing.T) {
	in := []byte(browserHead)
	buf := make([]byte, 0, maxNameLen)
	allocs := testing.AllocsPerRun(100, func() {
		h, err := ParseRequestHead(in)
		if err != nil {
			panic(err)
		}
		buf = h.AppendHost(buf[:0])
	})
	assert.Zero(t, allocs)
	assert.Equal(t, "www.example.com", string(buf))
}

// TestTargetFirstInvalidByte checks that the error names the first invalid
// byte of a request target wherever it is, also when a later one follows
// close behind.
func TestTargetFirstInvalidByte(t *testing.T) {
	for n := 1; n <= 24; n++ {
		for pos := range n {
			for _, later := range []int{-1, pos + 1, pos + 8} {
				target := []byte("/" + strings.Repeat("a", n-1))
				target[pos] = '#'
				if later >= 0 && later < n {
					target[later] = 0x7f
				}
				_, err := ParseRequestHead([]byte("GET " + string(target) + " HTTP/1.1\r\nHost: a\r\n\r\n"))
				require.ErrorIs(t, err, ErrMalformed, "%q", target)
				require.ErrorContains(t, err, `invalid byte '#' in request target`, "%q", target)
			}
		}
	}
}

func TestParseRequestHeadFraming(t *testing.T) {
	tests := []struct {
		name    string
		fields  string
		length  int64
		chunked bool
		upgrade bool
		err     string // "" means success
	}{
		{name: "no body", fields: ""},
		{name: "content length", fields: "Content-Length: 42\r\n", length: 42},
		{name: "content length case", fields: "content-LENGTH:  7 \r\n", length: 7},
		{name: "zero length", fields: "Content-Length: 0\r\n"},
		{name: "chunked", fields: "Transfer-Encoding: Chunked\r\n", chunked: true},
		{name: "upgrade", fields: "Connection: Upgrade\r\nUpgrade: websocket\r\n", upgrade: true},
		{name: "both", fields: "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", err: "both Content-Length and Transfer-Encoding"},
		{name: "two lengths", fields: "Content-Length: 3\r\nContent-Length: 3\r\n", err: "more than one Content-Length"},
		{name: "length list", fields: "Content-Length: 3, 3\r\n", err: "not a length"},
		{name: "signed length", fields: "Content-Length: +3\r\n", err: "not a length"},
		{name: "empty length", fields: "Content-Length:\r\n", err: "not a length"},
		{name: "huge length", fields: "Content-Length: 1234567890123456789\r\n", err: "not a length"},
		{name: "gzip then chunked", fields: "Transfer-Encoding: gzip, chunked\r\n", err: "only a single"},
		{name: "chunked twice", fields: "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", err: "only a single"},
		{name: "identity", fields: "Transfer-Encoding: identity\r\n", err: "only a single"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseRequestHead([]byte("POST / HTTP/1.1\r\nHost: example.com\r\n" + tt.fields + "\r\n"))
			if tt.err != "" {
				require.ErrorIs(t, err, ErrMalformed)
				assert.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.length, h.ContentLength, "ContentLength")
			assert.Equal(t, tt.chunked, h.Chunked, "Chunked")
			assert.Equal(t, tt.upgrade, h.Upgrade, "Upgrade")
		})
	}
}
