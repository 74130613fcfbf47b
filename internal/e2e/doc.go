// Package e2e is the end-to-end test harness: it runs the real g0efilter
// binary in a network namespace of its own and lets tests send real traffic
// through the rules it installs. It is a thin layer over internal/testbed,
// which the sandbox (examples/sandbox) stands on too: it adds the test's
// cleanups and failures.
//
// Typical usage, in a _linux_test.go file of any package in this module:
//
//	func TestMain(m *testing.M) { os.Exit(e2e.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		env := e2e.New(t) // skips without root, fails under CI=true
//		env.Echo("tcp", "198.18.0.3:7000")
//		f := env.StartFilter(t, "allowlist:\n  ips: [\"198.18.0.3\"]\n", nil)
//		c, err := env.Dial("tcp4", "198.18.0.3:7000", time.Second)
//		// ...
//		f.SetPolicy("allowlist:\n  ips: [\"198.18.0.4\"]\n")
//		f.WaitForSet("198.18.0.4")
//	}
//
// # Topology
//
// [New] creates two namespaces with names unique to the test, and deletes
// them when the test ends, passed or failed:
//
//	box (g0e-box-<rand>)                    upstream (g0e-up-<rand>)
//	  veth0 198.18.0.1/24  <--- veth --->     veth0 198.18.0.2/24, .3, .4
//	        fd00:18::1/64                          fd00:18::2/64, ::3, ::4
//
// The box plays the shared network namespace of a Compose deployment: the
// filter runs there, and so do the clients under test ([Env.Dial],
// [Env.InBox]). The upstream namespace holds the servers ([Env.Listen],
// [Env.Echo], [Env.InUpstream]). Its three addresses per family let one test
// have an allowlisted and a non-allowlisted destination on the same peer.
// Loopback is up in both; there is no default route and no route out of the
// pair, so no test packet can leave the two namespaces. IPv6 addresses skip
// duplicate address detection, so they work at once.
//
// # Namespaces and goroutines
//
// A socket belongs to the namespace it was created in, whichever goroutine
// uses it later. [Env.InBox] and [Env.InUpstream] run a function on the
// calling goroutine, locked to its OS thread and switched into the namespace
// for the duration; create sockets (and start processes) there, use them
// anywhere.
//
// # The filter
//
// [Env.StartFilter] builds cmd/g0efilter once per test binary, runs
// "g0efilter run" in the box with the given policy and environment, and
// returns when the kernel has its table. The [Filter] handle rewrites the
// policy ([Filter.SetPolicy]), waits for the kernel's sets to follow
// ([Filter.WaitForSet]), and ends the process with SIGTERM ([Filter.Stop]) or
// SIGKILL ([Filter.Kill]). Its output is logged when the test fails.
//
// Each filter runs in a cgroup v2 of its own, from birth (clone3 with
// CLONE_INTO_CGROUP), so every socket it makes belongs to that cgroup:
// <cgroup2 mount>/g0e-e2e-<rand>/filter, then filter-2, ... for later
// filters of the same Env. [Filter.CgroupID] is what nftables' "socket
// cgroupv2" compares. It enters the box with nsenter, which, unlike
// "ip netns exec", keeps the mount namespace and so the cgroup2 mount, and
// execs the binary: [Filter.Pid] is the filter's. The cgroups are removed
// when the test ends, their processes killed first if any are left.
//
// # The workload
//
// [Env.Hostile] runs the hostile program (internal/e2e/hostile, built once
// per test binary by [HostileBinary]) in the box, in a cgroup of the Env's
// own ("workload", not the filter's), with Docker's default capabilities:
// CAP_NET_RAW but never CAP_NET_ADMIN, as root ([AsRoot]) or as nobody with
// those capabilities ambient ([AsNobody]). It tries a marked TCP or UDP
// exchange, or sends a raw Ethernet frame past the IP stack, and reports
// "ok ..." or "err ...":
//
//	env.Echo("tcp", ":7000")
//	rec := env.RecordUDP(t, netip.MustParseAddrPort("[::]:9000"))
//	ok, line := env.Hostile(t, e2e.AsNobody, "tcp", "-addr", "198.18.0.4:7000", "-mark", "0x6700")
//	ok, line = env.Hostile(t, e2e.AsRoot, "raw", "-ifname", e2e.VethName,
//		"-dstmac", env.UpstreamMAC(t), "-src", "198.18.0.1", "-dst", "198.18.0.4", "-port", "9000")
//	// rec.Count(), rec.Payloads(): what reached the upstream
//
// Without a filter everything the program sends arrives; a test with one
// judges by what reaches the upstream ([Env.Echo], [Env.RecordUDP]).
//
// # Servers
//
// Beside [Env.Echo], the upstream namespace can hold the servers a filtered
// client talks to. Each listens on every upstream address of both families
// (one dual-stack socket per port), so an allowlisted and a non-allowlisted
// address answer alike and only the filter tells them apart. Each stops, its
// goroutines waited for, when the test ends.
//
//	web := env.WebServers("a.example.test", "b.example.test")
//	c := env.HTTPClient(e2e.Upstream4[0]) // every request to 198.18.0.2
//	resp, err := c.Get("https://b.example.test/") // body "served b.example.test"
//	ns := env.DNSServer(map[string][]netip.Addr{"a.example.test": {e2e.Upstream4[0]}})
//	// ... ns.Queries(), web.Requests(): what reached the upstream
//
// [Env.WebServers] runs HTTP on port 80 and HTTPS on 443 for several names
// on one address. Over HTTPS the certificate is picked by SNI and the body
// is "served <sni>"; over HTTP the body is "served <host>" for a known Host
// header and 421 otherwise. Certificates come from [Env.TestCA], an ECDSA
// P-256 CA made in memory once per test binary ([SharedCA]): [CA.Pool] for
// clients, [CA.Issue] for servers of one's own.
//
// [Env.DNSServer] answers on port 53, UDP and TCP, with authority for the
// names it is given: A and AAAA records, NXDOMAIN for other names. It
// records every question, so a test can tell that a query never reached it.
//
// Clients run in the box. [Env.Dial] suits a test's own goroutine;
// [Env.DialContext] may be called from any goroutine, so it fits an
// http.Transport, and [Env.HTTPClient] is such a client: it sends every
// request to one upstream address, whatever the URL's host, which stays
// the Host header and the TLS server name, and it trusts the test CA.
// With a filter running, the box's connections to ports 80 and 443 go to
// the filter's proxies first, as in production.
//
// # Privileges
//
// The harness needs root, ip (iproute2), nft and nsenter; the filter and
// the workload need a writable cgroup2 mount too, and the workload
// setpriv. Without them a test is skipped, except under CI=true, where it
// fails: privileged tests must run there.
package e2e
