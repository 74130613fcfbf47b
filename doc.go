// Package g0efilter is an egress filter for containers, built as a library:
// a workload shares the filter's network namespace, and nothing leaves it
// unless the allowlist says so — by IP address or prefix (IPv4 and IPv6), or
// by domain name read from the TLS ClientHello (SNI) or the HTTP Host header
// without terminating TLS, or from DNS questions.
//
// This package holds only documentation. Import the package for the job:
//
//   - [github.com/g0lab/g0efilter/policy]: parse and validate the allowlist
//     (YAML file or comma-separated lists), compile it into an immutable
//     policy.Snapshot that matches names and addresses without locks or
//     allocations, hold the live one, watch the file, and edit it safely.
//   - [github.com/g0lab/g0efilter/sni]: read the server name from the first
//     bytes of a connection — a TLS ClientHello or an HTTP/1.x request head —
//     without consuming or decrypting anything.
//   - [github.com/g0lab/g0efilter/nftrules]: build the nftables ruleset for
//     a mode and an allowlist, render it for dry runs, install it through
//     netlink in one atomic batch and update its sets on reload.
//
// # Data flow
//
//	policy.yaml / env ──► policy.Loader ──► policy.Compile ──► policy.Snapshot
//	                                                              │ held in a policy.Holder
//	                                                              ▼
//	connection's first bytes ──► sni.ParseClientHello / sni.ParseRequestHead
//	                                  │ server name
//	                                  ▼
//	                        Snapshot.MatchHost(name) ──► allow (with the rule) or block
//
//	Snapshot.Prefixes ──► nftrules.Build ──► Conn.Apply / Conn.UpdateSets ──► table inet g0efilter
//
// The binary, the transparent proxy, the DNS filter, events and the
// dashboard build on these packages.
package g0efilter
