// Package nftrules builds g0efilter's nftables ruleset and installs it
// through netlink, in one atomic batch, without running nft.
//
// Typical usage:
//
//	v4, v6 := snap.Prefixes() // a policy.Snapshot
//	rs, err := nftrules.Build(nftrules.Config{Mode: nftrules.ModeHTTPS, Allow4: v4, Allow6: v6})
//	if err != nil {
//		return err
//	}
//	fmt.Print(rs) // dry run: the table in nft syntax
//
//	conn, err := nftrules.Open(nftrules.ConnConfig{})
//	if err != nil {
//		return err
//	}
//	defer conn.Close()
//	if err := conn.Apply(rs); err != nil { // replaces a previous table atomically
//		return err
//	}
//	...
//	v4, v6 = next.Prefixes() // on reload
//	err = conn.UpdateSets(v4, v6) // only the set elements change
//	...
//	// dns mode: let the addresses of an allowed answer through for its TTL
//	err = conn.Pin([]nftrules.Pin{{Addr: addr, Timeout: ttl}})
//
// # One description
//
// [Build] is a pure function from a [Config] to a [Ruleset]: a table of
// family inet (IPv4 and IPv6 alike) with its sets, one or two regular
// chains and five base chains, and, when [Config.Devices] names any, a netdev table
// with one egress chain per device. Rules are short lists of typed
// matches, an optional named counter, an optional log statement and a verdict. [Ruleset.Render] prints it as
// "nft list table inet g0efilter" prints the installed table; [Conn.Apply]
// turns the same values into netlink messages. Tests install the ruleset
// in a fresh network namespace and check that the kernel's listing equals
// the rendering; others, without privileges, compare the netlink messages
// that a Conn sends with golden files.
//
// # The filter's own sockets
//
// The chain "own", which both output chains jump to first, tells the
// filter's own sockets from the workload's. With [Config.OwnCgroup] (see
// [SelfCgroup]) a packet is the filter's only when its socket carries
// [Config.BypassMark] and was made in the filter's cgroup; the mark from
// any other socket is a forgery (CAP_NET_RAW is enough to set a mark),
// logged with [ForgedMarkLogPrefix] and dropped. Without a cgroup the mark
// alone decides, so it should be chosen at random.
//
// With a cgroup, the own chain also sets the conntrack mark 0x67000001
// on the filter's connections, which a workload cannot set, and every
// later packet of such a connection from a user's socket must come from
// the filter's cgroup too (chain "own_conn"): a raw socket that writes a
// packet with the addresses and ports of the filter's connection to its
// resolver, say, is logged with [ForgedConnLogPrefix] and dropped.
//
// # Forged sources and injected frames
//
// The output chain's first rule drops a packet from a user's socket whose
// source address is not one of the namespace's ([SpoofedSourceLogPrefix]):
// a raw socket (IP_HDRINCL) or a transparent one could otherwise write
// "from" a host outside, and conntrack would then let the workload's
// "reply" to that host pass as established. For the same reason a chain
// on the prerouting hook, ahead of conntrack, drops what arrives on
// loopback without having been routed out through it: a frame a packet
// socket wrote to "lo" ([InjectedLogPrefix]). A forward chain with policy
// drop routes nothing through the namespace.
//
// # Local services and raw frames
//
// The output chain lets the workload reach the local proxies and DNS
// server only through the nat chain's redirect ("ct status dnat"); any
// other connection to them, to [Config.GuardPorts] or to
// [Config.GuardAddrs] on this namespace is logged with
// [LocalServiceLogPrefix] and refused. The egress chains let out only what
// the IP stack routed, and the kernel's ARP: a frame sent through a packet
// socket never passed the inet hooks, so it is dropped and counted in the
// device's counter ([Conn.RawFrames]). [Conn.AddEgress] guards a device
// that appears later.
//
// # The ruleset
//
// In https mode (the default) the nat chain (output hook, priority -101)
// lets allowlisted destinations, the filter's own sockets and loopback
// traffic through untouched and
// redirects TCP 80 and 443 to the local HTTP and HTTPS proxies; with
// [Config.FilterDNS] it first redirects DNS (UDP and TCP 53) to the local
// DNS server, whatever the resolver's address. The filter
// chain (output hook, priority 0, policy drop) accepts established and
// related packets, the filter's own, the redirected connections and other
// packets to the namespace's own addresses, IPv6 neighbour discovery and
// allowlisted destinations, but refuses denied ones first
// ([Config.Deny4], [Config.Deny6], logged with [DeniedLogPrefix]; the nat
// chain does not redirect them); it logs every other new connection and
// rejects it, UDP 443 (QUIC) included: TCP with a reset, so that a
// client's connect fails at once over IPv6 as over IPv4, and the rest with
// an ICMP port-unreachable. A filter chain on the input hook drops
// connections to the local proxy ports that do not come through loopback,
// so a neighbour on the container network cannot use the proxies as an
// open proxy, whatever address they listen on.
//
// In dns mode the nat chain redirects UDP and TCP 53 to the local DNS
// server, except for the filter's own marked queries (and the input chain
// guards the DNS port the same way); the filter chain drops DoT (853),
// silently, and rejects, as in https mode, any new connection whose
// destination is neither allowlisted nor in the pinned4/pinned6 sets,
// which have per-element timeouts and are filled from allowed DNS answers
// by [Conn.Pin].
//
// # Logging
//
// Every decision that the kernel takes on a new connection is logged to
// the nflog group [Config.NflogGroup], for events/nflog to read; the log
// prefix says which decision it was: [Config.LogPrefix]
// ("g0efilter blocked: ") for a blocked connection,
// [Config.AllowLogPrefix] ("g0efilter allowed: ") for one accepted
// because its destination is allowlisted, and [Config.PinnedLogPrefix]
// ("g0efilter pinned: ") for one accepted in dns mode because its
// destination is pinned. Only the filter chain logs, and only new
// connections ("ct state new"), so each connection is logged once.
// Connections redirected to the local proxies or DNS server, and the
// filter's own, are not logged: the services that handle them report
// them. [Config.QuietAllowed] leaves allowed connections out of the log.
//
// # Pinning
//
// [Conn.Pin] adds addresses to the pinned sets with timeouts of their own
// (at least [MinPinTimeout], at most [MaxPinTimeout]), in one batch.
// Pinning an address again extends its expiry when the new timeout ends
// later, and never shortens it; [Conn.Apply] empties the pinned sets.
//
// # Updates
//
// [Conn.UpdateSets] changes only the elements of the allowlist sets, in one
// batch, so established connections survive and no packet is ever
// evaluated against a partly updated set. Elements go in messages of at
// most 1024 and the netlink socket buffers are raised, so
// that sets of tens of thousands of prefixes fit in one batch.
//
// Netlink code is Linux only; on other systems [Open] returns
// [ErrUnsupported] while [Build] and [Ruleset.Render] work everywhere.
package nftrules
