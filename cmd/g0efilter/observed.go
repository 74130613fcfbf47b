package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/suggest"
)

// observedInterval is how often the record of what the workload did is
// written to OBSERVED_FILE, when it changed.
const observedInterval = 10 * time.Second

// observer is the filter's own record of what the workload did (the
// names it asked for and reached, the addresses it reached without a
// name, with their ports, verdicts, counts and times), kept in
// OBSERVED_FILE across restarts for g0efilter suggest. It is a Sink behind
// a queue of its own: adding an event takes a lock, never I/O.
type observer struct {
	path string
	log  *slog.Logger

	mu    sync.Mutex
	obs   suggest.Observations
	dirty bool
}

// openObserver reads the record at path, if there is one. A file that is
// not a record is set aside (renamed with ".unreadable") rather than
// overwritten or fatal: the filter starts, and says so.
func openObserver(path string, log *slog.Logger) (*observer, error) {
	o := &observer{path: path, log: log}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return o, nil
	case err != nil:
		return nil, err
	}
	if err := o.obs.UnmarshalJSON(data); err != nil {
		aside := path + ".unreadable"
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("%s is not a record of observations (%v), and cannot be set aside: %w", path, err, rerr)
		}
		log.Warn("the record of observations does not read; set aside, starting afresh", logKeyErr, err, logKeyPath, aside)
		o.obs = suggest.Observations{}
	}
	return o, nil
}

// Emit adds e to the record.
func (o *observer) Emit(e events.Event) {
	o.mu.Lock()
	o.obs.Add(e)
	o.dirty = true
	o.mu.Unlock()
}

// run writes the record every observedInterval while it changes, until
// ctx ends.
func (o *observer) run(ctx context.Context) {
	t := time.NewTicker(observedInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := o.save(); err != nil {
				o.log.Warn("cannot write the record of observations", logKeyErr, err, logKeyPath, o.path)
			}
		}
	}
}

// save writes the record, if it changed, to a file beside OBSERVED_FILE
// and renames it over it: a reader never sees half a record.
func (o *observer) save() error {
	o.mu.Lock()
	if !o.dirty {
		o.mu.Unlock()
		return nil
	}
	data, err := o.obs.MarshalJSON()
	o.dirty = false
	o.mu.Unlock()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(o.path), "."+filepath.Base(o.path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(data, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), o.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		o.mu.Lock()
		o.dirty = true
		o.mu.Unlock()
	}
	return err
}

// isObservations reports whether data is a record of observations rather
// than the JSON lines of a LOG_FILE.
func isObservations(data []byte) bool {
	var head struct {
		Version *int `json:"version"`
	}
	return json.Unmarshal(data, &head) == nil && head.Version != nil
}
