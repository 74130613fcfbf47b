// Package netnstest gives privileged tests a network namespace of their
// own, so that rules, sockets and routes they create never touch the test
// machine's namespace. It is for tests inside this module only.
//
//	fd := netnstest.New(t)  // skips without root, fails under CI=true
//	netnstest.Run(t, fd, func() {
//		// this goroutine's thread, and processes it starts, are in the
//		// namespace
//	})
//
// Packages that the end-to-end harness (internal/e2e) imports, such as
// nftrules, use this package for their own tests, since importing the
// harness from them would be an import cycle.
package netnstest
