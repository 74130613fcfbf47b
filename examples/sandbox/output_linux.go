package main

import (
	"context"
	"os"

	"golang.org/x/sys/unix"
)

// watchOutput calls stop if the reader of f goes away (the far end of a
// pipe is closed, a terminal hangs up) while nothing is being written, and
// returns when ctx ends.
func watchOutput(ctx context.Context, f *os.File, stop func(error)) {
	fds := []unix.PollFd{{Fd: int32(f.Fd())}} // no events: only errors and hang-ups
	for ctx.Err() == nil {
		n, err := unix.Poll(fds, 500)
		if err != nil && err != unix.EINTR {
			return
		}
		if n > 0 && fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
			stop(unix.EPIPE)
			return
		}
	}
}
