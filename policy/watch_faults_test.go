package policy

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A file caught half-written when Run starts is read again once it is
// finished, instead of failing Run (and the filter's start).
func TestWatcherStartWaitsForHalfWrittenFile(t *testing.T) {
	for _, tt := range []struct {
		name string
		half func(t *testing.T, path string)
	}{
		{"cut mid-line", func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte("allowlist:\n  domains:\n    - \"git"), 0o644))
		}},
		{"empty", func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, nil, 0o644))
		}},
		{"not there yet", func(*testing.T, string) {}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "policy.yaml")
			tt.half(t, path)
			failed := 0
			w := &Watcher{Loader: Loader{Path: path}, Interval: time.Hour, Debounce: 10 * time.Millisecond}
			// The writer finishes while Run waits after its first read.
			w.startFailed = func() {
				if failed++; failed == 1 {
					writePolicy(t, path, "github.com", "example.org")
				}
			}
			h := runWatcher(t, w)
			assert.Equal(t, []string{"github.com", "example.org"}, h.nextReload(t).Policy().Domains)
			assert.Equal(t, 1, failed)
		})
	}
}

// A file that stays broken still fails Run, one Debounce after its read.
func TestWatcherStartFailsOnSteadyBrokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte("allowlist:\n  domains:\n    - \"git"), 0o644))
	failed := 0
	w := &Watcher{Loader: Loader{Path: path}, Debounce: 10 * time.Millisecond, startFailed: func() { failed++ }}
	start := time.Now()
	err := w.Run(context.Background())
	require.Error(t, err)
	assert.ErrorContains(t, err, path)
	assert.Equal(t, 1, failed, "read twice, then given up")
	assert.Less(t, time.Since(start), 5*time.Second)
}

// Each way a policy file can go bad in place keeps the policy in force,
// is reported once however often the file is checked, and the mended file
// is picked up again.
func TestWatcherFileFaults(t *testing.T) {
	for _, tt := range []struct {
		name   string
		break_ func(t *testing.T, path string)
		mend   func(t *testing.T, path string)
		wantIs error
	}{
		{
			name:   "deleted",
			break_: func(t *testing.T, path string) { require.NoError(t, os.Remove(path)) },
			wantIs: fs.ErrNotExist,
		},
		{
			name: "truncated to nothing",
			break_: func(t *testing.T, path string) {
				require.NoError(t, os.Truncate(path, 0))
			},
			wantIs: ErrEmpty,
		},
		{
			name: "truncated mid-line",
			break_: func(t *testing.T, path string) {
				require.NoError(t, os.Truncate(path, int64(len("allowlist:\n  domains:\n    - \"git"))))
			},
		},
		{
			name: "replaced by a directory",
			break_: func(t *testing.T, path string) {
				require.NoError(t, os.Remove(path))
				require.NoError(t, os.Mkdir(path, 0o755))
			},
			mend: func(t *testing.T, path string) {
				require.NoError(t, os.Remove(path))
				writePolicy(t, path, "github.com", "example.org")
			},
			wantIs: syscall.EISDIR,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writePolicy(t, filepath.Join(t.TempDir(), "policy.yaml"), "github.com")
			var live Holder
			// Polling every 5ms as well as events: a check that reported
			// each time would report dozens of times below.
			h := runWatcher(t, &Watcher{Loader: Loader{Path: path}, Interval: 5 * time.Millisecond, Debounce: 5 * time.Millisecond})
			live.Store(h.nextReload(t))

			tt.break_(t, path)
			err := h.nextError(t)
			if tt.wantIs != nil {
				assert.ErrorIs(t, err, tt.wantIs)
			}
			assert.ErrorContains(t, err, path)
			h.assertQuiet(t, 300*time.Millisecond) // reported once
			assert.True(t, matched(live.MatchHost("github.com")), "the policy in force must stay")

			if tt.mend != nil {
				tt.mend(t, path)
			} else {
				writePolicy(t, path, "github.com", "example.org")
			}
			assert.Equal(t, []string{"github.com", "example.org"}, h.nextReload(t).Policy().Domains)
		})
	}
}

// envUnreadable marks the run of TestWatcherUnreadableFile as nobody.
const envUnreadable = "G0E_POLICY_TEST_AS_NOBODY"

// A file made unreadable is reported once and the policy in force stays.
// Root reads any file, so as root the test runs itself again as nobody.
func TestWatcherUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		runAsNobody(t, "TestWatcherUnreadableFile")
		return
	}
	path := writePolicy(t, filepath.Join(t.TempDir(), "policy.yaml"), "github.com")
	var live Holder
	h := runWatcher(t, &Watcher{Loader: Loader{Path: path}, Interval: 5 * time.Millisecond, Debounce: 5 * time.Millisecond})
	live.Store(h.nextReload(t))

	require.NoError(t, os.Chmod(path, 0))
	err := h.nextError(t)
	assert.ErrorIs(t, err, fs.ErrPermission)
	h.assertQuiet(t, 300*time.Millisecond)
	assert.True(t, matched(live.MatchHost("github.com")))

	require.NoError(t, os.Chmod(path, 0o644))
	assert.Equal(t, []string{"github.com"}, h.nextReload(t).Policy().Domains)
}

// runAsNobody runs the test named test again in a copy of this test binary
// as nobody (setpriv), and fails if it fails. Without setpriv the test is
// skipped, except under CI=true.
func runAsNobody(t *testing.T, test string) {
	t.Helper()
	if os.Getenv(envUnreadable) != "" {
		t.Fatal("still root after setpriv")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs setpriv (util-linux) to run as nobody, and must run under CI=true")
		}
		t.Skip("needs setpriv (util-linux) to run as nobody")
	}
	// The test binary's own directory may be closed to nobody: run a copy.
	dir, err := os.MkdirTemp("", "g0e-policy-nobody-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	self, err := os.ReadFile("/proc/self/exe")
	require.NoError(t, err)
	bin := filepath.Join(dir, "policy.test")
	require.NoError(t, os.WriteFile(bin, self, 0o755))
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--",
		bin, "-test.run", "^"+test+"$", "-test.v")
	tmp := filepath.Join(dir, "tmp")
	require.NoError(t, os.Mkdir(tmp, 0o700))
	require.NoError(t, os.Chown(tmp, 65534, 65534))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), envUnreadable+"=1", "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "as nobody:\n%s", out)
	require.Contains(t, string(out), "--- PASS: "+test, "as nobody:\n%s", out)
	assert.NotContains(t, strings.ToLower(string(out)), "--- skip")
}
