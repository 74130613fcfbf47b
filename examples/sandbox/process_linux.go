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

	"github.com/g0lab/g0efilter/internal/testbed"
)

const (
	stopTimeout = 10 * time.Second
	logTailSize = 4 << 10
)

// process is a binary run in a namespace with "ip netns exec", its output
// appended to a log file.
type process struct {
	*testbed.Process
	name    string
	logPath string
}

// startProcess runs "ip netns exec ns bin args..." with exactly the
// environment env (nothing is inherited: a stray API_KEY in the caller's
// environment must not leak in), in a process group of its own, so that
// a Ctrl-C in the terminal reaches only the sandbox, which stops it in
// order. Should the sandbox die without stopping it, it is killed
// (Pdeathsig). ip netns exec execs the binary, so the process is the
// binary once it starts. It starts in the cgroup cg.
func startProcess(name, ns, logPath string, cg testbed.Cgroup, env []string, bin string, args ...string) (*process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the process has its own copy
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p, err := cg.Run(cmd)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return &process{Process: p, name: name, logPath: logPath}, nil
}

// Exited returns an error saying that the process exited, with the end of
// its log.
func (p *process) Exited() error {
	return fmt.Errorf("%s exited (%v); the end of %s:\n%s", p.name, p.Err(), p.logPath, p.logTail())
}

// Stop sends SIGTERM and waits for the process to exit, killing it if it
// has not within stopTimeout.
func (p *process) Stop() error {
	if !p.Running() {
		return nil
	}
	err := p.Signal(syscall.SIGTERM, stopTimeout)
	if err == nil {
		return nil
	}
	_ = p.Cmd.Process.Kill()
	<-p.Done()
	return fmt.Errorf("stop %s: %w: killed", p.name, err)
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
