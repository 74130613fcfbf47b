package main

import (
	"io"
	"sync"
)

// stopOnError is the sandbox's output: a writer that, on its first failed
// write (the reader of a pipe has gone: "| head" is done, or Ctrl-C ended
// "| tee" too), calls stop, so that the sandbox tears down rather than
// running on unseen or, killed by SIGPIPE, leaving its namespaces behind.
// Later writes are dropped.
type stopOnError struct {
	w    io.Writer
	stop func(error)

	mu     sync.Mutex
	failed bool
}

func (s *stopOnError) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed {
		return len(p), nil
	}
	n, err := s.w.Write(p)
	if err != nil {
		s.failed = true
		s.stop(err)
		return len(p), nil // nothing to be done about it but stop
	}
	return n, nil
}

// rootPrefix is what the printed commands that need root start with. The
// sandbox runs as root; the commands are typed in another terminal, which
// is not root's when the sandbox was started through sudo (SUDO_UID is
// set): then "sudo ", if sudo is installed. Otherwise nothing.
func rootPrefix(getenv func(string) string, lookPath func(string) (string, error)) string {
	if getenv("SUDO_UID") == "" {
		return ""
	}
	if _, err := lookPath("sudo"); err != nil {
		return ""
	}
	return "sudo "
}

// needsRoot is the error for a sandbox started without root: how to start
// it with sudo, when there is a sudo to start it with.
func needsRoot(lookPath func(string) (string, error)) string {
	if _, err := lookPath("sudo"); err == nil {
		return `needs root, to make network namespaces: sudo env "PATH=$PATH" go run ./examples/sandbox`
	}
	return "needs root, to make network namespaces: run it as root"
}
