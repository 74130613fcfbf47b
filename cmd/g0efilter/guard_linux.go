package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/g0lab/g0efilter/internal/cgroupv2"
)

// Inode numbers of the initial namespaces (PROC_NET_INIT_INO, on kernels
// that give init_net a fixed one, and PROC_PID_INIT_INO).
const (
	procNetInitIno = 0xEFFFFFF9
	procPidInitIno = 0xEFFFFFFC
)

// hostNamespace reports whether the calling thread is in the machine's own
// network namespace, where run must not install its rules unless told to.
// It knows for sure on kernels that give the initial namespace a fixed
// inode; elsewhere it compares with PID 1's namespace when this process
// shares PID 1's PID namespace (outside a container).
func hostNamespace() (bool, error) {
	var net unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &net); err != nil {
		return false, fmt.Errorf("read this process's network namespace: %w", err)
	}
	if net.Ino == procNetInitIno {
		return true, nil
	}
	var pid, init unix.Stat_t
	if unix.Stat("/proc/self/ns/pid", &pid) != nil || pid.Ino != procPidInitIno {
		return false, nil
	}
	if err := unix.Stat("/proc/1/ns/net", &init); err != nil {
		return false, fmt.Errorf("compare with PID 1's network namespace: %w", err)
	}
	return init.Dev == net.Dev && init.Ino == net.Ino, nil
}

// afXDPWarning says what AF_XDP sockets mean for the egress guard.
const afXDPWarning = "available in this kernel: a workload with CAP_NET_RAW can send frames past the egress guard " +
	"through an AF_XDP socket; drop NET_RAW from the workload (cap_drop), or deny socket family 44 with seccomp"

// hasAFXDP reports whether the kernel offers AF_XDP sockets, which send
// frames straight to a device's driver, past the netdev egress hook. The
// filter cannot stop them from inside the namespace; it can only say so.
// Without CAP_NET_RAW the filter is refused one (EPERM), which still
// tells that the family exists.
func hasAFXDP() bool {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
		return true
	}
	return !errors.Is(err, unix.EAFNOSUPPORT)
}

// cgroupPeers returns the other processes in the calling process's cgroup
// (v2), where its directory can be seen; none where it cannot.
func cgroupPeers() []int {
	path, mount, err := cgroupv2.Self()
	if err != nil {
		return nil
	}
	dir, err := mount.Dir(path)
	if err != nil {
		return nil
	}
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var others []int
	for f := range strings.FieldsSeq(string(procs)) {
		// A process in another PID namespace reads as 0: still another.
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			others = append(others, pid)
		}
	}
	return others
}

// randomMark returns a socket mark chosen at random, never zero.
func randomMark() uint32 {
	var b [4]byte
	for {
		_, _ = rand.Read(b[:])
		if m := binary.NativeEndian.Uint32(b[:]); m != 0 {
			return m
		}
	}
}

// devices returns the names of the namespace's network devices but
// loopback.
func devices() ([]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback == 0 {
			out = append(out, ifi.Name)
		}
	}
	return out, nil
}

// linkWatch reports the network devices that appear or are renamed in
// this namespace. Open it before listing the devices, so that none is
// missed between the list and the watch.
type linkWatch struct{ c *netlink.Conn }

func watchLinks() (*linkWatch, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{Groups: unix.RTNLGRP_LINK})
	if err != nil {
		return nil, fmt.Errorf("watch network devices: %w", err)
	}
	return &linkWatch{c: c}, nil
}

// run calls added with the name of each device in a new-link message until
// ctx ends or the socket fails (an overrun included: then the caller
// should list the devices again). It closes the socket when it returns.
func (w *linkWatch) run(ctx context.Context, added func(name string)) error {
	stop := context.AfterFunc(ctx, func() { _ = w.c.Close() })
	defer stop()
	defer w.c.Close()
	for {
		msgs, err := w.c.Receive()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, os.ErrClosed) {
				return nil
			}
			return err
		}
		for _, m := range msgs {
			if m.Header.Type != unix.RTM_NEWLINK || len(m.Data) < unix.SizeofIfInfomsg {
				continue
			}
			flags := binary.NativeEndian.Uint32(m.Data[8:12])
			ad, err := netlink.NewAttributeDecoder(m.Data[unix.SizeofIfInfomsg:])
			if err != nil {
				continue
			}
			for ad.Next() {
				if ad.Type() == unix.IFLA_IFNAME && flags&unix.IFF_LOOPBACK == 0 {
					added(ad.String())
				}
			}
		}
	}
}
