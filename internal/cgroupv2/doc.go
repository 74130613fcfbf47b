// Package cgroupv2 finds a process's cgroup (version 2) and the cgroup2
// file system that shows its directory, from the text of /proc/PID/cgroup
// and /proc/PID/mountinfo.
//
//	path, mount, err := cgroupv2.Self() // "/system.slice/x.service", the first cgroup2 mount
//	if err != nil {
//		return err // errors.Is(err, cgroupv2.ErrNoMount): no cgroup2 in sight
//	}
//	dir, err := mount.Dir(path) // "/sys/fs/cgroup/system.slice/x.service"
//
// [Mounts] and [Path] parse the files' text and build on any GOOS; [Self]
// reads the calling process's files, which only Linux has.
package cgroupv2
