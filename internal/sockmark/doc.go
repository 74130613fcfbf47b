// Package sockmark sets the firewall mark (SO_MARK) on the sockets of
// g0efilter's own connections — the proxies' upstream connections, DNS
// queries to the upstream resolver, events sent to Gotify and the dashboard
// — so that the ruleset lets them out while it holds the workload's
// traffic. Marks exist on Linux only; elsewhere a Control function fails
// every connection, so a build for another system cannot send unmarked
// traffic that the rules were meant to tell apart. Get reads a socket's mark
// back.
package sockmark
