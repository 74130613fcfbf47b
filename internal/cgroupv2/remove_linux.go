package cgroupv2

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Remove removes the cgroup (version 2) directory path and those below
// it: it kills their processes (cgroup.kill), waits up to timeout until
// the kernel sees them gone (an exit is accounted a little after the
// parent's wait returns) and removes the directories, deepest first. A
// path already gone is no error.
func Remove(path string, timeout time.Duration) error {
	entries, err := os.ReadDir(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove cgroup: %w", err)
	}
	var errs []error
	for _, ent := range entries {
		if ent.IsDir() {
			errs = append(errs, Remove(filepath.Join(path, ent.Name()), timeout))
		}
	}
	if err := os.WriteFile(filepath.Join(path, "cgroup.kill"), []byte("1"), 0); err != nil {
		errs = append(errs, fmt.Errorf("kill cgroup %s: %w", path, err))
	}
	deadline := time.Now().Add(timeout)
	for {
		events, err := os.ReadFile(filepath.Join(path, "cgroup.events"))
		if err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup: %w", err))
			break
		}
		if slices.Contains(strings.Split(string(events), "\n"), "populated 0") {
			break
		}
		if time.Now().After(deadline) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: still populated after %v", path, timeout))
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := unix.Rmdir(path); err != nil && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("remove cgroup %s: %w", path, err))
	}
	return errors.Join(errs...)
}
