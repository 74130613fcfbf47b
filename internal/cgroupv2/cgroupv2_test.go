package cgroupv2_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/internal/cgroupv2"
)

// Lines of real /proc/self/mountinfo files.
const (
	proc     = "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
	sysfs    = "24 1 0:22 / /sys rw - sysfs sysfs rw\n"
	v1       = "35 31 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory\n"
	hybrid   = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
	unified  = "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
	ro       = "29 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw\n"
	escaped  = "50 23 0:40 / /mnt/cgroup\\040two rw,relatime - cgroup2 none rw\n"
	kubepods = "30 24 0:26 /kubepods/x /sys/fs/cgroup\\040two rw,nosuid shared:9 - cgroup2 cgroup2 rw\n"
)

func TestMounts(t *testing.T) {
	tests := []struct {
		name, mountinfo string
		want            []cgroupv2.Mount
	}{
		{"hybrid", proc + v1 + hybrid, []cgroupv2.Mount{{Point: "/sys/fs/cgroup/unified", Root: "/"}}},
		{"unified", proc + unified, []cgroupv2.Mount{{Point: "/sys/fs/cgroup", Root: "/"}}},
		{"read-only first", ro + escaped, []cgroupv2.Mount{
			{Point: "/sys/fs/cgroup", Root: "/", ReadOnly: true},
			{Point: "/mnt/cgroup two", Root: "/"},
		}},
		{"subtree", sysfs + kubepods, []cgroupv2.Mount{{Point: "/sys/fs/cgroup two", Root: "/kubepods/x"}}},
		{"no final newline", strings.TrimSuffix(unified, "\n"), []cgroupv2.Mount{{Point: "/sys/fs/cgroup", Root: "/"}}},
		{"v1 only", proc + v1, nil},
		{"none", sysfs, nil},
		{"empty", "", nil},
		{"no separator", "29 23 0:26 / /sys/fs/cgroup rw cgroup2 cgroup2 rw\n", nil},
		{"short", "29 23 0:26 / /sys/fs/cgroup - cgroup2 cgroup2 rw\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, cgroupv2.Mounts(tc.mountinfo))
		})
	}
}

func TestMountUnescape(t *testing.T) {
	line := `50 23 0:40 /a\134b /mnt/x\011y\040\0401\9999\04 rw - cgroup2 none rw` + "\n"
	got := cgroupv2.Mounts(line)
	require.Len(t, got, 1)
	assert.Equal(t, "/mnt/x\ty  1\\9999\\04", got[0].Point, "escapes undone, others kept")
	assert.Equal(t, `/a\b`, got[0].Root)
}

func TestPath(t *testing.T) {
	tests := []struct {
		name, procCgroup, want, err string
	}{
		{"hybrid", "12:pids:/a\n0::/docker/abc\n", "/docker/abc", ""},
		{"unified", "0::/user.slice/user-0.slice/session-1.scope\n", "/user.slice/user-0.slice/session-1.scope", ""},
		{"namespace root", "0::/", "/", ""},
		{"v1 only", "12:pids:/a\n", "", "no cgroup v2"},
		{"empty", "", "", "no cgroup v2"},
		{"relative", "0::docker/abc\n", "", "unexpected cgroup v2 path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cgroupv2.Path(tc.procCgroup)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestMountDir(t *testing.T) {
	tests := []struct {
		name      string
		mount     cgroupv2.Mount
		path      string
		want, err string
	}{
		{"whole hierarchy", cgroupv2.Mount{Point: "/sys/fs/cgroup", Root: "/"}, "/a/b", "/sys/fs/cgroup/a/b", ""},
		{"root cgroup", cgroupv2.Mount{Point: "/sys/fs/cgroup", Root: "/"}, "/", "/sys/fs/cgroup", ""},
		{"subtree", cgroupv2.Mount{Point: "/mnt/cg", Root: "/kubepods/x"}, "/kubepods/x/y", "/mnt/cg/y", ""},
		{"subtree root", cgroupv2.Mount{Point: "/mnt/cg", Root: "/kubepods/x"}, "/kubepods/x", "/mnt/cg", ""},
		{"outside", cgroupv2.Mount{Point: "/mnt/cg", Root: "/kubepods/x"}, "/kubepods/y", "", "outside"},
		{"above", cgroupv2.Mount{Point: "/mnt/cg", Root: "/kubepods/x"}, "/kubepods", "", "outside"},
		{"sibling prefix", cgroupv2.Mount{Point: "/mnt/cg", Root: "/kubepods/x"}, "/kubepods/xy", "", "outside"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.mount.Dir(tc.path)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func FuzzMounts(f *testing.F) {
	for _, s := range []string{proc + v1 + hybrid, ro + escaped, sysfs + kubepods, ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, mountinfo string) {
		for _, m := range cgroupv2.Mounts(mountinfo) {
			if m.Point == "" || m.Root == "" {
				t.Fatalf("empty field in %+v from %q", m, mountinfo)
			}
		}
	})
}

func FuzzPath(f *testing.F) {
	for _, s := range []string{"12:pids:/a\n0::/docker/abc\n", "0::/", "0::x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, procCgroup string) {
		p, err := cgroupv2.Path(procCgroup)
		if err == nil && !strings.HasPrefix(p, "/") {
			t.Fatalf("relative path %q from %q", p, procCgroup)
		}
	})
}

func Example() {
	mountinfo := "22 1 0:21 / /proc rw,nosuid - proc proc rw\n" +
		"29 23 0:26 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
	m := cgroupv2.Mounts(mountinfo)[0]
	path, err := cgroupv2.Path("0::/system.slice/g0efilter.service\n")
	if err != nil {
		panic(err)
	}
	dir, err := m.Dir(path)
	if err != nil {
		panic(err)
	}
	fmt.Println(dir, m.ReadOnly)
	// Output: /sys/fs/cgroup/system.slice/g0efilter.service true
}
