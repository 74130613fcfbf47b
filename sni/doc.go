// Package sni reads the name a client wants to reach from the first bytes of a
// TCP connection: the server name of a TLS ClientHello, or the host of an
// HTTP/1.x request head; and [Proxy], the transparent proxy that decides on
// that name and forwards or resets the connection.
//
// Typical usage of the proxy, on the ports the kernel redirects 443 and 80
// to:
//
//	var live policy.Holder // the filter stores each reloaded policy here
//	p := &sni.Proxy{
//		Policy:   &live,
//		Resolver: &dnsfilter.Resolver{Upstream: upstream},
//		Mark:     nftrules.DefaultBypassMark,
//		Events:   sink,
//	}
//	go p.Serve(ctx, tlsListener, sni.TLS)   // 127.0.0.1:8443
//	go p.Serve(ctx, httpListener, sni.HTTP) // 127.0.0.1:8080
//
// Typical usage of the parsers, in a transparent proxy that has accepted conn on port 443 and
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
//
// # The proxy
//
// [Proxy.Serve] accepts connections that the kernel redirected to it, reads
// their original destination (SO_ORIGINAL_DST, IPv4 and IPv6), and reads
// only as much of the stream as the decision needs. Then:
//
//   - TLS: a ClientHello without a server name, with a name that is not a
//     host name, or that is not TLS at all, is reset. A hello split over
//     many segments or records is read whole first.
//   - HTTP: every request on a kept-alive connection is decided before a
//     byte of it is forwarded, not only the first; a refused request ends
//     the connection. A request whose absolute-form target disagrees with
//     its Host, a CONNECT, a protocol upgrade, or a body whose framing a
//     server might read differently (both Content-Length and
//     Transfer-Encoding, a malformed chunk) is refused: the proxy would lose
//     track of where the next request starts.
//   - The name must belong to the destination ([VerifyDestination], the
//     default): an allowed name is forwarded only if it resolves to the
//     address the client connected to, so that an allowed name cannot carry
//     a connection to any other server. [DialName] dials the name's
//     addresses instead; [TrustDestination] skips the check.
//
// An allowed connection is dialled with [Proxy.Mark], the bytes read so far
// are replayed, and the rest is spliced between the two sockets in the
// kernel, with half-closes passed on. Every decision is one
// [events.Event]. A connection that is refused is reset.
//
// # Audit mode
//
// When the policy is only audited ([Auditor], "mode: audit" in the policy
// file), every decision is taken as above, but a refusal is reported as
// [events.WouldBlock] with the same reason and rule, and the connection is
// forwarded to the address the client connected to, the bytes read so far
// first. A connection that is not TLS or HTTP, or whose first message does
// not complete in time, is forwarded as it is; on HTTP, after a CONNECT, an
// upgrade or a request that cannot be parsed, the rest of the connection is
// forwarded without being read as requests. A connection made to the proxy
// directly, not through the redirect, is refused in both modes.
//
// # Bounds
//
// Every connection is bounded: [Proxy.HelloTimeout] (10s) for the first
// message, and on HTTP for each later request head from its first byte,
// [MaxHelloSize] and [MaxHeadSize] for what is read before deciding,
// [Proxy.DialTimeout] (10s), and [Proxy.IdleTimeout] (10m) when nothing
// moves. No goroutine or descriptor outlives its connection, and Serve
// closes them all when its context ends or its listener fails.
//
// An idle forwarded connection costs under 9 KB of Go memory and 2 file
// descriptors, its two sockets. A direction holds a pipe for splice(2), 2
// more descriptors, only while bytes are in flight; at most 2×GOMAXPROCS
// empty pipes are kept for reuse, and the rest are closed as they come
// back. Raise the descriptor limit (ulimit -n, or the container's nofile)
// to 6 per connection expected to move data at once and 2 per idle one,
// plus some; when descriptors run out, Serve backs off from 5ms to 1s
// between accepts rather than spinning (logged once a run, counted in
// [Stats].AcceptWaits), a connection accepted with the last descriptor
// waits, within DialTimeout, for one to dial with rather than being reset,
// and a connection that finds no pipe copies through memory.
package sni
