package nftrules

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// procCgroupInitIno is the inode number of the initial cgroup namespace
// (PROC_CGROUP_INIT_INO).
const procCgroupInitIno = 0xEFFFFFFB

// SelfCgroup returns the id of the calling process's cgroup (version 2)
// and its level in the hierarchy, for [Config.OwnCgroup] and
// [Config.OwnCgroupLevel]. The level is zero when the process is in a
// cgroup namespace of its own (a container's), which hides how deep its
// cgroup is. It fails when no cgroup2 file system is mounted where the
// process can see it, or when the process is in the root cgroup, which
// every process that has not been placed elsewhere shares.
//
// Sockets keep the cgroup of the process that made them: call it after the
// process has been placed in its cgroup, before it opens any socket.
func SelfCgroup() (id uint64, level int, err error) {
	path, err := selfCgroupPath("/proc/self/cgroup")
	if err != nil {
		return 0, 0, err
	}
	mount, root, err := cgroup2Mount("/proc/self/mountinfo")
	if err != nil {
		return 0, 0, err
	}
	rel, err := filepath.Rel(root, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return 0, 0, fmt.Errorf("nftrules: cgroup %s is outside the cgroup2 mount's root %s", path, root)
	}
	var st unix.Stat_t
	dir := filepath.Join(mount, rel)
	if err := unix.Stat(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("nftrules: cgroup directory: %w", err)
	}
	if st.Ino == 1 {
		return 0, 0, errors.New("nftrules: the process is in the root cgroup, which it shares with every process not placed elsewhere")
	}
	var ns unix.Stat_t
	if err := unix.Stat("/proc/self/ns/cgroup", &ns); err == nil && ns.Ino == procCgroupInitIno {
		level = strings.Count(filepath.Clean(path), "/")
		if path == "/" {
			level = 0
		}
	}
	if level > MaxCgroupLevel {
		return 0, 0, fmt.Errorf("nftrules: cgroup %s is deeper than level %d", path, MaxCgroupLevel)
	}
	return st.Ino, level, nil
}

// selfCgroupPath returns the cgroup v2 path ("0::PATH") of a
// /proc/PID/cgroup file.
func selfCgroupPath(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("nftrules: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if p, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "0::"); ok {
			if !strings.HasPrefix(p, "/") {
				return "", fmt.Errorf("nftrules: %s: unexpected cgroup v2 path %q", file, p)
			}
			return p, nil
		}
	}
	return "", fmt.Errorf("nftrules: %s: the process is in no cgroup v2 hierarchy", file)
}

// cgroup2Mount returns the mount point of the first cgroup2 file system
// in a mountinfo file, and the cgroup path that it shows at its root.
func cgroup2Mount(file string) (mount, root string, err error) {
	f, err := os.Open(file)
	if err != nil {
		return "", "", fmt.Errorf("nftrules: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, types := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(types) < 1 || types[0] != "cgroup2" {
			continue
		}
		return unescapeMountinfo(fields[4]), unescapeMountinfo(fields[3]), nil
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("nftrules: %s: %w", file, err)
	}
	return "", "", errors.New("nftrules: no cgroup2 file system mounted in sight of this process")
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of a
// mountinfo path.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
