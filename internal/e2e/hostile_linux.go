//go:build linux

package e2e

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/g0lab/g0efilter/internal/netnstest"
	"github.com/g0lab/g0efilter/internal/testbed"
)

// User is whom [Env.Hostile] runs the workload as. Either way the process
// has Docker's default capabilities, CAP_NET_RAW among them, and never
// CAP_NET_ADMIN.
type User int

const (
	// AsRoot is uid 0 with the bounding set limited to Docker's default
	// capabilities, which are then its effective ones: a container's root.
	AsRoot User = iota
	// AsNobody is uid and gid 65534 without supplementary groups, with
	// Docker's default capabilities inheritable, ambient and bounding, so
	// effective too: the strongest workload that is not root.
	AsNobody
)

func (u User) String() string {
	switch u {
	case AsRoot:
		return "root"
	case AsNobody:
		return "nobody"
	}
	return "User(?)"
}

// dockerCaps is Docker's default capability set, in setpriv's names.
var dockerCaps = []string{
	"chown", "dac_override", "fsetid", "fowner", "mknod", "net_raw", "setgid",
	"setuid", "setfcap", "setpcap", "net_bind_service", "sys_chroot", "kill",
	"audit_write",
}

const (
	hostileTimeout = 10 * time.Second
	nobodyID       = "65534"
)

// Hostile runs the hostile workload program ([HostileBinary]) with args
// in the box, in the Env's workload cgroup (from birth; a cgroup of its
// own, not the filter's), as the user as, and returns its line of output
// ("ok ..." or "err ...") and whether it succeeded. The test fails if the
// program does not end within 10s, or ends with a usage error or anything
// but one line that agrees with its exit status (a failure to drop
// privileges, say).
func (e *Env) Hostile(tb testing.TB, as User, args ...string) (ok bool, line string) {
	tb.Helper()
	netnstest.Require(tb, "setpriv")
	bin := HostileBinary(tb)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		tb.Fatalf("e2e: %v", err)
	}
	caps := "-all,+" + strings.Join(dockerCaps, ",+")
	priv := []string{"--bounding-set=" + caps}
	switch as {
	case AsRoot:
		priv = append(priv, "--inh-caps=-all")
	case AsNobody:
		priv = append(priv, "--reuid="+nobodyID, "--regid="+nobodyID, "--clear-groups",
			"--inh-caps="+caps, "--ambient-caps="+caps)
	default:
		tb.Fatalf("e2e: hostile: unknown user %v", as)
	}
	cg := e.workloadCgroup(tb)

	ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
	defer cancel()
	argv := append([]string{"--net=" + testbed.NetnsPath(e.Box), "--", setpriv}, priv...)
	argv = append(append(argv, "--", bin), args...)
	cmd := exec.CommandContext(ctx, "nsenter", argv...)
	cmd.Env = []string{}
	cmd.Dir = "/"
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cg.Start(cmd); err != nil {
		tb.Fatalf("e2e: start hostile: %v", err)
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		tb.Fatalf("e2e: hostile %q as %v: no exit within %v; stdout %q, stderr %q",
			args, as, hostileTimeout, stdout.String(), stderr.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		tb.Fatalf("e2e: hostile %q as %v: %v", args, as, err)
	}
	code := cmd.ProcessState.ExitCode()
	line, rest, _ := strings.Cut(stdout.String(), "\n")
	switch {
	case rest != "": // more than one line: a failure below
	case code == 0 && strings.HasPrefix(line, "ok "):
		return true, line
	case code == 1 && strings.HasPrefix(line, "err "):
		return false, line
	}
	tb.Fatalf("e2e: hostile %q as %v: exit status %d, stdout %q, stderr %q",
		args, as, code, stdout.String(), stderr.String())
	return false, ""
}

// BoxMAC returns the MAC address of the box's end of the veth pair.
func (e *Env) BoxMAC(tb testing.TB) string {
	tb.Helper()
	return e.mac(tb, e.Box)
}

// UpstreamMAC returns the MAC address of the upstream namespace's end of
// the veth pair: where a frame sent from the box must go to be received.
func (e *Env) UpstreamMAC(tb testing.TB) string {
	tb.Helper()
	return e.mac(tb, e.Upstream)
}

func (e *Env) mac(tb testing.TB, ns string) string {
	tb.Helper()
	var ifi *net.Interface
	var err error
	e.in(ns, func() { ifi, err = net.InterfaceByName(VethName) })
	if err != nil {
		tb.Fatalf("e2e: %s in %s: %v", VethName, ns, err)
	}
	return ifi.HardwareAddr.String()
}
