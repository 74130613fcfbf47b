//go:build linux

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/g0lab/g0efilter/internal/nsdial"
)

const (
	nsPrefix = "g0e-sbx-"
	netnsDir = "/run/netns" // where ip netns keeps its names
	etcNetns = "/etc/netns" // what ip netns exec bind-mounts over /etc
	vethName = "veth0"      // the pair's end in both namespaces

	linkTimeout = 5 * time.Second
	linkPoll    = 10 * time.Millisecond
)

// ipCmd runs "ip args...".
func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// listSandboxNamespaces returns the names of the network namespaces whose
// name starts with nsPrefix.
func listSandboxNamespaces() ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), nsPrefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// makeNamespaces creates the box and net namespaces and the veth pair
// between them, with their addresses, and brings every link up. The pair
// is made inside the box and its peer moved straight into net, so nothing
// appears in the machine's namespace, even for a moment. undo is called
// for every namespace made, failure or not, so that the caller deletes it.
func makeNamespaces(box, netNS string, undo func(name string)) error {
	for _, ns := range []string{box, netNS} {
		if err := ipCmd("netns", "add", ns); err != nil {
			return err
		}
		undo(ns)
	}
	steps := [][]string{
		{"-n", box, "link", "add", vethName, "type", "veth", "peer", "name", vethName, "netns", netNS},
		{"-n", box, "addr", "add", netip.PrefixFrom(boxAddr4, prefixLen4).String(), "dev", vethName},
		{"-n", box, "addr", "add", netip.PrefixFrom(boxAddr6, prefixLen6).String(), "dev", vethName, "nodad"},
	}
	for _, a := range []netip.Addr{siteAddr4, rawAddr4, dnsAddr4} {
		steps = append(steps, []string{"-n", netNS, "addr", "add", netip.PrefixFrom(a, prefixLen4).String(), "dev", vethName})
	}
	for _, a := range []netip.Addr{siteAddr6, rawAddr6, dnsAddr6} {
		steps = append(steps, []string{"-n", netNS, "addr", "add", netip.PrefixFrom(a, prefixLen6).String(), "dev", vethName, "nodad"})
	}
	for _, ns := range []string{box, netNS} {
		steps = append(steps,
			[]string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"-n", ns, "link", "set", vethName, "up"})
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			return err
		}
	}
	return waitLinks(box, netNS)
}

// waitLinks waits until both ends of the pair are up and can send: the
// kernel activates a new device's queue in its link-watch work, at most
// once a second, and drops what it is given until then. Listing the link
// runs that work at once.
func waitLinks(namespaces ...string) error {
	deadline := time.Now().Add(linkTimeout)
	for {
		ready := true
		var last string
		for _, ns := range namespaces {
			out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", vethName).CombinedOutput()
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
			return fmt.Errorf("veth pair not up after %v: %s", linkTimeout, last)
		}
		time.Sleep(linkPoll)
	}
}

// deleteNamespace deletes the namespace name; the veth end in it goes
// with it.
func deleteNamespace(name string) error {
	return ipCmd("netns", "del", name)
}

// inNamespace runs fn on a goroutine locked to its OS thread, with the
// thread switched into the namespace ns; sockets fn creates belong to ns,
// whichever goroutine uses them later. The thread is switched back
// afterwards; should that fail, it stays locked and ends with the
// goroutine, so it never serves others from the wrong namespace.
func inNamespace(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home := true // the thread is in the namespace it started in
		defer func() {
			if home {
				runtime.UnlockOSThread()
			}
		}()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open own namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := nsdial.Enter(filepath.Join(netnsDir, ns)); err != nil {
			errc <- err
			return
		}
		home = false
		err = fn()
		if serr := unix.Setns(orig, unix.CLONE_NEWNET); serr != nil {
			err = errors.Join(err, fmt.Errorf("leave namespace %s: %w", ns, serr))
		} else {
			home = true
		}
		errc <- err
	}()
	return <-errc
}

// netnsEtc is the /etc/netns/<box> directory: ip netns exec bind-mounts
// each file in it over the one of the same name in /etc, for commands run
// in the box.
type netnsEtc struct {
	dir        string
	madeParent bool // /etc/netns did not exist before
}

// writeNetnsEtc creates /etc/netns/<box> with a resolv.conf that points at
// the sandbox's DNS server and, when the machine's nsswitch.conf asks
// systemd-resolved for host names (which would answer from the machine's
// namespace, not the box's), an nsswitch.conf whose hosts line is "files
// dns". Everything is removed by remove.
func writeNetnsEtc(box string) (*netnsEtc, error) {
	e := &netnsEtc{dir: filepath.Join(etcNetns, box)}
	if _, err := os.Stat(etcNetns); errors.Is(err, os.ErrNotExist) {
		e.madeParent = true
	}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return e, err
	}
	resolv := fmt.Sprintf("# written by the g0efilter sandbox for %s; removed when it stops\nnameserver %s\nnameserver %s\n",
		box, dnsAddr4, dnsAddr6)
	if err := os.WriteFile(filepath.Join(e.dir, "resolv.conf"), []byte(resolv), 0o644); err != nil {
		return e, err
	}
	if ns, ok := nsswitchFilesDNS("/etc/nsswitch.conf"); ok {
		if err := os.WriteFile(filepath.Join(e.dir, "nsswitch.conf"), ns, 0o644); err != nil {
			return e, err
		}
	}
	return e, nil
}

// nsswitchFilesDNS returns the nsswitch.conf at path with its hosts line
// replaced by "hosts: files dns", and true, if that line uses the resolve
// module (systemd-resolved); otherwise false.
func nsswitchFilesDNS(path string) ([]byte, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	var out bytes.Buffer
	changed := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) > 0 && fields[0] == "hosts:" && strings.Contains(line, "resolve") {
			line = "hosts: files dns # the g0efilter sandbox: the box's resolv.conf, not systemd-resolved"
			changed = true
		}
		out.WriteString(line + "\n")
	}
	return out.Bytes(), changed && sc.Err() == nil
}

// remove deletes the directory, and /etc/netns if it made it and it is
// empty (another sandbox may be using it).
func (e *netnsEtc) remove() error {
	err := os.RemoveAll(e.dir)
	if e.madeParent {
		_ = os.Remove(etcNetns) // fails, harmlessly, if not empty
	}
	return err
}
