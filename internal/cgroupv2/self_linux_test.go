package cgroupv2_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/internal/cgroupv2"
)

// TestSelf checks that the directory Self leads to is the test process's
// cgroup: its cgroup.procs lists the process.
func TestSelf(t *testing.T) {
	path, m, err := cgroupv2.Self()
	if errors.Is(err, cgroupv2.ErrNoMount) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cgroup v2 needed under CI=true: %v", err)
		}
		t.Skip(err)
	}
	require.NoError(t, err)
	dir, err := m.Dir(path)
	require.NoError(t, err)
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	require.NoError(t, err)
	assert.True(t, slices.Contains(strings.Fields(string(procs)), strconv.Itoa(os.Getpid())),
		"pid %d not in %s/cgroup.procs", os.Getpid(), dir)
}
