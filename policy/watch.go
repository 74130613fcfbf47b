package policy

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher defaults.
const (
	defaultInterval = 2 * time.Second
	defaultDebounce = 100 * time.Millisecond

	// hashEvery is how many poll ticks pass between reads of a file whose
	// metadata looks unchanged. It catches an edit that kept the size and,
	// on a file system with coarse timestamps, the modification time.
	hashEvery = 10
)

// Log attribute keys.
const (
	logKeyPath    = "path"
	logKeyErr     = "err"
	logKeyIPs     = "ips"
	logKeyDomains = "domains"
)

// Watcher watches a policy file and delivers a new [Snapshot] each time the
// file changes and still loads; a change that does not load is reported and
// the snapshot in force stays. The zero value loads an empty policy, delivers
// it and waits.
//
// It combines two ways of noticing a change. It asks the operating system
// (fsnotify) for events in the file's directory rather than on the file, so
// that it survives editors that replace the file by renaming a new one over
// it and Kubernetes ConfigMap volumes, whose update swaps the "..data"
// symlink that the file's path goes through. And it polls the file's
// metadata (size, modification time, mode and identity, following symlinks),
// because events may never arrive: for a Docker single-file bind mount, for
// one, the container's side of the directory sees no events when the file
// is edited on the host, and the directory of a symlink's target (other than
// a ConfigMap's) is not watched. Either way, the file is loaded only when its bytes
// differ from the last read, so a change that touches the file without
// changing it delivers nothing. A change of bytes alone, such as an edited
// comment, delivers a snapshot equal to the one in force.
//
// Typical usage, with the live policy in a [Holder]:
//
//	var live policy.Holder
//	w := &policy.Watcher{
//		Loader:   policy.Loader{Path: "/app/policy.yaml"},
//		OnReload: live.Store,
//		OnError:  func(err error) { log.Warn("policy not reloaded", "err", err) },
//	}
//	err := w.Run(ctx) // fails at once if the policy does not load at start
type Watcher struct {
	// Loader loads the policy. Its Path is the file watched. When there is
	// no file to read (no Path, or lists that replace both of the file's),
	// Run delivers the one snapshot and waits for its context to end.
	Loader Loader
	// Interval is how often the file's metadata is checked. Every tenth
	// check also reads the file, even when its metadata looks unchanged.
	// Zero or negative means 2s.
	Interval time.Duration
	// Debounce is how long the file must stay quiet after a change is
	// noticed before it is loaded, so that a burst of writes, or the several
	// steps of a ConfigMap update, yield one load. Zero or negative means
	// 100ms.
	Debounce time.Duration
	// OnReload receives every snapshot Run loads: the first, before Run
	// starts watching, and then one for each change of the file's bytes
	// that loads, including the first good load after a failed one. It is
	// called from Run's goroutine, and Run waits for it. Usually
	// [Holder.Store]. Nil means the snapshots are dropped.
	OnReload func(*Snapshot)
	// OnError receives the error of each change that does not load: a
	// policy mistake (an [ErrorList], naming the file and line), or a file
	// that cannot be read, such as one missing. The snapshot in force stays;
	// Run keeps watching, and the next change that loads is delivered. A
	// failure is reported once, not again for each check that finds the
	// same bytes. It is called from Run's goroutine. Nil means the error is
	// logged.
	OnError func(error)
	// Logger receives the reloads and the problems with watching. Nil means
	// the logs are discarded.
	Logger *slog.Logger

	// failNotify, set by tests, makes Run act as if file system events could
	// not be set up, failing with this error, so that it polls alone.
	failNotify error
}

// Run loads the policy, delivers it to OnReload and then watches the file
// until ctx is done, when it returns nil. It returns an error at once, and
// delivers nothing, if the policy does not load at start: there is no
// previous snapshot to keep in force, and the caller decides whether to go
// on.
//
// If file system events cannot be set up (when the inotify limits are
// reached, say), Run logs a warning and relies on polling alone. It starts
// no goroutine that outlives it.
func (w *Watcher) Run(ctx context.Context) error {
	log := w.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	path := w.Loader.Path
	if !w.Loader.readsFile() {
		snap, err := w.load(nil)
		if err != nil {
			return err
		}
		w.deliver(log, snap)
		<-ctx.Done()
		return nil
	}

	// Watch before the first read, so that no change slips in between.
	var (
		events <-chan fsnotify.Event
		errs   <-chan error
	)
	if notify, err := w.notify(filepath.Dir(path)); err != nil {
		log.Warn("cannot watch the policy file's directory; polling only", logKeyPath, path, logKeyErr, err)
	} else {
		defer notify.Close()
		events, errs = notify.Events, notify.Errors
	}

	f := watchedFile{path: path}
	_, data, err := f.read()
	if err != nil {
		return err
	}
	snap, err := w.load(data)
	if err != nil {
		return err
	}
	w.deliver(log, snap)

	interval, debounce := w.Interval, w.Debounce
	if interval <= 0 {
		interval = defaultInterval
	}
	if debounce <= 0 {
		debounce = defaultDebounce
	}
	poll := time.NewTicker(interval)
	defer poll.Stop()
	quiet := time.NewTimer(debounce)
	quiet.Stop()
	pending := false // quiet is running
	wait := func() {
		quiet.Reset(debounce)
		pending = true
	}
	ticks := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
			} else if f.affectedBy(ev.Name) {
				wait()
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// Events may have been lost (a queue overflow, say): check.
			log.Warn("file system events failed", logKeyPath, path, logKeyErr, err)
			wait()
		case <-poll.C:
			ticks++
			// A change seen by polling does not restart a pending wait:
			// the metadata stays "changed" until the load, and a short
			// Interval would postpone it forever.
			if !pending && (ticks%hashEvery == 0 || f.statChanged()) {
				wait()
			}
		case <-quiet.C:
			pending = false
			w.reload(log, &f)
		}
	}
}

// notify sets up file system events for dir.
func (w *Watcher) notify(dir string) (*fsnotify.Watcher, error) {
	if w.failNotify != nil {
		return nil, w.failNotify
	}
	n, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := n.Add(dir); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// reload reads the file and, when its bytes changed, loads and delivers the
// policy or reports why it could not.
func (w *Watcher) reload(log *slog.Logger, f *watchedFile) {
	changed, data, err := f.read()
	switch {
	case !changed:
		return
	case err != nil:
		w.fail(log, err)
		return
	}
	snap, err := w.load(data)
	if err != nil {
		w.fail(log, err)
		return
	}
	w.deliver(log, snap)
}

// load loads the policy from data, the bytes of the file that were hashed,
// and compiles it.
func (w *Watcher) load(data []byte) (*Snapshot, error) {
	p, err := w.Loader.load(data)
	if err != nil {
		return nil, err
	}
	return Compile(p)
}

func (w *Watcher) deliver(log *slog.Logger, snap *Snapshot) {
	p := snap.Policy()
	log.Info("policy loaded", logKeyPath, w.Loader.Path, logKeyIPs, len(p.IPs), logKeyDomains, len(p.Domains))
	if w.OnReload != nil {
		w.OnReload(snap)
	}
}

func (w *Watcher) fail(log *slog.Logger, err error) {
	if w.OnError != nil {
		w.OnError(err)
		return
	}
	log.Error("policy not reloaded; the previous one stays in force", logKeyPath, w.Loader.Path, logKeyErr, err)
}

// watchedFile remembers what the policy file looked like when last read.
type watchedFile struct {
	path string
	// info is the file's metadata at the last read; nil when that read
	// failed, or before the first.
	info os.FileInfo
	sum  [sha256.Size]byte
}

// read reads the file and reports whether it changed since the last read: its
// bytes differ, or it has become readable or unreadable. The error is the read
// error, if any.
func (f *watchedFile) read() (changed bool, data []byte, err error) {
	data, info, err := readWithInfo(f.path)
	if err != nil {
		changed = f.info != nil
		f.info = nil
		return changed, nil, err
	}
	sum := sha256.Sum256(data)
	changed = f.info == nil || sum != f.sum
	f.info, f.sum = info, sum
	return changed, data, nil
}

// statChanged reports whether the file's metadata differs from the last
// read's. It is cheap enough to call on every poll.
func (f *watchedFile) statChanged() bool {
	info, err := os.Stat(f.path)
	if err != nil || f.info == nil {
		// A change only if the file became readable or unreadable.
		return (err == nil) != (f.info != nil)
	}
	return !os.SameFile(info, f.info) ||
		info.Size() != f.info.Size() ||
		!info.ModTime().Equal(f.info.ModTime()) ||
		info.Mode() != f.info.Mode()
}

// affectedBy reports whether an event for the named directory entry may
// have changed the file: the file itself, or a Kubernetes ConfigMap volume's
// "..data" symlink and the "..<timestamp>" directories it points to. Other
// entries are ignored, so that a busy directory (one that holds a log file,
// say) does not keep postponing the load.
func (f *watchedFile) affectedBy(name string) bool {
	base := filepath.Base(name)
	return base == filepath.Base(f.path) || strings.HasPrefix(base, "..")
}

// readWithInfo reads the file at path and returns its metadata as of the
// read, following symlinks.
func readWithInfo(path string) ([]byte, os.FileInfo, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("policy: %w", err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("policy: %w", err)
	}
	data, err := io.ReadAll(file)
	if err != nil {
		return nil, nil, fmt.Errorf("policy: %w", err)
	}
	return data, info, nil
}
