//go:build linux

package e2e

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCgroup2Mount(t *testing.T) {
	const (
		v1      = "35 31 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory\n"
		hybrid  = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
		unified = "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
		ro      = "29 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw\n"
		escaped = "50 23 0:40 / /mnt/cgroup\\040two rw,relatime - cgroup2 none rw\n"
		proc    = "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
	)
	tests := []struct {
		name, mountinfo, want string
	}{
		{"hybrid", proc + v1 + hybrid, "/sys/fs/cgroup/unified"},
		{"unified", proc + unified, "/sys/fs/cgroup"},
		{"read-only skipped", ro + escaped, "/mnt/cgroup two"},
		{"v1 only", proc + v1, ""},
		{"read-only only", ro, ""},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cgroup2Mount(strings.NewReader(tc.mountinfo))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestRemoveCgroup checks the cleanup's last resort: processes left in a
// cgroup are killed before it is removed, and the Env's directory goes with
// its test.
func TestRemoveCgroup(t *testing.T) {
	var dir string
	t.Run("env", func(t *testing.T) {
		e := New(t)
		cg := e.cgroup(t, "leftover")
		dir = e.cgroupDir
		cmd := exec.Command("sleep", "60")
		require.NoError(t, cg.start(cmd))
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		procs, err := os.ReadFile(cg.path + "/cgroup.procs")
		require.NoError(t, err)
		assert.Equal(t, strconv.Itoa(cmd.Process.Pid)+"\n", string(procs))

		require.NoError(t, removeCgroup(cg.path))
		assert.NoDirExists(t, cg.path)
		require.Error(t, <-done, "sleep must have been killed")
		assert.NoError(t, removeCgroup(cg.path), "removing it again")
	})
	if dir == "" {
		t.Skip("the environment was not created")
	}
	assert.NoDirExists(t, dir)
}
