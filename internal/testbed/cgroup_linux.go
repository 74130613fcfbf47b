//go:build linux

package testbed

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/g0lab/g0efilter/internal/cgroupv2"
)

// cgroupRemoveTimeout bounds the wait for a cgroup's processes to die.
const cgroupRemoveTimeout = 10 * time.Second

// Cgroup2Mount returns the mount point of the first read-write cgroup2
// file system in sight of this process.
func Cgroup2Mount() (string, error) {
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("testbed: %w", err)
	}
	for _, m := range cgroupv2.Mounts(string(mountinfo)) {
		if !m.ReadOnly {
			return m.Point, nil
		}
	}
	return "", errors.New("testbed: no writable cgroup2 mount")
}

// Cgroup is a cgroup v2 directory, made by [NewCgroup].
type Cgroup struct {
	Path string // absolute, under the cgroup2 mount
	ID   uint64 // the inode number of Path: what nftables' "socket cgroupv2" compares
}

// NewCgroup makes the cgroup directory path, which must not exist yet
// (an error that is fs.ErrExist says it does).
func NewCgroup(path string) (Cgroup, error) {
	if err := os.Mkdir(path, 0o755); err != nil {
		return Cgroup{}, fmt.Errorf("testbed: create cgroup: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return Cgroup{}, fmt.Errorf("testbed: cgroup: %w", err)
	}
	return Cgroup{Path: path, ID: st.Ino}, nil
}

// Remove removes the cgroup and those below it, killing the processes
// left in them first (see cgroupv2.Remove). A cgroup already gone is no
// error.
func (cg Cgroup) Remove() error { return cgroupv2.Remove(cg.Path, cgroupRemoveTimeout) }

// Start starts cmd in cg from birth (clone3 with CLONE_INTO_CGROUP): the
// process never runs, and so never makes a socket, anywhere else.
func (cg Cgroup) Start(cmd *exec.Cmd) error {
	fd, err := unix.Open(cg.Path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("testbed: open cgroup: %w", err)
	}
	defer unix.Close(fd)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = fd
	return cmd.Start()
}

// Run starts cmd as [Cgroup.Start] does and waits for its exit on a
// goroutine of its own.
func (cg Cgroup) Run(cmd *exec.Cmd) (*Process, error) {
	if err := cg.Start(cmd); err != nil {
		return nil, err
	}
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Process is a command started by [Cgroup.Run].
type Process struct {
	Cmd *exec.Cmd

	done chan struct{}
	err  error // the exit, as cmd.Wait gives it; valid once done is closed
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns how the process exited, as exec.Cmd.Wait gives it; call it
// once [Process.Done] is closed.
func (p *Process) Err() error { return p.err }

// Running reports whether the process has not exited.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Signal sends sig to the process and waits up to timeout for it to exit.
func (p *Process) Signal(sig os.Signal, timeout time.Duration) error {
	if err := p.Cmd.Process.Signal(sig); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("no exit within %v of %v", timeout, sig)
	}
}
