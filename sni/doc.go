// Package sni reads the name a client wants to reach from the first bytes of a
// TCP connection: the server name of a TLS ClientHello, or the host of an
// HTTP/1.x request head.
//
// Typical usage, in a transparent proxy that has accepted conn on port 443 and
// set a read deadline on it:
//
//	buf := make([]byte, 0, sni.MaxHelloSize)
//	for {
//		n, rerr := conn.Read(buf[len(buf):cap(buf)])
//		buf = buf[:len(buf)+n]
//		hello, err := sni.ParseClientHello(buf)
//		if err == nil {
//			name := hello.ServerName() // "" if the client sent no SNI: block
//			// decide on name, then replay buf upstream and splice the rest
//			return name, nil
//		}
//		if !errors.Is(err, sni.ErrNeedMore) {
//			return "", err // not TLS, malformed or too large: reset
//		}
//		if rerr != nil {
//			return "", rerr // the client stopped before the hello was complete
//		}
//	}
//
// Port 80 works the same way with [ParseRequestHead], [MaxHeadSize] and
// [RequestHead.Host]. The loop cannot spin on a full buffer: neither parser
// returns [ErrNeedMore] once it has been given its maximum size.
//
// # Contract of the parsers
//
// [ParseClientHello] and [ParseRequestHead] are pure functions of the prefix
// of the connection they are given, so a caller simply calls them again with a
// longer prefix after each read. They never panic, never look further than
// [MaxHelloSize] or [MaxHeadSize] bytes, and do not allocate when they succeed
// (a ClientHello split across several TLS records is the one exception). A
// result describes only the first message: bytes after [ClientHello.Len] or
// [RequestHead.HeadLen] belong to what follows it.
//
// # Errors
//
// Callers branch with [errors.Is] on these sentinels:
//
//   - [ErrNeedMore]: the input is a valid but incomplete prefix; read more.
//   - [ErrNotTLS], [ErrNotHTTP]: the first bytes cannot start the expected
//     protocol, so the client is speaking something else.
//   - [ErrMalformed]: the expected protocol, but broken or ambiguous (bad
//     lengths, duplicate extensions, two Host headers, a server name that is
//     not a host name); the error text says what.
//   - [ErrTooLarge]: the message would not fit in the maximum size.
//
// Every error but ErrNeedMore means the connection should be refused.
//
// # Names
//
// A server name or host is returned in one normal form, the form an
// allowlist holds: ASCII lower case, without a port, without IPv6 brackets and
// without a single trailing dot. Only letters, digits, '-', '_' and '.' are
// accepted in names, in labels of 1 to 63 bytes and 253 bytes in all;
// internationalised names arrive as their ASCII "xn--" form. Anything else is
// [ErrMalformed] rather than passed on, so that a matcher never sees a byte it
// was not written for.
package sni
