// Package dnsfilter is g0efilter's filtering DNS server: it answers
// queries for allowlisted names from upstream resolvers and refuses the
// rest with NXDOMAIN, without sending them anywhere.
//
// Typical usage, in dns mode:
//
//	var live policy.Holder // filled and reloaded by the caller
//	up := &dnsfilter.Upstream{
//		Servers: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.11:53")},
//		Mark:    bypassMark, // the filter's own queries skip its redirect
//	}
//	defer up.Close()
//	srv := &dnsfilter.Server{
//		Addrs: []netip.AddrPort{
//			netip.MustParseAddrPort("127.0.0.1:53"),
//			netip.MustParseAddrPort("[::1]:53"),
//		},
//		Handler: &dnsfilter.Handler{
//			Policy:   &live,
//			Upstream: up,
//			Events:   sink,
//			OnAnswer: func(a dnsfilter.Answer) { pin(a.Addrs) }, // nftables timeout sets
//		},
//	}
//	err := srv.ListenAndServe(ctx) // until ctx ends
//
// and in https mode, where the proxy checks a name against the address a
// client connected to:
//
//	res := &dnsfilter.Resolver{Upstream: up}
//	addrs, err := res.LookupNetIP(ctx, sni)
//
// # Deciding
//
// A [Handler] decides on the question name alone, whatever the query type
// (A, AAAA, TXT, MX, ANY...): a name the [Policy] allows is forwarded to
// the [Upstream] and its answer relayed, any other gets NXDOMAIN with an
// Extended DNS Error "Blocked". Every query gives one [events.Event]. The
// addresses of an allowed answer, CNAME chains followed, go to
// [Handler.OnAnswer] before the client sees them, so that the filter can
// let connections to them through for their TTL.
//
// A Policy that is also a [Denier] (policy.Holder is one) has the last
// word: a denied name is answered NXDOMAIN with reason
// [events.ReasonDenied], whatever allows it, and denied addresses are not
// passed to [Handler.OnAnswer].
//
// A Policy that is also an [Auditor] (policy.Holder and policy.Names are)
// may be only audited: then a question refused for the policy's sake
// (not allowlisted, denied, over the [Limits] on a name, its type or its
// TXT answer) is decided as in enforce mode but answered as an allowed
// one, its addresses passed to OnAnswer with [Answer.Audited] set, and
// its one event is [events.WouldBlock] with the reason enforce mode
// gives. The rate limit and the refusal of malformed queries hold in
// both modes.
//
// With [Handler.LocalNames], a single-label name ("db.") that the Policy
// does not allow is forwarded too, so that Compose service and container
// names resolve through Docker's resolver; its answer is relayed but not
// passed to OnAnswer, so reaching the address still needs the allowlist.
//
// # Upstreams
//
// An [Upstream] tries its servers in order, each for 2s by default, moving
// on when one cannot be reached, times out or answers SERVFAIL or REFUSED.
// Each query goes out with a random ID, and only a response with that ID
// and the query's question is taken as its answer. Queries over UDP reuse
// a pool of connected sockets per server, one query per socket at a time;
// a socket that saw an error or a timeout is closed rather than reused.
// Every socket is marked with [Upstream.Mark] (SO_MARK, on Linux) so that
// the filter's ruleset can let it out; [Upstream.Close] closes the idle
// ones. A client that asked over UDP is answered over UDP, truncated
// answers included, so that it retries over TCP itself; the [Resolver]
// retries over TCP on its own.
//
// # Defaults
//
//   - [Upstream.Timeout]: 2s per try.
//   - [Upstream.MaxSockets]: 256 UDP sockets per server, and so as many
//     queries in flight to it.
//   - [Handler.Timeout]: 4s for all the tries of one query, then SERVFAIL.
//   - [Handler.LocalNames]: off, so single-label names are refused like
//     any other the Policy does not allow.
//   - [Server.Addrs]: 127.0.0.1:53 and [::1]:53, over UDP and TCP.
//   - [Resolver]: answers kept for their TTL between 5s and 1h, addresses
//     kept 5 minutes longer, at most 4096 names.
//
// The package reads no environment variables and does not touch
// nftables; it reports answers through a hook.
package dnsfilter
