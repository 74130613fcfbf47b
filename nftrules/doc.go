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
//	err = conn.Apply(rs) // replaces a previous table atomically
//	...
//	err = conn.UpdateLists(nftrules.Lists{Allow4: v4, Allow6: v6}) // on reload
//	...
//	err = conn.Pin(pins) // let an allowed DNS answer's addresses through for its TTL
//
// # The ruleset
//
// [Build] is a pure function from a [Config] to a [Ruleset]: one table of
// family inet (IPv4 and IPv6 alike) and, for [Config.Devices], a netdev
// table. [Ruleset.Render] prints it as "nft list table inet g0efilter"
// prints the installed table; [Conn.Apply] sends the same description as
// netlink messages.
//
// In https mode (the default) TCP 80 and 443 are redirected to the local
// HTTP and HTTPS proxies; in dns mode DNS is redirected to the local DNS
// server, and only destinations allowlisted or pinned from an allowed
// answer ([Conn.Pin]) are let through. Either way the output chain drops by
// default: it accepts established connections, the filter's own sockets
// and allowlisted destinations, refuses denied ones and rejects any other
// new connection, and logs each decision to an nflog group with a prefix
// that names it. The filter's own sockets carry [Config.BypassMark] and,
// with [Config.OwnCgroup] (see [SelfCgroup]), come from its cgroup. Other
// chains refuse forged marks, spoofed sources, frames injected on loopback
// or sent below the IP stack, and connections to the local services other
// than through the redirect. docs/DESIGN-NOTES.md walks through the chains.
//
// With [Config.Audit] the two regular chains that hold the verdicts on
// what the policy refuses, block and deny, log it with [WouldBlockLogPrefix]
// or [WouldDenyLogPrefix] and accept it; every other chain is the same in
// both modes, so the guards hold while auditing.
//
// [Conn.UpdateLists] changes only set elements, and the verdict chains'
// rules when [Lists.Audit] changes, in one batch: established connections
// survive and no packet sees a half-updated set or a mix of modes.
//
// Netlink code is Linux only; on other systems [Open] returns
// [ErrUnsupported] while [Build] and [Ruleset.Render] work everywhere.
package nftrules
