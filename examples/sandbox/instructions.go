package main

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
)

// instructions is what the sandbox prints once it is up: what to open,
// where the files are, and commands to try, with the sandbox's own names
// and paths filled in.
// Commands that need root start with sudo, a prefix from rootPrefix.
func instructions(info Info, interval time.Duration, sudo string) string {
	if interval <= 0 {
		interval = defaultInterval
	}
	ca := filepath.Join(info.Dir, fileCA)
	pol := filepath.Join(info.Dir, filePolicy)
	in := sudo + "ip netns exec " + info.Box + " "
	raw := netip.AddrPortFrom(rawAddr4, rawPort)

	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("")
	w("The g0efilter sandbox is up.")
	w("")
	w("  Open the dashboard: %s", info.Dashboard)
	w("  and sign in as %s with the password %s (made for this run)", info.User, info.Password)
	w("  (this process forwards it into the box; nothing changed in this machine's own network namespace)")
	w("")
	w("  box %s: the workload's namespace, where g0efilter (https mode) and the dashboard run", info.Box)
	w("  net %s: a stand-in internet: sites at %s and %s, DNS at %s", info.Net, siteAddr4, siteAddr6, dnsAddr4)
	w("  traffic: every %v the box tries allowed.sandbox.test, api.allowed.sandbox.test, blocked.sandbox.test", interval)
	w("           and tracker.sandbox.test over HTTPS and HTTP, and %s directly", raw)
	w("")
	w("  Files in %s:", info.Dir)
	w("    %-14s the filter's policy: edit it and the filter applies it at once", filePolicy)
	w("    %-14s the sandbox's CA, for curl --cacert", fileCA)
	w("    %-14s the filter's log; %s has each decision as a JSON line", fileFilterLog, fileEvents)
	w("    %-14s the dashboard's log", fileDashLog)
	w("    %-14s what the traffic generator tried and what came of it", fileTraffic)
	w("")
	w("Watch first. The filter starts in audit mode (\"mode: audit\" in %s): it refuses nothing,", filePolicy)
	w("and reports what it would refuse as would-block. In the dashboard, pick the filter and open")
	w("\"Observed\": blocked.sandbox.test, tracker.sandbox.test and %s are would-block, each with", raw)
	w("an \"Allow\" button. Then ask what the policy lacks, from what the workload did:")
	w("  %s%s suggest --diff %s %s", sudo, info.Filter, pol, filepath.Join(info.Dir, fileEvents))
	w("and when the policy says what you mean, enforce it:")
	w("  %s", sedCommand(sudo, pol, "mode: audit", "mode: enforce"))
	w("g0efilter.log then says \"enforce mode\", and what was would-block is blocked.")
	w("")
	w("Try, in another terminal (curl runs in the box; names resolve through the sandbox's DNS server,")
	w("which the policy allowlists). Enforcing:")
	w("")
	w("  # allowed: the policy lists allowed.sandbox.test")
	w("  %scurl --cacert %s https://allowed.sandbox.test/", in, ca)
	w("  # allowed by the wildcard *.allowed.sandbox.test, over plain HTTP (the Host header decides)")
	w("  %scurl http://api.allowed.sandbox.test/", in)
	w("  # blocked: the filter's resolver answers NXDOMAIN for a name the policy does not allow")
	w("  %scurl --cacert %s https://blocked.sandbox.test/", in, ca)
	w("  # blocked: sent to the site's address anyway, the TLS proxy reads the name and resets the connection")
	w("  %scurl --cacert %s --resolve blocked.sandbox.test:443:%s https://blocked.sandbox.test/", in, ca, siteAddr4)
	w("  # blocked in the kernel: an address the policy does not list, on a port no proxy handles")
	w("  %scurl http://%s/", in, raw)
	w("  # blocked: an allowed name sent to an address it does not resolve to")
	w("  %scurl --cacert %s --resolve allowed.sandbox.test:443:%s https://allowed.sandbox.test/", in, ca, rawAddr4)
	w("(auditing, each of these gets through, and the dashboard shows it as would-block)")
	w("")
	w("Watch a live reload: allow blocked.sandbox.test by uncommenting its line in the policy,")
	w("  %s", uncommentCommand(sudo, pol, `"blocked.sandbox.test"`))
	w("then g0efilter.log says \"policy reloaded\", and blocked.sandbox.test turns allowed in the dashboard")
	w("and in traffic.log. Or let the direct-IP target through:")
	w("  %s", uncommentCommand(sudo, pol, `"`+rawAddr4.String()+`"`))
	w("Or click \"unblock\" (\"Allow\" in Observed) in the dashboard: the filter adds the entry to %s", filePolicy)
	w("within %s, keeping its comments.", unblockPoll)
	w("")
	w("Ctrl-C stops everything, deletes the namespaces and removes %s.", info.Dir)
	return b.String()
}
