package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/g0lab/g0efilter/internal/cgroupv2"
)

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
