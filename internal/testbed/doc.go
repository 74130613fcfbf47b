// Package testbed makes network namespaces joined by a veth pair, and runs
// processes, web sites and a DNS server in them: the ground that both the
// end-to-end harness (internal/e2e, which adds a testing.TB's cleanups
// and failures on top) and the sandbox (examples/sandbox) stand on. It
// needs root and ip (iproute2); nothing it makes touches the machine's own
// namespace.
//
// Typical usage:
//
//	err := testbed.MakePair("box", "net",
//		[]netip.Prefix{netip.MustParsePrefix("198.18.0.1/24")},
//		[]netip.Prefix{netip.MustParsePrefix("198.18.0.2/24")},
//		func(ns string) { undo = append(undo, func() error { return testbed.DeleteNamespace(ns) }) })
//	sites, err := testbed.NewSites(ca, "a.example.test", "b.example.test")
//	zone := testbed.NewZone(map[string][]netip.Addr{"a.example.test": {addr}})
//	srv := &testbed.Servers{NS: "net"}
//	defer srv.Close()
//	err = srv.HTTP(":80", sites, nil)
//	err = srv.HTTP(":443", sites, sites.TLSConfig())
//	err = srv.DNS(":53", zone)
//	cg, err := testbed.NewCgroup(filepath.Join(mount, "g0e-x")) // mount from Cgroup2Mount
//	p, err := cg.Run(exec.Command("nsenter", "--net="+testbed.NetnsPath("box"), "--", bin))
//
// # Namespaces and threads
//
// A socket belongs to the namespace it was created in, whichever goroutine
// uses it later. [In] runs a function on the calling goroutine, locked to
// its OS thread and switched into a namespace for the duration: create
// sockets there, use them anywhere. internal/nsdial dials from a
// namespace on threads that stay in it.
package testbed
