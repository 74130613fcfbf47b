//go:build linux

package testbed

import (
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/g0lab/g0efilter/internal/nsdial"
)

// VethName is the name of the veth pair's end in both namespaces of
// [MakePair].
const VethName = "veth0"

const (
	netnsDir    = "/run/netns" // where ip netns keeps its names
	linkTimeout = 5 * time.Second
	linkPoll    = 10 * time.Millisecond
)

// NetnsPath returns the file of the namespace that ip netns calls name,
// for nsenter --net= or internal/nsdial.
func NetnsPath(name string) string { return netnsDir + "/" + name }

// MakePair creates the namespaces a and b, joined by a veth pair named
// [VethName] in both, gives a's end the addresses aAddrs and b's end
// bAddrs (in that order; IPv6 ones without duplicate address detection,
// so they work at once), brings every link up, loopback included, and
// waits until the pair can send. The pair is made inside a and its peer
// moved straight into b, so nothing appears in the machine's namespace,
// even for a moment. made is called for each namespace once it exists,
// failure or not, so that the caller deletes it ([DeleteNamespace]).
func MakePair(a, b string, aAddrs, bAddrs []netip.Prefix, made func(ns string)) error {
	for _, ns := range []string{a, b} {
		if err := ipCmd("netns", "add", ns); err != nil {
			return err
		}
		made(ns)
	}
	steps := [][]string{{"-n", a, "link", "add", VethName, "type", "veth", "peer", "name", VethName, "netns", b}}
	for _, end := range []struct {
		ns    string
		addrs []netip.Prefix
	}{{a, aAddrs}, {b, bAddrs}} {
		for _, p := range end.addrs {
			step := []string{"-n", end.ns, "addr", "add", p.String(), "dev", VethName}
			if p.Addr().Is6() {
				step = append(step, "nodad")
			}
			steps = append(steps, step)
		}
	}
	for _, ns := range []string{a, b} {
		steps = append(steps,
			[]string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"-n", ns, "link", "set", VethName, "up"})
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			return err
		}
	}
	return waitLinks(a, b)
}

// waitLinks waits until both ends of the pair are up and can send. The
// kernel activates a device's queue in its link-watch work, which it runs
// at most once a second: until then the device drops what it is given, and
// the first ARP or neighbour reply is lost (a one-second stall, then a
// retry). Listing the link runs its pending link-watch event at once, so
// the poll below seldom takes more than one round.
func waitLinks(namespaces ...string) error {
	deadline := time.Now().Add(linkTimeout)
	for {
		var last string
		ready := true
		for _, ns := range namespaces {
			out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", VethName).CombinedOutput()
			last = string(out)
			if err != nil || !strings.Contains(last, "state UP") || strings.Contains(last, "qdisc noop") {
				ready = false
				break
			}
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testbed: veth pair not up after %v: %s", linkTimeout, last)
		}
		time.Sleep(linkPoll)
	}
}

// DeleteNamespace deletes the namespace name; the veth end in it goes
// with it.
func DeleteNamespace(name string) error {
	return ipCmd("netns", "del", name)
}

// ipCmd runs "ip args...".
func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("testbed: ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// In runs fn on the calling goroutine, locked to its OS thread and with
// the thread switched into the namespace ns, then switches back; sockets
// fn creates and processes it starts belong to ns. Should switching back
// fail, the thread stays locked, so that it ends with the goroutine rather
// than serve others from the wrong namespace. fn may end the goroutine
// (runtime.Goexit, as t.FailNow does): the switch back happens all the
// same.
func In(ns string, fn func()) (err error) {
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("testbed: open own namespace: %w", err)
	}
	defer unix.Close(orig)
	if err := nsdial.Enter(NetnsPath(ns)); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("testbed: %w", err)
	}
	defer func() {
		if serr := unix.Setns(orig, unix.CLONE_NEWNET); serr != nil {
			err = fmt.Errorf("testbed: leave namespace %s: %w", ns, serr)
			return
		}
		runtime.UnlockOSThread()
	}()
	fn()
	return nil
}
