//go:build linux

package e2e

import (
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
		require.NoError(t, cg.Start(cmd))
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		procs, err := os.ReadFile(cg.Path + "/cgroup.procs")
		require.NoError(t, err)
		assert.Equal(t, strconv.Itoa(cmd.Process.Pid)+"\n", string(procs))

		require.NoError(t, cg.Remove())
		assert.NoDirExists(t, cg.Path)
		require.Error(t, <-done, "sleep must have been killed")
		assert.NoError(t, cg.Remove(), "removing it again")
	})
	if dir == "" {
		t.Skip("the environment was not created")
	}
	assert.NoDirExists(t, dir)
}
