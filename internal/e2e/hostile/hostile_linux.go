package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// sendRaw sends f's frame through an AF_PACKET socket bound to its
// interface.
func sendRaw(f rawFrame) (string, error) {
	ifi, err := net.InterfaceByName(f.ifname)
	if err != nil {
		return "", err
	}
	frame, etherType, err := udpFrame(ifi.HardwareAddr, f.dstMAC, f.src, f.dst, rawPayload)
	if err != nil {
		return "", err
	}
	proto := htons(etherType)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return "", fmt.Errorf("socket AF_PACKET: %w", err)
	}
	defer unix.Close(fd)
	if f.bypass {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			return "", fmt.Errorf("setsockopt PACKET_QDISC_BYPASS: %w", err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		return "", fmt.Errorf("bind %s: %w", f.ifname, err)
	}
	to := &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index, Halen: uint8(len(f.dstMAC))}
	copy(to.Addr[:], f.dstMAC)
	n, err := unix.SendmsgN(fd, frame, nil, to, 0)
	if err != nil {
		return "", fmt.Errorf("sendto: %w", err)
	}
	return fmt.Sprintf("sent %d bytes", n), nil
}

// htons returns v in network byte order, as the protocol fields of
// AF_PACKET take it.
func htons(v uint16) uint16 { return v<<8 | v>>8 }

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
	for line := range strings.SplitSeq(string(b), "\n") {
		if path, ok := strings.CutPrefix(line, "0::"); ok {
			return path, nil
		}
	}
	return "", errors.New("no cgroup v2 line in /proc/self/cgroup")
}

// errnoName returns the name of the errno in err's chain ("EPERM"), or "".
func errnoName(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return ""
}
