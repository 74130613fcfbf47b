package sni_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/g0lab/g0efilter/sni"
)

// A proxy calls ParseClientHello again after every read, until the hello is
// complete. Here the hello, captured from a crypto/tls client, arrives in
// reads of 500 bytes.
func ExampleParseClientHello() {
	conn, err := os.ReadFile("testdata/hello-alpn-h2.bin")
	if err != nil {
		panic(err)
	}
	var buf []byte
	for len(conn) > 0 {
		n := min(500, len(conn))
		buf, conn = append(buf, conn[:n]...), conn[n:]

		hello, err := sni.ParseClientHello(buf)
		if errors.Is(err, sni.ErrNeedMore) {
			fmt.Println("need more after", len(buf), "bytes")
			continue
		}
		if err != nil {
			fmt.Println("refuse:", err)
			return
		}
		fmt.Println("server name:", hello.ServerName())
		for proto := range hello.ALPN() {
			fmt.Printf("ALPN: %s\n", proto)
		}
		fmt.Printf("TLS 1.3: %v, ECH: %v\n", hello.SupportsVersion(0x0304), hello.ECH)
		return
	}
	// Output:
	// need more after 500 bytes
	// need more after 1000 bytes
	// need more after 1500 bytes
	// server name: api.example.com
	// ALPN: h2
	// ALPN: http/1.1
	// TLS 1.3: true, ECH: false
}

func ExampleParseClientHello_errors() {
	for _, data := range [][]byte{
		[]byte("GET / HTTP/1.1\r\n"),
		{22, 3, 1, 0, 0},
	} {
		_, err := sni.ParseClientHello(data)
		fmt.Println(errors.Is(err, sni.ErrNotTLS), errors.Is(err, sni.ErrMalformed), err)
	}
	// Output:
	// true false sni: not a TLS handshake: first record: type 71
	// false true sni: malformed: record 1: length 0
}

// HeadLen tells where the next request on the connection starts.
func ExampleParseRequestHead() {
	conn := []byte("GET http://Example.com/a HTTP/1.1\r\nHost: example.com\r\n\r\n" +
		"GET /b HTTP/1.1\r\nHost: [2001:DB8::1]:8080\r\n\r\n")
	for len(conn) > 0 {
		head, err := sni.ParseRequestHead(conn)
		if err != nil {
			fmt.Println("refuse:", err)
			return
		}
		fmt.Printf("%s %s host=%s mismatch=%v\n", head.Method, head.Target, head.Host(), head.HostMismatch)
		conn = conn[head.HeadLen:]
	}
	// Output:
	// GET http://Example.com/a host=example.com mismatch=false
	// GET /b host=2001:db8::1 mismatch=false
}

// A request whose target names another host than its Host header could
// reach a host the filter never checked.
func ExampleRequestHead_HostMismatch() {
	head, err := sni.ParseRequestHead([]byte("GET http://evil.example/ HTTP/1.1\r\nHost: allowed.example\r\n\r\n"))
	if err != nil {
		panic(err)
	}
	fmt.Println(head.Host(), head.HostMismatch)
	// Output:
	// evil.example true
}

// AppendServerName gives the name without allocating, for matching against
// an allowlist on the hot path.
func ExampleClientHello_AppendServerName() {
	data, err := os.ReadFile("testdata/hello-tls13.bin")
	if err != nil {
		panic(err)
	}
	hello, err := sni.ParseClientHello(data)
	if err != nil {
		panic(err)
	}
	var buf [253]byte
	name := hello.AppendServerName(buf[:0])
	fmt.Printf("%s\n", name)
	// Output:
	// www.example.com
}
