package cgroupv2

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNoMount is the error of [Self] when no cgroup2 file system is mounted
// where the process can see it.
var ErrNoMount = errors.New("cgroupv2: no cgroup2 file system mounted in sight of this process")

// A Mount is a cgroup2 file system as a mountinfo file lists it.
type Mount struct {
	Point    string // where it is mounted: "/sys/fs/cgroup"
	Root     string // the cgroup shown at Point: "/" unless the mount shows a subtree
	ReadOnly bool   // mounted read-only ("ro" among the mount options)
}

// Dir returns the directory under m of the cgroup at path (as [Path] gives
// it). It fails when the cgroup is outside m.Root, which m does not show.
func (m Mount) Dir(path string) (string, error) {
	rel, err := filepath.Rel(m.Root, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("cgroupv2: cgroup %s is outside the cgroup2 mount's root %s", path, m.Root)
	}
	return filepath.Join(m.Point, rel), nil
}

// Mounts returns the cgroup2 file systems that mountinfo, the text of a
// /proc/PID/mountinfo file, lists, in its order. Lines it cannot parse are
// passed over.
func Mounts(mountinfo string) []Mount {
	var ms []Mount
	for line := range strings.Lines(mountinfo) {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		pre, post, ok := strings.Cut(strings.TrimRight(line, "\n"), " - ")
		fields, types := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 6 || len(types) < 1 || types[0] != "cgroup2" {
			continue
		}
		ms = append(ms, Mount{
			Point:    unescape(fields[4]),
			Root:     unescape(fields[3]),
			ReadOnly: slices.Contains(strings.Split(fields[5], ","), "ro"),
		})
	}
	return ms
}

// unescape undoes the octal escapes (\040 for a space) of a path in
// mountinfo.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Path returns the cgroup v2 path in procCgroup, the text of a
// /proc/PID/cgroup file: PATH of its "0::PATH" line, relative to the root
// of the reader's cgroup namespace.
func Path(procCgroup string) (string, error) {
	for line := range strings.Lines(procCgroup) {
		if p, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "0::"); ok {
			if !strings.HasPrefix(p, "/") {
				return "", fmt.Errorf("cgroupv2: unexpected cgroup v2 path %q", p)
			}
			return p, nil
		}
	}
	return "", errors.New("cgroupv2: the process is in no cgroup v2 hierarchy")
}

// Self returns the calling process's cgroup v2 path (from /proc/self/cgroup)
// and the first cgroup2 file system in /proc/self/mountinfo, read-only or
// not; [Mount.Dir] gives the cgroup's directory. It fails with
// [ErrNoMount] when there is no cgroup2 mount, before it looks at the path.
func Self() (path string, m Mount, err error) {
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", Mount{}, fmt.Errorf("cgroupv2: %w", err)
	}
	ms := Mounts(string(mountinfo))
	if len(ms) == 0 {
		return "", Mount{}, ErrNoMount
	}
	cgroup, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", Mount{}, fmt.Errorf("cgroupv2: %w", err)
	}
	path, err = Path(string(cgroup))
	if err != nil {
		return "", Mount{}, err
	}
	return path, ms[0], nil
}
