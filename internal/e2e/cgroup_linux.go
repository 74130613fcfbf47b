//go:build linux

package e2e

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/g0lab/g0efilter/internal/testbed"
)

// cgroup is a cgroup v2 directory made for one test.
type cgroup = testbed.Cgroup

// requireCgroup2 returns the mount point of the first read-write cgroup2
// file system. Without one it skips tb, or fails it under CI=true, where
// privileged tests must run (as [netnstest.Require] does for root and
// tools).
func requireCgroup2(tb testing.TB) string {
	tb.Helper()
	mount, err := testbed.Cgroup2Mount()
	if err == nil {
		return mount
	}
	msg := "privileged test: needs a writable cgroup2 mount (" + err.Error() + ")"
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
		top, err := testbed.NewCgroup(filepath.Join(requireCgroup2(tb), "g0e-e2e-"+e.suffix))
		if err != nil {
			tb.Fatalf("e2e: %v", err)
		}
		e.cgroupDir = top.Path
		// On the Env's test: it ends last, and this cleanup, registered
		// before those of the cgroups inside, runs after theirs and removes
		// whatever they left.
		e.t.Cleanup(func() {
			if err := top.Remove(); err != nil {
				e.t.Errorf("e2e: %v", err)
			}
		})
	}
	path := filepath.Join(e.cgroupDir, name)
	for i := 2; ; i++ {
		cg, err := testbed.NewCgroup(path)
		if err == nil {
			owner.Cleanup(func() {
				if err := cg.Remove(); err != nil {
					owner.Errorf("e2e: %v", err)
				}
			})
			return cg
		}
		if !errors.Is(err, fs.ErrExist) {
			tb.Fatalf("e2e: %v", err)
		}
		path = filepath.Join(e.cgroupDir, name+"-"+strconv.Itoa(i))
	}
}
