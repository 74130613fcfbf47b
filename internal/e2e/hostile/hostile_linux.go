package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/g0lab/g0efilter/internal/cgroupv2"
	"github.com/g0lab/g0efilter/internal/rawframe"
)

// Payloads of reflect: the forged "knock" from outside, and the reply
// that conntrack would take for established.
var (
	knock     = []byte("g0e-knock")
	reflected = []byte("g0e-reflected")
)

// reflect forges a datagram from remote to local, the way how says, then
// sends reflected from local to remote: if conntrack took the forged
// datagram for remote's, the second one passes as its reply. A forged
// datagram refused at once (EPERM) is no error here.
func reflect(how string, remote, local netip.AddrPort) (string, error) {
	var err error
	switch how {
	case "raw":
		err = rawframe.SendIP(rawframe.UDP(zeroMAC, zeroMAC, remote, local, knock), local.Addr())
	case "transparent":
		err = rawframe.SendTransparent(remote, local, knock)
	case "loopback":
		err = rawframe.Send("lo", rawframe.UDP(zeroMAC, zeroMAC, remote, local, knock), false)
	}
	forged := "knock sent"
	if err != nil {
		if !errors.Is(err, unix.EPERM) {
			return "", fmt.Errorf("forge: %w", err)
		}
		forged = "knock refused (EPERM)"
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(local))
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := c.WriteToUDPAddrPort(reflected, remote); err != nil {
		return "", fmt.Errorf("%s; reply: %w", forged, err)
	}
	return forged + "; reply sent", nil
}

var zeroMAC = net.HardwareAddr{0, 0, 0, 0, 0, 0}

// caps reports the uid, gid and capability sets of the process.
func caps() (string, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "", err
	}
	fields := []string{fmt.Sprintf("uid=%d", os.Getuid()), fmt.Sprintf("gid=%d", os.Getgid())}
	for _, name := range []string{"CapEff", "CapBnd", "CapAmb"} {
		v, ok := statusField(string(status), name)
		if !ok {
			return "", fmt.Errorf("no %s in /proc/self/status", name)
		}
		fields = append(fields, name+"="+v)
	}
	return strings.Join(fields, " "), nil
}

// statusField returns the value of the field name in a /proc status file.
func statusField(status, name string) (string, bool) {
	for line := range strings.SplitSeq(status, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// ownCgroup reports the cgroup v2 path of the process.
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	return cgroupv2.Path(string(b))
}

// errnoName returns the name of the errno in err's chain ("EPERM"), or "".
func errnoName(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return ""
}
