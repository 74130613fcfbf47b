package policy

import (
	"context"
	"crypto/sha256"
	"errors"
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
	DefaultWatchInterval = 2 * time.Second
	DefaultWatchDebounce = 100 * time.Millisecond
	DefaultWatchRetry    = time.Second
	maxRetry             = time.Minute

	// hashEvery is how many poll ticks pass between reads of a file whose
	// metadata looks unchanged. It catches an edit that kept the size and,
	// on a file system with coarse timestamps, the modification time.
	hashEvery = 10

	// startTries bounds the reads of a policy file that keeps changing
	// while Run starts (see Watcher.first).
	startTries = 20
)

// Log attribute keys.
const (
	logKeyPath      = "path"
	logKeyErr       = "err"
	logKeyIPs       = "ips"
	logKeyDomains   = "domains"
	logKeyWithPorts = "with_ports"
	logKeyAttempt   = "attempt"
)

// ErrNotApplied is wrapped by the error [Watcher.OnError] receives when
// [Watcher.OnReload] did not apply a snapshot: the Watcher delivers it
// again after a back-off.
var ErrNotApplied = errors.New("policy: not applied")

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
// A snapshot that OnReload fails to apply (the kernel refused a set update,
// say) is delivered again, with back-off, until it is applied or the file
// changes: a reload that fails half-way is retried, not forgotten.
//
// Typical usage, with the live policy in a [Holder]:
//
//	var live policy.Holder
//	w := &policy.Watcher{
//		Loader: policy.Loader{Path: "/app/policy.yaml"},
//		OnReload: func(s *policy.Snapshot) error {
//			live.Store(s)
//			return nil
//		},
//		OnError: func(err error) { log.Warn("policy not reloaded", "err", err) },
//	}
//	err := w.Run(ctx) // fails if the policy does not load at start (a file still being written is waited for)
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
	// OnReload applies every snapshot Run loads: the first, before Run
	// starts watching, and then one for each change of the file's bytes
	// that loads, including the first good load after a failed one. It
	// returns nil once the snapshot is in force, as [Holder.Store] puts it.
	// An error means it is not, and that the one in force stays: Run
	// reports the error to OnError, wrapped with [ErrNotApplied], and
	// delivers the snapshot again after RetryInterval, then after twice
	// as long, and so on, until OnReload applies it or the file changes
	// (a change that loads replaces it; one that does not is reported,
	// and the snapshot in force stays). It is called from Run's goroutine,
	// and Run waits for it. Nil means the snapshots are dropped.
	OnReload func(*Snapshot) error
	// OnError receives the error of each change that does not load: a
	// policy mistake (an [ErrorList], naming the file and line), or a file
	// that cannot be read, such as one missing. The snapshot in force stays;
	// Run keeps watching, and the next change that loads is delivered. A
	// failure is reported once, not again for each check that finds the
	// same bytes. It also receives each refusal by OnReload, wrapped with
	// [ErrNotApplied]. It is called from Run's goroutine. Nil means the
	// error is logged.
	OnError func(error)
	// RetryInterval is how long Run waits before it delivers again a
	// snapshot that OnReload did not apply. The wait doubles with each
	// further refusal of the same snapshot, up to a minute (or
	// RetryInterval, if longer). Zero or negative means 1s.
	RetryInterval time.Duration
	// Logger receives the reloads and the problems with watching. Nil means
	// the logs are discarded.
	Logger *slog.Logger

	// startFailed, set by tests, is called each time the load at start
	// fails, before the wait for the file to be read again.
	startFailed func()

	// failNotify, set by tests, makes Run act as if file system events could
	// not be set up, failing with this error, so that it polls alone.
	failNotify error
}

// Run loads the policy, delivers it to OnReload and then watches the file
// until ctx is done, when it returns nil. It returns an error, and delivers
// nothing, if the policy does not load at start: there is no previous
// snapshot to keep in force, and the caller decides whether to go on. A
// file caught half-written is not such a failure: while the file read at
// start is missing, unreadable or invalid, Run reads it again one Debounce
// later, as long as it keeps changing (up to 20 reads); a file that stays
// the same fails Run after one Debounce.
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
	var (
		events <-chan fsnotify.Event
		errs   <-chan error
		poll   <-chan time.Time
		f      *watchedFile // nil when there is no file to read
		data   []byte
	)
	if w.Loader.readsFile() {
		// Watch before the first read, so that no change slips in between.
		var stop func()
		events, errs, stop = w.watchDir(log)
		defer stop()
		f = &watchedFile{path: path}
	}
	interval, debounce := w.Interval, w.Debounce
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	if debounce <= 0 {
		debounce = DefaultWatchDebounce
	}
	snap, err := w.first(ctx, log, f, data, debounce)
	if err != nil {
		return err
	}
	if f != nil {
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		poll = ticker.C
	}
	quiet := time.NewTimer(debounce)
	quiet.Stop()
	pending := false // quiet is running
	wait := func() {
		quiet.Reset(debounce)
		pending = true
	}
	r := retrier{w: w, log: log, timer: time.NewTimer(0)}
	r.timer.Stop()
	defer r.timer.Stop()
	r.deliver(snap)
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
		case <-poll:
			ticks++
			// A change seen by polling does not restart a pending wait:
			// the metadata stays "changed" until the load, and a short
			// Interval would postpone it forever.
			if !pending && (ticks%hashEvery == 0 || f.statChanged()) {
				wait()
			}
		case <-quiet.C:
			pending = false
			w.reread(log, f, &r)
		case <-r.timer.C:
			if r.snap != nil {
				r.try(r.snap)
			}
		}
	}
}

// watchDir watches the directory of the policy file for events; when it
// cannot, it says so and the Watcher polls only (nil channels).
func (w *Watcher) watchDir(log *slog.Logger) (events <-chan fsnotify.Event, errs <-chan error, stop func()) {
	notify, err := w.notify(filepath.Dir(w.Loader.Path))
	if err != nil {
		log.Warn("cannot watch the policy file's directory; polling only", logKeyPath, w.Loader.Path, logKeyErr, err)
		return nil, nil, func() {}
	}
	return notify.Events, notify.Errors, func() { notify.Close() }
}

// reread loads the file if its bytes changed, and delivers it or reports
// why it could not.
func (w *Watcher) reread(log *slog.Logger, f *watchedFile, r *retrier) {
	changed, data, err := f.read()
	if !changed {
		return
	}
	var snap *Snapshot
	if err == nil {
		snap, err = w.load(log, data)
	}
	if err != nil {
		// What was waiting to be applied is no longer what the file says:
		// the snapshot in force stays.
		r.drop()
		w.fail(log, err)
		return
	}
	r.deliver(snap)
}

// first loads the policy for Run's start. A file caught half-written is
// given time to be finished: while a read that fails, or loads a policy that
// does not, finds bytes (or an error) other than the read before it, one
// Debounce later, the file is read again, up to startTries reads. A file that
// stays the same and broken fails at once, one Debounce after its first read.
func (w *Watcher) first(ctx context.Context, log *slog.Logger, f *watchedFile, data []byte, debounce time.Duration) (*Snapshot, error) {
	var err error
	if f != nil {
		_, data, err = f.read()
	}
	if err == nil {
		var snap *Snapshot
		if snap, err = w.load(log, data); err == nil || f == nil {
			return snap, err
		}
	}
	for range startTries - 1 {
		if w.startFailed != nil {
			w.startFailed()
		}
		t := time.NewTimer(debounce)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		changed, next, rerr := f.read()
		if !changed {
			return nil, err
		}
		log.Info("policy file changed while read at start; reading it again", logKeyPath, f.path, logKeyErr, err)
		if err = rerr; err == nil {
			var snap *Snapshot
			if snap, err = w.load(log, next); err == nil {
				return snap, nil
			}
		}
	}
	return nil, err
}

// retrier delivers snapshots to OnReload and, when OnReload does not apply
// one, delivers it again after a back-off.
type retrier struct {
	w     *Watcher
	log   *slog.Logger
	timer *time.Timer // runs while snap waits
	snap  *Snapshot   // the snapshot OnReload last refused, or nil
	tries int         // how many times OnReload refused snap
}

// deliver delivers a snapshot just loaded, which replaces the one waiting,
// if any.
func (r *retrier) deliver(snap *Snapshot) {
	r.tries = 0
	r.try(snap)
}

// try delivers snap and, if OnReload does not apply it, sets it to wait.
func (r *retrier) try(snap *Snapshot) {
	err := r.w.deliver(snap)
	if err == nil {
		if r.tries > 0 {
			r.log.Info("policy applied after a retry", logKeyPath, r.w.Loader.Path, logKeyAttempt, r.tries+1)
		}
		r.drop()
		return
	}
	r.tries++
	wait := r.backoff()
	r.snap = snap
	r.timer.Reset(wait)
	r.w.fail(r.log, fmt.Errorf("%w (attempt %d; trying again in %v): %w", ErrNotApplied, r.tries, wait, err))
}

// drop forgets the snapshot waiting, if any.
func (r *retrier) drop() {
	r.snap, r.tries = nil, 0
	r.timer.Stop()
}

// backoff is the wait before the next delivery after the tries-th refusal.
func (r *retrier) backoff() time.Duration {
	d := r.w.RetryInterval
	if d <= 0 {
		d = DefaultWatchRetry
	}
	limit := max(d, maxRetry)
	for i := 1; i < r.tries && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
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

// load loads the policy from data, the bytes of the file that were hashed,
// and compiles it.
func (w *Watcher) load(log *slog.Logger, data []byte) (*Snapshot, error) {
	p, err := w.Loader.load(data)
	if err != nil {
		return nil, err
	}
	snap, err := Compile(p)
	if err != nil {
		return nil, err
	}
	log.Info("policy loaded", logKeyPath, w.Loader.Path, logKeyIPs, len(p.IPs), logKeyDomains, len(p.Domains),
		logKeyWithPorts, len(p.AddrPorts)+len(p.NamePorts))
	return snap, nil
}

// deliver hands snap to OnReload and returns its error.
func (w *Watcher) deliver(snap *Snapshot) error {
	if w.OnReload == nil {
		return nil
	}
	return w.OnReload(snap)
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
