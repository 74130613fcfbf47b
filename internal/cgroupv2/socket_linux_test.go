package cgroupv2_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/internal/cgroupv2"
)

// The id that sock_diag reports for a new socket is the inode number of
// the process's cgroup directory: the id "socket cgroupv2" compares.
func TestSocketID(t *testing.T) {
	path, mount, err := cgroupv2.Self()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cgroup v2 needed under CI=true: %v", err)
		}
		t.Skipf("cgroup v2: %v", err)
	}
	dir, err := mount.Dir(path)
	require.NoError(t, err)
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(filepath.Clean(dir), &st))

	id, err := cgroupv2.SocketID()
	require.NoError(t, err)
	assert.Equal(t, st.Ino, id, "cgroup %s", path)
}
