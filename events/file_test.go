package events

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readLines decodes every line of the file at path.
func readLines(t *testing.T, path string) []Event {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e Event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e), "line %q", sc.Text())
		out = append(out, e)
	}
	require.NoError(t, sc.Err())
	return out
}

func TestFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	fl, err := OpenFile(path, FileConfig{})
	require.NoError(t, err)
	want := []Event{fullEvent(), {Time: fullEvent().Time, Component: DNS, Action: Allowed, Name: "ok.example"}}
	for _, e := range want {
		fl.Emit(e)
	}
	require.NoError(t, fl.Close())
	require.NoError(t, fl.Close(), "Close is idempotent")
	assert.Equal(t, want, readLines(t, path))
	assert.Zero(t, fl.Errors())

	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Zero(t, st.Mode().Perm()&^FileMode, "no permission beyond 0640")

	fl.Emit(fullEvent())
	assert.Equal(t, uint64(1), fl.Errors(), "Emit after Close is counted")
}

func TestFileAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	for range 2 {
		fl, err := OpenFile(path, FileConfig{})
		require.NoError(t, err)
		fl.Emit(fullEvent())
		require.NoError(t, fl.Close())
	}
	assert.Len(t, readLines(t, path), 2)
}

func TestFileCountsBadEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	fl, err := OpenFile(path, FileConfig{})
	require.NoError(t, err)
	fl.Emit(Event{Component: DNS}) // no action
	require.NoError(t, fl.Close())
	assert.Equal(t, uint64(1), fl.Errors())
	assert.Empty(t, readLines(t, path))
}

func TestOpenFileError(t *testing.T) {
	_, err := OpenFile(filepath.Join(t.TempDir(), "missing", "events.jsonl"), FileConfig{})
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestFileRotation(t *testing.T) {
	line, err := json.Marshal(fullEvent())
	require.NoError(t, err)
	size := int64(len(line) + 1)

	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	// Two lines fit in a file; ten events make five files, of which the
	// current one and two backups are kept.
	fl, err := OpenFile(path, FileConfig{MaxSize: 2*size + 1, MaxBackups: 2})
	require.NoError(t, err)
	for i := uint64(1); i <= 10; i++ {
		e := fullEvent()
		e.Flow = 1000 + i // same length for every event
		fl.Emit(e)
	}
	require.NoError(t, fl.Close())
	assert.Zero(t, fl.Errors())

	flows := func(p string) []uint64 {
		var out []uint64
		for _, e := range readLines(t, p) {
			out = append(out, e.Flow-1000)
		}
		return out
	}
	assert.Equal(t, []uint64{9, 10}, flows(path))
	assert.Equal(t, []uint64{7, 8}, flows(path+".1"))
	assert.Equal(t, []uint64{5, 6}, flows(path+".2"))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 3, "no more than MaxBackups old files")
}

func TestFileRotationNoBackups(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	fl, err := OpenFile(path, FileConfig{MaxSize: 1, MaxBackups: -1})
	require.NoError(t, err)
	for i := uint64(1); i <= 3; i++ {
		fl.Emit(Event{Component: DNS, Action: Allowed, Flow: i})
	}
	require.NoError(t, fl.Close())
	got := readLines(t, path)
	require.Len(t, got, 1, "a line larger than MaxSize still gets a file of its own")
	assert.Equal(t, uint64(3), got[0].Flow)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1)
}

func TestFileNeverRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	fl, err := OpenFile(path, FileConfig{MaxSize: -1})
	require.NoError(t, err)
	for range 5 {
		fl.Emit(fullEvent())
	}
	require.NoError(t, fl.Close())
	assert.Len(t, readLines(t, path), 5)
	assert.NoFileExists(t, path+".1")
}

func TestFileConcurrentWriters(t *testing.T) {
	const writers, each = 8, 200
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	// Two Files on one path stand for two processes; the small MaxSize makes
	// the first rotate while both write.
	a, err := OpenFile(path, FileConfig{MaxSize: 64 << 10, MaxBackups: 100})
	require.NoError(t, err)
	b, err := OpenFile(path, FileConfig{MaxSize: -1})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for w := range writers {
		fl := a
		if w%2 == 1 {
			fl = b
		}
		wg.Go(func() {
			for i := range each {
				e := fullEvent()
				e.Flow = uint64(w*each + i + 1)
				e.Detail = strings.Repeat("x", i) // lines of many lengths
				fl.Emit(e)
			}
		})
	}
	wg.Wait()
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
	assert.Zero(t, a.Errors()+b.Errors())

	files, err := filepath.Glob(path + "*")
	require.NoError(t, err)
	assert.Greater(t, len(files), 1, "rotated while writing")
	seen := map[uint64]bool{}
	for _, f := range files {
		for _, e := range readLines(t, f) { // fails on a torn line
			assert.False(t, seen[e.Flow])
			seen[e.Flow] = true
		}
	}
	assert.Len(t, seen, writers*each, "nothing lost")
}
