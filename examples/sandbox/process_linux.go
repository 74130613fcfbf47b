//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

const (
	stopTimeout = 10 * time.Second
	logTailSize = 4 << 10
)

// process is a binary run in a namespace with "ip netns exec", its output
// appended to a log file.
type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // the exit; valid once done is closed
}

// startProcess runs "ip netns exec ns bin args..." with exactly the
// environment env (nothing is inherited: a stray API_KEY in the caller's
// environment must not leak in), in a process group of its own, so that
// a Ctrl-C in the terminal reaches only the sandbox, which stops it in
// order. Should the sandbox die without stopping it, it is killed
// (Pdeathsig). ip netns exec execs the binary, so the process is the
// binary once it starts. It starts in the cgroup (v2) directory cgroup.
func startProcess(name, ns, logPath, cgroup string, env []string, bin string, args ...string) (*process, error) {
	cg, err := os.Open(cgroup)
	if err != nil {
		return nil, err
	}
	defer cg.Close()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	p := &process{name: name, logPath: logPath, done: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL,
		UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	if err := p.cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *process) Done() <-chan struct{} { return p.done }

// Exited returns an error saying that the process exited, with the end of
// its log.
func (p *process) Exited() error {
	return fmt.Errorf("%s exited (%v); the end of %s:\n%s", p.name, p.err, p.logPath, p.logTail())
}

// Stop sends SIGTERM and waits for the process to exit, killing it if it
// has not within stopTimeout.
func (p *process) Stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("%s did not stop within %v of SIGTERM: killed", p.name, stopTimeout)
}

// logTail returns the last lines of the log file.
func (p *process) logTail() string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	if len(data) > logTailSize {
		data = data[len(data)-logTailSize:]
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	return strings.TrimRight(string(data), "\n")
}
