package nftrules

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/g0lab/g0efilter/internal/cgroupv2"
)

// procCgroupInitIno is the inode number of the initial cgroup namespace
// (PROC_CGROUP_INIT_INO).
const procCgroupInitIno = 0xEFFFFFFB

// rootCgroupID is the id of the root cgroup.
const rootCgroupID = 1

var errRootCgroup = errors.New("nftrules: the process is in the root cgroup, which it shares with every process not placed elsewhere")

// SelfCgroup returns the id of the calling process's cgroup (version 2)
// and its level in the hierarchy, for [Config.OwnCgroup] and
// [Config.OwnCgroupLevel]. The level is zero when the process is in a
// cgroup namespace of its own (a container's), which hides how deep its
// cgroup is, and when no cgroup2 file system is mounted where the process
// can see it (a container on a host with cgroup v1 hierarchies too): the
// id then comes from the kernel's report on a socket (sock_diag). It fails
// when the process is in the root cgroup, which every process that has not
// been placed elsewhere shares.
//
// Sockets keep the cgroup of the process that made them: call it after the
// process has been placed in its cgroup, before it opens any socket.
func SelfCgroup() (id uint64, level int, err error) {
	path, mount, err := cgroupv2.Self()
	if errors.Is(err, cgroupv2.ErrNoMount) {
		id, serr := cgroupv2.SocketID()
		switch {
		case serr != nil:
			return 0, 0, fmt.Errorf("nftrules: %w; %w", err, serr)
		case id == rootCgroupID:
			return 0, 0, errRootCgroup
		}
		return id, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("nftrules: %w", err)
	}
	dir, err := mount.Dir(path)
	if err != nil {
		return 0, 0, fmt.Errorf("nftrules: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("nftrules: cgroup directory: %w", err)
	}
	if st.Ino == rootCgroupID {
		return 0, 0, errRootCgroup
	}
	var ns unix.Stat_t
	if err := unix.Stat("/proc/self/ns/cgroup", &ns); err == nil && ns.Ino == procCgroupInitIno {
		level = strings.Count(filepath.Clean(path), "/")
		if path == "/" {
			level = 0
		}
	}
	if level > maxCgroupLevel {
		return 0, 0, fmt.Errorf("nftrules: cgroup %s is deeper than level %d", path, maxCgroupLevel)
	}
	return st.Ino, level, nil
}
