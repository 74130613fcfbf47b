package events

import (
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
)

// Defaults of [FileConfig].
const (
	DefaultMaxSize    = 10 << 20 // bytes
	DefaultMaxBackups = 3
)

// FileMode is the permission a [File] is created with, before the umask:
// readable by the owner's group, which log shippers commonly run in, and by
// no one else.
const FileMode os.FileMode = 0o640

// FileConfig configures a [File]. Its zero value rotates at 10 MiB and keeps
// three old files.
type FileConfig struct {
	// MaxSize is the size in bytes the file may reach before it is rotated.
	// Zero means DefaultMaxSize (10 MiB); negative means never rotate. A
	// single line larger than MaxSize is still written, to a fresh file.
	MaxSize int64
	// MaxBackups is how many rotated files (path.1 the newest, path.2 the one
	// before, ...) are kept. Zero means DefaultMaxBackups (3); negative
	// means none: rotation starts the file afresh.
	MaxBackups int
}

// File is a Sink that appends each event as one line of JSON, in the wire
// format described in the package documentation, to a file (LOG_FILE).
//
// Each event is one write(2) to a file opened with O_APPEND, with nothing
// buffered in the process: a crash loses no event that Emit has returned
// from, and several processes appending to one file never interleave within
// a line. The file is rotated by size, by this process only: another
// process writing the same path keeps writing to the rotated file until it
// reopens it.
//
// Emit does file I/O and waits for the disk; on the data path put a [Queue]
// in front of it. Events that cannot be written are counted in
// [File.Errors], never returned or panicked.
type File struct {
	path string
	cfg  FileConfig
	errs atomic.Uint64

	mu   sync.Mutex
	f    *os.File // nil once closed, or when a rotation failed to reopen
	size int64
	done bool
	err  error // the last write's error; nil after a write that worked
}

var _ Sink = (*File)(nil)

// OpenFile opens path for appending, creating it with [FileMode] if needed.
// The directory must exist.
func OpenFile(path string, cfg FileConfig) (*File, error) {
	if cfg.MaxSize == 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if cfg.MaxBackups == 0 {
		cfg.MaxBackups = DefaultMaxBackups
	}
	fl := &File{path: path, cfg: cfg}
	if err := fl.open(); err != nil {
		return nil, err
	}
	return fl, nil
}

func (fl *File) open() error {
	f, err := os.OpenFile(fl.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, FileMode)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	fl.f, fl.size = f, st.Size()
	return nil
}

// Emit appends e as one line. An event that cannot be encoded (see
// [Event.MarshalJSON]) or written, or one emitted after Close, is counted
// in [File.Errors].
func (fl *File) Emit(e Event) {
	line, err := json.Marshal(e)
	if err != nil {
		fl.errs.Add(1)
		return
	}
	line = append(line, '\n')

	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.done {
		fl.errs.Add(1)
		return
	}
	if fl.f != nil && fl.cfg.MaxSize > 0 && fl.size > 0 && fl.size+int64(len(line)) > fl.cfg.MaxSize {
		fl.rotate()
	}
	if fl.f == nil { // a failed rotation: try again
		if fl.err = fl.open(); fl.err != nil {
			fl.errs.Add(1)
			return
		}
	}
	n, err := fl.f.Write(line)
	fl.size += int64(n)
	if fl.err = err; err != nil {
		fl.errs.Add(1)
	}
}

// Err returns the error of the last event Emit could not write (a full
// disk, say), or nil if the last one was written.
func (fl *File) Err() error {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.err
}

// rotate closes the file, shifts path.N-1 to path.N down to path to
// path.1, dropping the oldest, and opens a new file at path. A rename that
// fails is counted and the shift goes on; fl.f is nil if the reopen fails.
func (fl *File) rotate() {
	if err := fl.f.Close(); err != nil {
		fl.errs.Add(1)
	}
	fl.f = nil
	if fl.cfg.MaxBackups < 0 {
		if err := os.Remove(fl.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			fl.errs.Add(1)
		}
	} else {
		for i := fl.cfg.MaxBackups - 1; i >= 0; i-- {
			from := fl.path
			if i > 0 {
				from = fl.backup(i)
			}
			if err := os.Rename(from, fl.backup(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
				fl.errs.Add(1)
			}
		}
	}
	if err := fl.open(); err != nil {
		fl.errs.Add(1)
	}
}

func (fl *File) backup(n int) string { return fl.path + "." + strconv.Itoa(n) }

// Errors returns how many events could not be written.
func (fl *File) Errors() uint64 { return fl.errs.Load() }

// Close closes the file. Nothing is buffered, so nothing is left to flush.
// Later calls do nothing and return nil.
func (fl *File) Close() error {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.done {
		return nil
	}
	fl.done = true
	if fl.f == nil {
		return nil
	}
	err := fl.f.Close()
	fl.f = nil
	return err
}
