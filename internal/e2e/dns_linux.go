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
// namespace, listening on every upstream address of both families, that
// answers for records as [testbed.Zone] does: with authority, A and AAAA
// records with a TTL of [DNSTTL], NXDOMAIN for other names; every question
// recorded ([DNSServer.Queries]). It stops, its goroutines waited for,
// when the test ends.
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
