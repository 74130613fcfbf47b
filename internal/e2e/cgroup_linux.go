//go:build linux

package e2e

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/g0lab/g0efilter/internal/cgroupv2"
)

// cgroupRemoveTimeout bounds the wait for a cgroup's processes to die.
const cgroupRemoveTimeout = 10 * time.Second

// cgroup is a cgroup v2 directory made for one test.
type cgroup struct {
	path string // absolute, under the cgroup2 mount
	id   uint64 // the inode number of path: what "socket cgroupv2" compares
}

// requireCgroup2 returns the mount point of the first read-write cgroup2
// file system. Without one it skips tb, or fails it under CI=true, where
// privileged tests must run (as [netnstest.Require] does for root and
// tools).
func requireCgroup2(tb testing.TB) string {
	tb.Helper()
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		tb.Fatalf("e2e: %v", err)
	}
	for _, m := range cgroupv2.Mounts(string(mountinfo)) {
		if !m.ReadOnly {
			return m.Point
		}
	}
	const msg = "privileged test: needs a writable cgroup2 mount"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg + ", and must run under CI=true")
	}
	tb.Skip(msg)
	return ""
}

// cgroup returns a new cgroup name in the Env's cgroup directory
// (<cgroup2 mount>/g0e-e2e-<suffix>, made on the first call), removed when
// tb ends. A name already in use gets a numbered suffix: "filter",
// "filter-2", ...
func (e *Env) cgroup(tb testing.TB, name string) cgroup {
	tb.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.newCgroup(tb, tb, name)
}

// workloadCgroup returns the cgroup of [Env.Hostile], "workload", made on
// the first call and removed when the Env's test ends.
func (e *Env) workloadCgroup(tb testing.TB) cgroup {
	tb.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.workload == nil {
		cg := e.newCgroup(tb, e.t, "workload")
		e.workload = &cg
	}
	return *e.workload
}

// newCgroup makes a cgroup as [Env.cgroup] describes, failing tb, and
// removes it when owner ends. A cgroup is removed once the processes in it
// are dead: they are killed (cgroup.kill) first, should any be left. The
// caller holds e.mu.
func (e *Env) newCgroup(tb, owner testing.TB, name string) cgroup {
	tb.Helper()
	if e.cgroupDir == "" {
		mount := requireCgroup2(tb)
		dir := filepath.Join(mount, "g0e-e2e-"+e.suffix)
		if err := os.Mkdir(dir, 0o755); err != nil {
			tb.Fatalf("e2e: create cgroup: %v", err)
		}
		e.cgroupDir = dir
		// On the Env's test: it ends last, and this cleanup, registered
		// before those of the cgroups inside, runs after theirs and removes
		// whatever they left.
		e.t.Cleanup(func() {
			if err := removeCgroup(dir); err != nil {
				e.t.Errorf("e2e: %v", err)
			}
		})
	}
	path := filepath.Join(e.cgroupDir, name)
	for i := 2; ; i++ {
		err := os.Mkdir(path, 0o755)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			tb.Fatalf("e2e: create cgroup: %v", err)
		}
		path = filepath.Join(e.cgroupDir, name+"-"+strconv.Itoa(i))
	}
	owner.Cleanup(func() {
		if err := removeCgroup(path); err != nil {
			owner.Errorf("e2e: %v", err)
		}
	})
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		tb.Fatalf("e2e: cgroup: %v", err)
	}
	return cgroup{path: path, id: st.Ino}
}

// start starts cmd in cg from birth (clone3 with CLONE_INTO_CGROUP): the
// process never runs, and so never makes a socket, anywhere else.
func (cg cgroup) start(cmd *exec.Cmd) error {
	fd, err := unix.Open(cg.path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open cgroup: %w", err)
	}
	defer unix.Close(fd)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = fd
	return cmd.Start()
}

// removeCgroup removes the cgroup at path and those below it (see
// cgroupv2.Remove).
func removeCgroup(path string) error { return cgroupv2.Remove(path, cgroupRemoveTimeout) }
