package main

import (
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/g0lab/g0efilter/nftrules"
)

// resolvConfPath is the container's resolver configuration, which Docker
// writes.
const resolvConfPath = "/etc/resolv.conf"

// readResolvConf returns the text of resolvConfPath, or "" when it cannot
// be read. A variable, so that tests can give a file of their own.
var readResolvConf = func() string {
	b, err := os.ReadFile(resolvConfPath)
	if err != nil {
		return ""
	}
	return string(b)
}

// dockerEmbeddedDNS is Docker's embedded resolver on a user-defined
// network.
var dockerEmbeddedDNS = netip.MustParseAddr("127.0.0.11")

// resolvConf is what a container's /etc/resolv.conf says about its
// resolvers.
type resolvConf struct {
	nameservers []netip.Addr // "nameserver" lines, in order
	// ext are the servers Docker's embedded resolver forwards to, from the
	// "# ExtServers: [...]" comment that Docker Engine 25 and later writes
	// (moby's libnetwork/internal/resolvconf); hasExt is false when the
	// file has no such line.
	ext    []extServer
	hasExt bool
}

// extServer is one entry of the ExtServers comment: "10.0.0.1", or
// "host(127.0.0.53)" for one that Docker asks from the host's network
// namespace, not from the container's.
type extServer struct {
	addr netip.Addr
	host bool
}

// parseResolvConf reads the nameserver lines of a resolv.conf and Docker's
// ExtServers comment. Entries it cannot parse are passed over.
func parseResolvConf(text string) resolvConf {
	var rc resolvConf
	for line := range strings.Lines(text) {
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[0] == "nameserver" {
			if a, err := netip.ParseAddr(fields[1]); err == nil {
				rc.nameservers = append(rc.nameservers, a)
			}
			continue
		}
		list, ok := strings.CutPrefix(strings.TrimSpace(line), "# ExtServers:")
		if !ok {
			continue
		}
		rc.hasExt = true
		list = strings.TrimSpace(list)
		list = strings.TrimSuffix(strings.TrimPrefix(list, "["), "]")
		for _, f := range strings.Fields(list) {
			e := extServer{}
			if inner, ok := strings.CutPrefix(f, "host("); ok {
				f, e.host = strings.TrimSuffix(inner, ")"), true
			}
			a, err := netip.ParseAddr(f)
			if err != nil {
				continue
			}
			e.addr = a
			rc.ext = append(rc.ext, e)
		}
	}
	return rc
}

// upstreamChoice is where the filter sends the DNS questions it forwards.
type upstreamChoice struct {
	servers []netip.AddrPort // for allowlisted names
	local   []netip.AddrPort // for local names (DNS_LOCAL_NAMES); nil: servers
	from    string           // why, for the start-up log
	warn    string           // a limit the user should know about, or ""
}

// chooseUpstreams picks the resolvers when DNS_UPSTREAMS is not set, from
// the container's resolv.conf (text; empty when it cannot be read).
//
// Docker's embedded resolver (127.0.0.11) forwards what it cannot answer
// itself to its external servers from inside the container's network
// namespace, unless a server is marked host(...), which it asks from the
// host's namespace. In the filter's namespace such a forwarded query is
// not the filter's own (dockerd's socket, no mark, dockerd's cgroup): it
// is refused, or redirected back to the filter's DNS server. So allowlisted
// names go straight to the external servers Docker lists, with the
// filter's own sockets, and only a host(...) server is reached through
// 127.0.0.11. Local names (Compose service names) stay with 127.0.0.11,
// which answers them itself. Nothing new is reachable by the workload: the
// names forwarded are the same, to the servers Docker would have asked.
func chooseUpstreams(text string) upstreamChoice {
	embedded := netip.AddrPortFrom(dockerEmbeddedDNS, nftrules.DefaultDNSPort)
	def := upstreamChoice{servers: []netip.AddrPort{embedded}, from: "default (Docker's embedded DNS)"}
	rc := parseResolvConf(text)
	if len(rc.nameservers) == 0 {
		if text == "" {
			def.warn = resolvConfPath + " could not be read"
		}
		return def
	}
	add := func(list []netip.AddrPort, a netip.Addr) []netip.AddrPort {
		if a.Zone() != "" {
			return list
		}
		ap := netip.AddrPortFrom(a.Unmap(), nftrules.DefaultDNSPort)
		if slices.Contains(list, ap) {
			return list
		}
		return append(list, ap)
	}
	var others []netip.AddrPort // nameservers other than 127.0.0.11
	for _, a := range rc.nameservers {
		if a != dockerEmbeddedDNS {
			others = add(others, a)
		}
	}
	if !slices.Contains(rc.nameservers, dockerEmbeddedDNS) {
		// No embedded resolver (the default bridge network): the listed
		// servers are what the container would ask.
		return upstreamChoice{servers: others, from: resolvConfPath + " nameservers (no embedded DNS)"}
	}
	c := upstreamChoice{local: []netip.AddrPort{embedded}}
	if rc.hasExt {
		for _, e := range rc.ext {
			if e.host || e.addr.Zone() != "" {
				// Asked by dockerd from the host's namespace: through
				// 127.0.0.11, which works from here.
				c.servers = add(c.servers, dockerEmbeddedDNS)
				continue
			}
			c.servers = add(c.servers, e.addr)
		}
		for _, a := range others {
			c.servers = add(c.servers, a.Addr())
		}
		if len(c.servers) > 0 {
			c.from = "Docker's ExtServers in " + resolvConfPath + "; local names through 127.0.0.11"
			return c
		}
	}
	if len(others) > 0 {
		// Older engines list the external IPv6 servers beside 127.0.0.11.
		c.servers = others
		c.from = resolvConfPath + " nameservers besides 127.0.0.11; local names through 127.0.0.11"
		return c
	}
	def.warn = "Docker's embedded DNS (127.0.0.11) is the only resolver known: " + resolvConfPath +
		" names none behind it (Docker Engine before 25 writes no ExtServers line). It forwards other names" +
		" from this network namespace, where its queries are not the filter's, so they resolve only if the" +
		" host's resolver is on the host's loopback (then Docker asks it from the host). Otherwise set" +
		" DNS_UPSTREAMS to the resolvers this container is given (Compose dns:, or the host's)"
	return def
}
