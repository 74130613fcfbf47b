//go:build linux

package e2e

import (
	"net"

	"github.com/g0lab/g0efilter/internal/nsdial"
	"github.com/g0lab/g0efilter/internal/testbed"
)

// BoxDialer starts workers threads in the box namespace that dial with d,
// for load tests, where starting a thread or switching namespaces per
// connection ([Env.DialContext]) would cost more than what is measured.
// The threads end when the test ends.
func (e *Env) BoxDialer(d net.Dialer, workers int) *nsdial.Dialer {
	e.t.Helper()
	nd, err := nsdial.New(testbed.NetnsPath(e.Box), d, workers)
	if err != nil {
		e.t.Fatalf("e2e: box dialer: %v", err)
	}
	e.t.Cleanup(nd.Close)
	return nd
}
