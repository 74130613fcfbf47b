// Package testbed makes network namespaces joined by a veth pair and runs
// processes, web sites and a DNS server in them: the ground that both the
// end-to-end harness (internal/e2e, which adds a test's cleanups and
// failures) and the sandbox (examples/sandbox) stand on. It needs root and
// ip (iproute2), and touches nothing in the machine's own namespace.
//
// Typical usage:
//
//	err := testbed.MakePair("box", "net", boxAddrs, netAddrs, func(ns string) { made = append(made, ns) })
//	sites, err := testbed.NewSites(ca, "a.example.test", "b.example.test")
//	srv := &testbed.Servers{NS: "net"}
//	defer srv.Close()
//	err = srv.HTTP(":443", sites, sites.TLSConfig())
//	err = srv.DNS(":53", testbed.NewZone(map[string][]netip.Addr{"a.example.test": {addr}}))
//	cg, err := testbed.NewCgroup(filepath.Join(mount, "g0e-x")) // mount from Cgroup2Mount
//	p, err := cg.Run(exec.Command("nsenter", "--net="+testbed.NetnsPath("box"), "--", bin))
//
// A socket belongs to the namespace it was created in, whichever goroutine
// uses it later: [In] runs a function switched into a namespace, to create
// sockets there and use them anywhere.
package testbed
