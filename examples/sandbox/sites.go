package main

import (
	"net/netip"
	"strings"
)

// The sandbox's addresses, all from 198.18.0.0/15 (benchmarking, never
// routed on the internet) and fd00::/8 (unique local). The IPv6 address of
// each mirrors its IPv4 one.
var (
	boxAddr4  = netip.MustParseAddr("198.18.100.1")
	boxAddr6  = netip.MustParseAddr("fd00:198:18:100::1")
	siteAddr4 = netip.MustParseAddr("198.18.100.2") // every test site, HTTP and HTTPS
	siteAddr6 = netip.MustParseAddr("fd00:198:18:100::2")
	rawAddr4  = netip.MustParseAddr("198.18.100.9") // the direct-IP target, no name
	rawAddr6  = netip.MustParseAddr("fd00:198:18:100::9")
	dnsAddr4  = netip.MustParseAddr("198.18.100.53") // the authoritative DNS server
	dnsAddr6  = netip.MustParseAddr("fd00:198:18:100::53")
)

const (
	prefixLen4 = 24
	prefixLen6 = 64

	// rawPort is where the direct-IP target listens: not 80 or 443, so
	// that the kernel decides on it, not a proxy.
	rawPort = 9000

	// The dashboard and the metrics listen on every address of the box.
	// The filter ships to the dashboard over loopback; the sandbox reaches
	// both from the stand-in internet, at the box's address, as a
	// published port would: the workload in the box may not reach them.
	dashboardPort    = 8081
	boxDashboardAddr = "127.0.0.1:8081"
	boxMetricsPort   = 9464

	// filterHostname is the filter's HOSTNAME, the "host" of its events.
	filterHostname = "sandbox"
	// sandboxUser is the dashboard account the sandbox makes.
	sandboxUser = "sandbox"

	// unblockPoll is the filter's UNBLOCK_POLL_INTERVAL: short, so that an
	// unblock clicked in the dashboard shows within seconds.
	unblockPoll = "2s"
)

// Files in the sandbox's directory.
const (
	filePolicy    = "policy.yaml"
	fileCA        = "ca.pem"
	fileFilterLog = "g0efilter.log"
	fileEvents    = "events.jsonl"
	fileDashLog   = "dashboard.log"
	fileUsers     = "users" // the dashboard's accounts
	fileTraffic   = "traffic.log"
	fileSitesLog  = "sites.log"
)

// site is a name the test sites answer to.
type site struct {
	Name    string
	Allowed bool // by the sandbox's policy as written
}

// sites are the names the web sites answer and the DNS server knows, all
// at siteAddr4 and siteAddr6.
var sites = []site{
	{"allowed.sandbox.test", true},
	{"api.allowed.sandbox.test", true},
	{"blocked.sandbox.test", false},
	{"tracker.sandbox.test", false},
}

// siteNames returns the names of sites.
func siteNames() []string {
	names := make([]string, len(sites))
	for i, s := range sites {
		names[i] = s.Name
	}
	return names
}

// policyYAML is the sandbox's policy file. The commented entries are
// there to be uncommented: the instructions print the sed commands that
// do it.
var policyYAML = strings.NewReplacer(
	"{dns4}", dnsAddr4.String(),
	"{dns6}", dnsAddr6.String(),
	"{raw4}", rawAddr4.String(),
).Replace(`# g0efilter sandbox policy: what the box may reach. Everything else is refused.
#
# The filter follows this file: save an edit and it applies it at once,
# without a restart and without cutting open connections ("policy reloaded"
# in g0efilter.log). An edit that does not parse is reported with its line,
# and the previous policy stays in force. The dashboard's "unblock" button
# edits it too, keeping these comments.

# Watch first: auditing, the filter refuses nothing. It decides as it
# would enforcing and reports what it would refuse as "would-block", so
# that you see what the workload needs before anything breaks. Change this
# to "mode: enforce" to block.
mode: audit

allowlist:
  # Addresses and prefixes, IPv4 and IPv6. Traffic to these goes straight
  # through, on any port, without a name check.
  ips:
    # The sandbox's DNS server. In https mode the workload's DNS to a
    # resolver that is not on loopback is refused unless its address is
    # listed (Docker's resolver, 127.0.0.11, is on loopback and needs
    # nothing). These addresses serve nothing but DNS; listing them lets
    # curl in the box resolve the sandbox's names through
    # /etc/netns/<box>/resolv.conf. The filter's own lookups (DNS_UPSTREAMS)
    # carry its firewall mark and need no entry.
    - "{dns4}"
    - "{dns6}"
    # - "{raw4}"   # the direct-IP target: uncomment to let it through

  # Names, read from the TLS ClientHello (port 443) or the HTTP Host header
  # (port 80). A name must also resolve, through DNS_UPSTREAMS, to the
  # address the client connected to.
  domains:
    - "allowed.sandbox.test"      # exact: this name only
    - "*.allowed.sandbox.test"    # wildcard: any name below it (api.allowed.sandbox.test)
    # - "blocked.sandbox.test"    # uncomment to allow it, and watch the dashboard
`)

// uncommentCommand returns the sed command that uncomments entry (as
// written in policyYAML, quotes included) in the policy file at path,
// after sudo (see rootPrefix).
func uncommentCommand(sudo, path, entry string) string {
	return sedCommand(sudo, path, "# - "+entry, "- "+entry)
}

// sedCommand returns the sed command that replaces from with to in the
// file at path, after sudo (see rootPrefix).
func sedCommand(sudo, path, from, to string) string {
	return sudo + "sed -i 's|" + from + "|" + to + "|' " + path
}
