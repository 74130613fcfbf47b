package policy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// watchTimeout bounds every wait for the watcher; it is generous so that a
// slow machine does not fail the tests.
const watchTimeout = 10 * time.Second

// watchHarness runs a Watcher and collects what it reports.
type watchHarness struct {
	reloads chan *Snapshot
	errs    chan error
	cancel  context.CancelFunc
	done    chan struct{}
	runErr  error // Run's result, once done is closed
}

// startWatcher runs w with hooks that feed the harness, waits for its first
// snapshot and stops it when the test ends. Once the first snapshot has
// arrived, file system events are being watched.
func startWatcher(t *testing.T, w *Watcher) *watchHarness {
	t.Helper()
	h := runWatcher(t, w)
	h.nextReload(t)
	return h
}

// runWatcher runs w without waiting for its first snapshot. The snapshots
// that w.OnReload, if set, accepts are delivered to the harness.
func runWatcher(t *testing.T, w *Watcher) *watchHarness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := &watchHarness{
		reloads: make(chan *Snapshot, 16),
		errs:    make(chan error, 16),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	apply := w.OnReload // the test's own, if any: it may refuse
	w.OnReload = func(s *Snapshot) error {
		if apply != nil {
			if err := apply(s); err != nil {
				return err
			}
		}
		select {
		case h.reloads <- s:
		case <-ctx.Done():
		}
		return nil
	}
	w.OnError = func(err error) {
		select {
		case h.errs <- err:
		case <-ctx.Done():
		}
	}
	go func() {
		defer close(h.done)
		h.runErr = w.Run(ctx)
	}()
	t.Cleanup(func() { h.stop(t) })
	return h
}

// stop cancels Run and returns its result once it has returned.
func (h *watchHarness) stop(t *testing.T) error {
	t.Helper()
	h.cancel()
	select {
	case <-h.done:
		return h.runErr
	case <-time.After(watchTimeout):
		t.Fatal("Run did not return after its context was cancelled")
		return nil
	}
}

// nextReload waits for the next snapshot. Errors reported meanwhile are
// logged and skipped: a change caught half-written is reported, and the
// complete one delivered next.
func (h *watchHarness) nextReload(t *testing.T) *Snapshot {
	t.Helper()
	timeout := time.After(watchTimeout)
	for {
		select {
		case s := <-h.reloads:
			return s
		case err := <-h.errs:
			t.Logf("error while waiting for a reload: %v", err)
		case <-h.done:
			t.Fatalf("Run returned early: %v", h.runErr)
		case <-timeout:
			t.Fatal("no reload")
		}
	}
}

// nextError waits for the next error; a snapshot meanwhile fails the test.
func (h *watchHarness) nextError(t *testing.T) error {
	t.Helper()
	select {
	case err := <-h.errs:
		return err
	case s := <-h.reloads:
		t.Fatalf("reloaded %v while waiting for an error", s.Policy())
	case <-h.done:
		t.Fatalf("Run returned early: %v", h.runErr)
	case <-time.After(watchTimeout):
		t.Fatal("no error")
	}
	return nil
}

// assertQuiet asserts that nothing is reported for a while: a bounded wait,
// the only way to show that something does not happen.
func (h *watchHarness) assertQuiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case s := <-h.reloads:
		t.Errorf("unexpected reload: %v", s.Policy())
	case err := <-h.errs:
		t.Errorf("unexpected error: %v", err)
	case <-time.After(d):
	}
}

// policyYAML returns a policy file allowing domains.
func policyYAML(domains ...string) []byte {
	var b bytes.Buffer
	b.WriteString("allowlist:\n  domains:\n")
	for _, d := range domains {
		fmt.Fprintf(&b, "    - %q\n", d)
	}
	return b.Bytes()
}

// writePolicy writes a policy file allowing domains and returns its path.
func writePolicy(t *testing.T, path string, domains ...string) string {
	t.Helper()
	require.NoError(t, os.WriteFile(path, policyYAML(domains...), 0o644))
	return path
}

// renameOver replaces the file at path the way editors do: it writes a new
// file beside it and renames that over it.
func renameOver(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, data, 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

func TestWatcherInitialLoad(t *testing.T) {
	path := writePolicy(t, filepath.Join(t.TempDir(), "policy.yaml"), "github.com")
	h := runWatcher(t, &Watcher{Loader: Loader{Path: path}})
	assert.Equal(t, []string{"github.com"}, h.nextReload(t).Policy().Domains)
	assert.NoError(t, h.stop(t))
}

func TestWatcherRunFailsWhenInitialLoadFails(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.yaml")
	require.NoError(t, os.WriteFile(broken, []byte("allowlist:\n  ips:\n    - \"not an address\"\n"), 0o644))
	tests := []struct {
		name   string
		path   string
		wantIs error
		wantIn string
	}{
		{name: "invalid entry", path: broken, wantIs: ErrIP, wantIn: broken + ":3:"},
		{name: "missing file", path: filepath.Join(dir, "missing.yaml"), wantIs: fs.ErrNotExist, wantIn: "missing.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reloaded := false
			w := &Watcher{Loader: Loader{Path: tt.path}, OnReload: func(*Snapshot) error {
				reloaded = true
				return nil
			}}
			err := w.Run(context.Background())
			assert.ErrorIs(t, err, tt.wantIs)
			assert.ErrorContains(t, err, tt.wantIn)
			assert.False(t, reloaded)
		})
	}
}

func TestWatcherDeliversChanges(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, path string)
	}{
		{
			name: "rewrite in place",
			change: func(t *testing.T, path string) {
				before, err := os.Stat(path)
				require.NoError(t, err)
				writePolicy(t, path, "github.com", "example.org")
				after, err := os.Stat(path)
				require.NoError(t, err)
				require.True(t, os.SameFile(before, after), "not the same file")
			},
		},
		{
			name: "rename over",
			change: func(t *testing.T, path string) {
				renameOver(t, path, policyYAML("github.com", "example.org"))
			},
		},
		{
			name: "edit by Editor",
			change: func(t *testing.T, path string) {
				_, err := (&Editor{Path: path}).AddDomain("example.org")
				require.NoError(t, err)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writePolicy(t, filepath.Join(t.TempDir(), "policy.yaml"), "github.com")
			// Polling is all but off: the events must do it.
			h := startWatcher(t, &Watcher{Loader: Loader{Path: path}, Interval: time.Hour, Debounce: 10 * time.Millisecond})
			tt.change(t, path)
			assert.Equal(t, []string{"github.com", "example.org"}, h.nextReload(t).Policy().Domains)
		})
	}
}

// TestWatcherConfigMap updates the file the way the kubelet updates a
// ConfigMap volume: policy.yaml -> ..data/policy.yaml, and ..data, a symlink
// to a timestamped directory, is replaced by renaming a new symlink over it.
func TestWatcherConfigMap(t *testing.T) {
	dir := t.TempDir()
	writeVersion := func(name string, domains ...string) {
		require.NoError(t, os.Mkdir(filepath.Join(dir, name), 0o755))
		writePolicy(t, filepath.Join(dir, name, "policy.yaml"), domains...)
	}
	writeVersion("..2026_11_24_10_00_00.1", "github.com")
	require.NoError(t, os.Symlink("..2026_11_24_10_00_00.1", filepath.Join(dir, "..data")))
	path := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.Symlink(filepath.Join("..data", "policy.yaml"), path))
	h := startWatcher(t, &Watcher{Loader: Loader{Path: path}, Interval: time.Hour, Debounce: 10 * time.Millisecond})

	writeVersion("..2026_11_24_10_05_00.2", "github.com", "example.org")
	require.NoError(t, os.Symlink("..2026_11_24_10_05_00.2", filepath.Join(dir, "..data_tmp")))
	require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "..2026_11_24_10_00_00.1")))

	assert.Equal(t, []string{"github.com", "example.org"}, h.nextReload(t).Policy().Domains)
}

func TestWatcherKeepsPolicyWhenEditIsBroken(t *testing.T) {
	path := writePolicy(t, filepath.Join(t.TempDir(), "policy.yaml"), "github.com")
	var live Holder
	w := &Watcher{Loader: Loader{Path: path}, Interval: time.Hour, Debounce: 10 * time.Millisecond}
	h := runWatcher(t, w)
	live.Store(h.nextReload(t))

	renameOver(t, path, []byte("allowlist:\n  domains:\n    - \"github.com\"\n    - \"https://example.org/\"\n"))
	err := h.nextError(t)
	assert.ErrorIs(t, err, ErrDomain)
	assert.ErrorContains(t, err, path+":4:")
	assert.True(t, matched(live.MatchHost("github.com")), "the policy in force changed")

	// Putting the old content back delivers it: the failure is over.
	writePolicy(t, path, "github.com")
	assert.Equal(t, []string{"github.com"}, h.nextReload(t).Policy().Domains)
	writePolicy(t, path, "github.com", "example.org")
	assert.Equal(t, []string{"github.com", "example.org"}, h.nextReload(t).Policy().Domains)
}

func TestWatcherReportsMissingFile(t *testing.T) {
	path := writePolicy(t, filepath.Join(t.TempDir(), "policy.yaml"), "github.com")
	h := startWatcher(t, &Watcher{Loader: Loader{Path: path}, Interval: time.Hour, Debounce: 10 * time.Millisecond})

	require.NoError(t, os.Remove(path))
	err := h.nextError(t)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.ErrorContains(t, err, path)

	writePolicy(t, path, "github.com")
	assert.Equal(t, []string{"github.com"}, h.nextReload(t).Policy().Domains)
}

func TestWatcherDebouncesBurst(t *testing.T) {
	path := writePolicy(t, filepath.Join(t.TempDir(), "policy.yaml"), "github.com")
	const debounce = 200 * time.Millisecond
	h := startWatcher(t, &Watcher{Loader: Loader{Path: path}, Interval: time.Hour, Debounce: debounce})

	// Each write truncates, then writes; each is followed by a chmod.
	for i := range 5 {
		writePolicy(t, path, "github.com", fmt.Sprintf("burst%d.example.org", i))
		require.NoError(t, os.Chmod(path, []fs.FileMode{0o600, 0o640}[i%2]))
	}
	assert.Equal(t, []string{"github.com", "burst4.example.org"}, h.nextReload(t).Policy().Domains)
	h.assertQuiet(t, 3*debounce)
}

func TestWatcherIgnoresUnchangedContent(t *testing.T) {
	path := writePolicy(t, filepath.Join(t.TempDir(), "policy.yaml"), "github.com")
	const debounce = 10 * time.Millisecond
	// Events and polling both see the changes below.
	h := startWatcher(t, &Watcher{Loader: Loader{Path: path}, Interval: debounce, Debounce: debounce})

	// Touch it, write the same bytes over it, replace it with a copy: none
	// of these leaves the file, even for a moment, with other content.
	later := time.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(path, later, later))
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(policyYAML("github.com"), 0)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	renameOver(t, path, policyYAML("github.com"))
	h.assertQuiet(t, 20*debounce)

	writePolicy(t, path, "github.com", "example.org")
	assert.Equal(t, []string{"github.com", "example.org"}, h.nextReload(t).Policy().Domains)
}

func TestWatcherPollsWithoutEvents(t *testing.T) {
	path := writePolicy(t, filepath.Join(t.TempDir(), "policy.yaml"), "github.com")
	var logs lockedBuffer
	w := &Watcher{
		Loader:     Loader{Path: path},
		Interval:   5 * time.Millisecond,
		Debounce:   5 * time.Millisecond,
		Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
		failNotify: errors.New("inotify instance limit reached"),
	}
	h := startWatcher(t, w)
	assert.Contains(t, logs.String(), "polling only")
	assert.Contains(t, logs.String(), "inotify instance limit reached")

	t.Run("size changes", func(t *testing.T) {
		writePolicy(t, path, "github.com", "example.org")
		assert.Equal(t, []string{"github.com", "example.org"}, h.nextReload(t).Policy().Domains)
	})
	t.Run("metadata unchanged", func(t *testing.T) {
		// Same size, same inode, and the modification time put back, as an
		// edit within a coarse timestamp's resolution would leave it: the
		// periodic read notices (see TestWatchedFile for the blind spot of
		// the metadata check).
		before, err := os.Stat(path)
		require.NoError(t, err)
		writePolicy(t, path, "github.com", "example.net")
		require.NoError(t, os.Chtimes(path, before.ModTime(), before.ModTime()))
		after, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, before.Size(), after.Size())
		require.True(t, os.SameFile(before, after))

		assert.Equal(t, []string{"github.com", "example.net"}, h.nextReload(t).Policy().Domains)
	})
}

func TestWatcherWithoutFile(t *testing.T) {
	w := &Watcher{Loader: Loader{
		Path:    filepath.Join(t.TempDir(), "never-read.yaml"),
		IPs:     &List{Name: "ALLOWLIST_IPS", Value: "192.0.2.1"},
		Domains: &List{Name: "ALLOWLIST_DOMAINS", Value: "example.org"},
	}}
	h := runWatcher(t, w)
	assert.Equal(t, []string{"example.org"}, h.nextReload(t).Policy().Domains)
	assert.NoError(t, h.stop(t))
}

// refuser is an OnReload that fails while it is told to, as a caller whose
// kernel update fails would, and counts the snapshots it refused.
type refuser struct {
	mu      sync.Mutex
	refuse  func(*Snapshot) bool
	refused int
}

var errRefused = errors.New("kernel said no")

func (r *refuser) apply(s *Snapshot) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse != nil && r.refuse(s) {
		r.refused++
		return errRefused
	}
	return nil
}

// set replaces what is refused.
func (r *refuser) set(refuse func(*Snapshot) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refuse = refuse
}

// times refuses the next n snapshots.
func (r *refuser) times(n int) {
	r.set(func(*Snapshot) bool {
		n--
		return n >= 0
	})
}

// allowing refuses the snapshots that allow name.
func allowing(name string) func(*Snapshot) bool {
	return func(s *Snapshot) bool { return matched(s.MatchHost(name)) }
}

func TestWatcherRetriesRefusedSnapshot(t *testing.T) {
	path := writePolicy(t, filepath.Join(t.TempDir(), "policy.yaml"), "github.com")
	var r refuser
	const retry = 10 * time.Millisecond
	h := startWatcher(t, &Watcher{Loader: Loader{Path: path}, Interval: time.Hour, Debounce: 10 * time.Millisecond,
		RetryInterval: retry, OnReload: r.apply})

	// The file changes once; the snapshot is delivered until it is applied,
	// each wait twice the last.
	r.times(3)
	writePolicy(t, path, "github.com", "example.org")
	for i, wait := range []time.Duration{retry, 2 * retry, 4 * retry} {
		err := h.nextError(t)
		assert.ErrorIs(t, err, ErrNotApplied)
		assert.ErrorIs(t, err, errRefused)
		assert.ErrorContains(t, err, fmt.Sprintf("attempt %d; trying again in %v", i+1, wait))
	}
	assert.Equal(t, []string{"github.com", "example.org"}, h.nextReload(t).Policy().Domains)
	h.assertQuiet(t, 20*retry)
}

func TestWatcherRetriesRefusedFirstSnapshot(t *testing.T) {
	tests := []struct {
		name   string
		loader func(t *testing.T) Loader
	}{
		{"file", func(t *testing.T) Loader {
			return Loader{Path: writePolicy(t, filepath.Join(t.TempDir(), "policy.yaml"), "example.org")}
		}},
		{"no file", func(*testing.T) Loader {
			return Loader{
				IPs:     &List{Name: "ALLOWLIST_IPS", Value: "192.0.2.1"},
				Domains: &List{Name: "ALLOWLIST_DOMAINS", Value: "example.org"},
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r refuser
			r.times(2)
			h := runWatcher(t, &Watcher{Loader: tt.loader(t), Interval: time.Hour, RetryInterval: time.Millisecond, OnReload: r.apply})
			assert.ErrorIs(t, h.nextError(t), ErrNotApplied)
			assert.ErrorIs(t, h.nextError(t), ErrNotApplied)
			assert.Equal(t, []string{"example.org"}, h.nextReload(t).Policy().Domains)
			assert.NoError(t, h.stop(t))
		})
	}
}

// TestWatcherChangeReplacesRefusedSnapshot: what the file says now is
// what is retried, or, when it does not load, nothing.
func TestWatcherChangeReplacesRefusedSnapshot(t *testing.T) {
	const retry = 5 * time.Millisecond
	start := func(t *testing.T) (*watchHarness, *refuser, string) {
		path := writePolicy(t, filepath.Join(t.TempDir(), "policy.yaml"), "github.com")
		r := &refuser{}
		h := startWatcher(t, &Watcher{Loader: Loader{Path: path}, Interval: time.Hour, Debounce: 10 * time.Millisecond,
			RetryInterval: retry, OnReload: r.apply})
		// Refused for good.
		r.set(allowing("refused.example"))
		writePolicy(t, path, "github.com", "refused.example")
		assert.ErrorIs(t, h.nextError(t), ErrNotApplied)
		return h, r, path
	}

	t.Run("by a change that loads", func(t *testing.T) {
		h, r, path := start(t)
		writePolicy(t, path, "github.com", "example.org")
		assert.Equal(t, []string{"github.com", "example.org"}, h.nextReload(t).Policy().Domains)
		r.mu.Lock()
		refused := r.refused
		r.mu.Unlock()
		h.assertQuiet(t, 40*retry)
		r.mu.Lock()
		defer r.mu.Unlock()
		assert.Equal(t, refused, r.refused, "the replaced snapshot was delivered again")
	})
	t.Run("by a change that does not load", func(t *testing.T) {
		h, _, path := start(t)
		renameOver(t, path, []byte("allowlist:\n  domains:\n    - \"https://example.org/\"\n"))
		// Errors of the refused snapshot's retries may come first.
		for {
			err := h.nextError(t)
			if !errors.Is(err, ErrNotApplied) {
				assert.ErrorIs(t, err, ErrDomain)
				break
			}
		}
		// The snapshot in force stays; the refused one is no longer
		// retried.
		h.assertQuiet(t, 40*retry)
		writePolicy(t, path, "github.com")
		assert.Equal(t, []string{"github.com"}, h.nextReload(t).Policy().Domains)
	})
}

func TestWatcherRetryBackoff(t *testing.T) {
	tests := []struct {
		interval time.Duration
		want     []time.Duration // after the first, second, ... refusal
	}{
		{0, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
			32 * time.Second, time.Minute, time.Minute}},
		{-time.Second, []time.Duration{time.Second, 2 * time.Second}},
		{40 * time.Second, []time.Duration{40 * time.Second, time.Minute, time.Minute}},
		{2 * time.Minute, []time.Duration{2 * time.Minute, 2 * time.Minute}},
	}
	for _, tt := range tests {
		r := retrier{w: &Watcher{RetryInterval: tt.interval}}
		for i, want := range tt.want {
			r.tries = i + 1
			assert.Equal(t, want, r.backoff(), "RetryInterval %v, refusal %d", tt.interval, i+1)
		}
	}
	r := retrier{w: &Watcher{}, tries: 1 << 20}
	assert.Equal(t, time.Minute, r.backoff(), "no overflow")
}

func TestWatcherStopsWhenCancelled(t *testing.T) {
	path := writePolicy(t, filepath.Join(t.TempDir(), "policy.yaml"), "github.com")
	h := startWatcher(t, &Watcher{Loader: Loader{Path: path}, Interval: time.Millisecond, Debounce: time.Hour})
	writePolicy(t, path, "github.com", "example.org") // a load is pending

	// stop fails the test unless Run returns promptly. Run has then closed
	// its fsnotify watcher, which waits for the watcher's goroutine.
	assert.NoError(t, h.stop(t))
}

func TestWatchedFile(t *testing.T) {
	dir := t.TempDir()
	path := writePolicy(t, filepath.Join(dir, "policy.yaml"), "github.com")
	f := watchedFile{path: path}
	changed, data, err := f.read()
	require.NoError(t, err)
	assert.Contains(t, string(data), "github.com", "the bytes read are returned")
	assert.True(t, changed, "first read")
	assert.False(t, f.statChanged())

	before, err := os.Stat(path)
	require.NoError(t, err)
	writePolicy(t, path, "gitlab.com")
	require.NoError(t, os.Chtimes(path, before.ModTime(), before.ModTime()))
	assert.False(t, f.statChanged(), "a same-size edit with the time put back looks unchanged")
	changed, _, err = f.read()
	require.NoError(t, err)
	assert.True(t, changed, "reading finds the edit")

	later := time.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(path, later, later))
	assert.True(t, f.statChanged(), "touched")
	changed, _, err = f.read()
	require.NoError(t, err)
	assert.False(t, changed, "touched, same bytes")

	renameOver(t, path, policyYAML("gitlab.com"))
	assert.True(t, f.statChanged(), "another inode")
	changed, _, err = f.read()
	require.NoError(t, err)
	assert.False(t, changed, "another inode, same bytes")

	require.NoError(t, os.Remove(path))
	assert.True(t, f.statChanged(), "removed")
	changed, _, err = f.read()
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.True(t, changed, "removed")
	assert.False(t, f.statChanged(), "still missing")
	changed, _, err = f.read()
	assert.Error(t, err)
	assert.False(t, changed, "still missing")

	writePolicy(t, path, "gitlab.com")
	assert.True(t, f.statChanged(), "back")
	changed, _, err = f.read()
	require.NoError(t, err)
	assert.True(t, changed, "back, with the bytes it had before it went")
}

func TestWatchedFileAffectedBy(t *testing.T) {
	f := watchedFile{path: "/app/policy.yaml"}
	tests := map[string]bool{
		"/app/policy.yaml":                  true,
		"/app/..data":                       true,
		"/app/..data_tmp":                   true,
		"/app/..2026_11_24_10_05_00.2":      true,
		"/app/events.log":                   false,
		"/app/.policy.yaml.swp":             false,
		"/app/policy.yaml.1234.tmp":         false,
		"/app/other/policy.yaml.not-a-file": false,
	}
	for name, want := range tests {
		assert.Equal(t, want, f.affectedBy(name), name)
	}
}

// lockedBuffer is a bytes.Buffer safe for a logger and a test to share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func ExampleWatcher() {
	dir, err := os.MkdirTemp("", "policy")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte("allowlist:\n  domains: [github.com]\n"), 0o644); err != nil {
		panic(err)
	}

	var live Holder
	reloaded := make(chan struct{}, 4)
	w := &Watcher{
		Loader: Loader{Path: path},
		OnReload: func(s *Snapshot) error {
			live.Store(s)
			reloaded <- struct{}{}
			return nil
		},
		OnError: func(err error) { fmt.Println("not reloaded:", err) },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()

	<-reloaded // the policy as it is at start
	fmt.Println(matched(live.MatchHost("example.org")))
	if _, err := (&Editor{Path: path}).AddDomain("example.org"); err != nil {
		panic(err)
	}
	<-reloaded
	fmt.Println(matched(live.MatchHost("example.org")))

	cancel()
	fmt.Println(<-done)
	// Output:
	// false
	// true
	// <nil>
}
