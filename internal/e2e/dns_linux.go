//go:build linux

package e2e

import (
	"net/netip"
	"strconv"

	"github.com/g0lab/g0efilter/internal/testbed"
)

const (
	// DNSPort is where [Env.DNSServer] listens.
	DNSPort = 53
	// DNSTTL is the TTL of the records [Env.DNSServer] answers with,
	// unless [DNSServer.SetTTL] changes it.
	DNSTTL = testbed.DNSTTL
)

// DNSQuery is a question [Env.DNSServer] received.
type DNSQuery = testbed.DNSQuery

// DNSServer is an authoritative DNS server in the upstream namespace, made
// by [Env.DNSServer].
type DNSServer = testbed.Zone

// DNSServer starts a DNS server on port 53, UDP and TCP, in the upstream
// namespace, listening on every upstream address of both families. It is
// authoritative (the AA bit set) for the names in records (case ignored, a
// trailing dot optional): an A question gets the IPv4 addresses of the
// name, an AAAA question its IPv6 addresses, each with a TTL of [DNSTTL],
// and any other type an empty answer. A name not in records gets NXDOMAIN.
// Every question is recorded, answered or not ([DNSServer.Queries]). The
// server stops, its goroutines waited for, when the test ends.
func (e *Env) DNSServer(records map[string][]netip.Addr) *DNSServer {
	e.t.Helper()
	zone := testbed.NewZone(records)
	srv := &testbed.Servers{NS: e.Upstream}
	e.t.Cleanup(srv.Close)
	if err := srv.DNS(":"+strconv.Itoa(DNSPort), zone); err != nil {
		e.t.Fatalf("e2e: %v", err)
	}
	return zone
}
