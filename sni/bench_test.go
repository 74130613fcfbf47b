package sni

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// Heads as curl and a browser send them.
const (
	curlHead = "GET / HTTP/1.1\r\n" +
		"Host: www.example.com\r\n" +
		"User-Agent: curl/8.5.0\r\n" +
		"Accept: */*\r\n" +
		"\r\n"
	browserHead = "GET /articles/2024/egress-filtering?utm_source=feed HTTP/1.1\r\n" +
		"Host: www.example.com\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
		"Accept-Language: en-GB,en;q=0.5\r\n" +
		"Accept-Encoding: gzip, deflate\r\n" +
		"Connection: keep-alive\r\n" +
		"Cookie: session=6f1e0c2a9b; theme=dark\r\n" +
		"Upgrade-Insecure-Requests: 1\r\n" +
		"Priority: u=0, i\r\n" +
		"\r\n"
)

// benchHellos are the hellos of the ClientHello benchmarks: a classic TLS 1.3
// hello with one X25519 key share, and a post-quantum one with an
// X25519MLKEM768 share.
var benchHellos = []struct{ name, file string }{
	{"classic", "hello-tls13.bin"},
	{"pq", "hello-tls13-mlkem.bin"},
}

// maxHead is a head of MaxHeadSize bytes, most of them one field value.
var maxHead = func() string {
	start, end := "GET / HTTP/1.1\r\nHost: www.example.com\r\nX: ", "\r\n\r\n"
	return start + strings.Repeat("a", MaxHeadSize-len(start)-len(end)) + end
}()

var benchHeads = []struct{ name, head string }{
	{"curl", curlHead},
	{"browser", browserHead},
	{"max", maxHead},
}

func BenchmarkParseClientHello(b *testing.B) {
	for _, bh := range benchHellos {
		b.Run(bh.name, func(b *testing.B) {
			data := readHello(b, bh.file)
			name := make([]byte, 0, maxNameLen)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				h, err := ParseClientHello(data)
				if err != nil {
					b.Fatal(err)
				}
				name = h.AppendServerName(name[:0])
			}
		})
	}
}

// BenchmarkCryptoTLSHello is the baseline for BenchmarkParseClientHello: the
// usual way to read the SNI, a crypto/tls server stopped in
// GetConfigForClient.
func BenchmarkCryptoTLSHello(b *testing.B) {
	for _, bh := range benchHellos {
		b.Run(bh.name, func(b *testing.B) {
			data := readHello(b, bh.file)
			var conn fakeConn
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				info, err := cryptoTLSHello(&conn, data)
				if err != nil || info.ServerName == "" {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseRequestHead(b *testing.B) {
	for _, bh := range benchHeads {
		b.Run(bh.name, func(b *testing.B) {
			data := []byte(bh.head)
			host := make([]byte, 0, maxNameLen)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				h, err := ParseRequestHead(data)
				if err != nil {
					b.Fatal(err)
				}
				host = h.AppendHost(host[:0])
			}
		})
	}
}

// BenchmarkHTTPReadRequest is the baseline for BenchmarkParseRequestHead:
// net/http's request reader.
func BenchmarkHTTPReadRequest(b *testing.B) {
	for _, bh := range benchHeads {
		b.Run(bh.name, func(b *testing.B) {
			data := []byte(bh.head)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
				if err != nil || r.Host == "" {
					b.Fatal(err)
				}
			}
		})
	}
}
