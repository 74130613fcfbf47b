// Package g0efilter is an egress filter for containers, built as a library:
// a workload shares the filter's network namespace, and nothing leaves it
// unless the allowlist says so — by IP address or prefix (IPv4 and IPv6), or
// by domain name read from the TLS ClientHello (SNI) or the HTTP Host header
// without terminating TLS, or from DNS questions.
//
// This package holds only documentation. Import the package for the job:
//
//   - [github.com/g0lab/g0efilter/policy]: parse and validate the allowlist
//     and denylist (YAML file or comma-separated lists; entries limited to
//     protocols and ports), compile it into an immutable
//     policy.Snapshot that matches names and addresses without locks or
//     allocations, hold the live one, watch the file, and edit it safely.
//   - [github.com/g0lab/g0efilter/sni]: read the server name from the first
//     bytes of a connection — a TLS ClientHello or an HTTP/1.x request head —
//     and sni.Proxy, the transparent proxy that decides on it and forwards
//     (splicing) or resets the connection.
//   - [github.com/g0lab/g0efilter/dnsfilter]: the filtering DNS handler and
//     server (dns mode), the upstream client, and the caching resolver the
//     proxy checks names with.
//   - [github.com/g0lab/g0efilter/nftrules]: build the nftables ruleset for
//     a mode and an allowlist, render it for dry runs, install it through
//     netlink in one atomic batch, update its sets on reload, and pin the
//     addresses of allowed DNS answers.
//   - [github.com/g0lab/g0efilter/events]: the typed Event every decision
//     produces, the Sink interface, fan-out, bounded queues, the log and
//     file sinks; events/nflog turns the kernel's verdicts into events and
//     events/gotify notifies about blocked traffic.
//   - [github.com/g0lab/g0efilter/dashboardapi] and
//     [github.com/g0lab/g0efilter/unblock]: the dashboard's server and the
//     filter's client, and the filter's side of remote unblock.
//   - [github.com/g0lab/g0efilter/suggest]: a policy to review from what a
//     workload did, as its events tell it.
//
// A policy is enforced or only audited (policy.Mode; Snapshot.Audit):
// auditing, the proxies, the resolver and the kernel's verdict chains
// decide as they would enforcing, let through what they would refuse and
// report it as events.WouldBlock, so that a policy can be learnt before
// it blocks anything. The guards against getting around the filter hold
// in both modes.
//
// # Data flow
//
//	policy.yaml / env ──► policy.Loader ──► policy.Compile ──► policy.Snapshot
//	                           ▲                                  │ held in a policy.Holder
//	            policy.Watcher (reload)                           ▼
//	                                  ┌──────────── sni.Proxy (80/443 redirected)
//	Snapshot.MatchHost(name) ◄────────┤
//	                                  └──────────── dnsfilter.Handler (53 redirected) ──► nftrules.Conn.Pin
//	                                         │
//	                                   events.Event ◄── events/nflog (kernel verdicts)
//	                                         │
//	                                   events.Sink fan-out ──► log, LOG_FILE, Gotify, metrics
//
//	Snapshot.Prefixes, .Services ──► nftrules.Build ──► Conn.Apply / Conn.UpdateLists ──► table inet g0efilter
//
//	events ──► suggest.Observations (OBSERVED_FILE) ──► suggest.Suggest ──► a policy to review
//
// cmd/g0efilter wires these together from the environment; cmd/dashboard
// serves the web UI and the API events are shipped to.
package g0efilter
