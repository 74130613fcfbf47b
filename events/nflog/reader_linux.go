package nflog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	gonflog "github.com/florianl/go-nflog/v2"
	"golang.org/x/sys/unix"

	"github.com/g0lab/g0efilter/events"
)

// maxConsecutiveErrors is how many receive errors in a row, with no message
// in between, Run takes before it gives up: a socket that fails every read
// would otherwise spin.
const maxConsecutiveErrors = 100

// Run opens an nflog socket in the Reader's network namespace, binds
// r.Group and emits an event for each packet logged to it until ctx ends;
// then it closes the socket and returns nil. Binding needs CAP_NET_ADMIN
// in that namespace, and fails if another socket holds the group.
//
// Packets that cannot be decoded are counted and skipped; so are overflows
// of the socket buffer (ENOBUFS: the kernel dropped messages), which are
// also logged. Run returns an error if the socket cannot be opened or
// bound, or if reading fails persistently. Do not call Run on the same
// Reader from two goroutines at once.
func (r *Reader) Run(ctx context.Context) error {
	log := r.logger().With(keyGroup, r.group())
	s := &session{r: r, fatal: make(chan error, 1)}
	nf, err := gonflog.Open(&gonflog.Config{
		NetNS:    r.NetNS,
		Group:    r.group(),
		Copymode: gonflog.CopyPacket,
		Bufsize:  r.bufSize(),
		QThresh:  r.qthresh(),
		Timeout:  r.flushTimeout(),
		Logger:   libLogger{s: s, log: log},
	})
	if err != nil {
		return fmt.Errorf("nflog: open socket: %w", err)
	}
	if r.ReadBuffer > 0 {
		if err := nf.Con.SetReadBuffer(r.ReadBuffer); err != nil {
			_ = nf.Close()
			return fmt.Errorf("nflog: set receive buffer: %w", err)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.log, s.sink, s.ctx = log, r.sink(), ctx
	if err := nf.RegisterWithErrorFunc(ctx, s.hook, s.onError); err != nil {
		cancel()
		_ = nf.Close()
		return fmt.Errorf("nflog: group %d: %w", r.group(), err)
	}
	if r.NotifyStarted != nil {
		r.NotifyStarted()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-s.fatal:
	}
	// From here on no event is emitted, even for a batch being handed out;
	// the library's reading goroutine sees the cancelled context and ends.
	s.stop()
	cancel()
	// Close the socket itself rather than call nf.Close: that waits on a
	// WaitGroup to which go-nflog's reading goroutine may still be adding
	// (a data race when Run ends right after it started). The goroutines
	// that go-nflog started end by themselves once the socket is closed and
	// ctx is done; closing the socket also unbinds the group.
	if err := nf.Con.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		log.Debug("nflog: close socket", keyErr, err)
	}
	return runErr
}

// session is the state of one Run, shared with go-nflog's reading
// goroutine, which calls hook and onError.
type session struct {
	r     *Reader
	log   *slog.Logger
	sink  events.Sink
	ctx   context.Context
	fatal chan error // buffered: the first fatal error

	mu      sync.Mutex
	stopped bool

	consecutive int // receive errors since the last message; reading goroutine only
}

func (s *session) stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
}

func (s *session) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// hook handles one message. Returning non-zero stops the reading goroutine.
func (s *session) hook(a gonflog.Attribute) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return 1
	}
	s.consecutive = 0
	var prefix string
	if a.Prefix != nil {
		prefix = *a.Prefix
	}
	var payload []byte
	if a.Payload != nil {
		payload = *a.Payload
	}
	var ts time.Time
	if a.Timestamp != nil {
		ts = *a.Timestamp
	}
	if e, ok := s.r.event(s.log, prefix, payload, ts); ok {
		s.sink.Emit(e)
	}
	return 0
}

// onError handles a receive error. Returning non-zero stops the reading
// goroutine.
func (s *session) onError(err error) int {
	if s.ctx.Err() != nil {
		// Run is ending: go-nflog interrupts the read with a deadline.
		return 1
	}
	if errors.Is(err, unix.ENOBUFS) {
		n := s.r.overflows.Add(1)
		s.log.Warn("nflog: socket buffer overflowed, kernel dropped log messages; raise ReadBuffer or QThresh",
			keyCount, n)
		return 0
	}
	s.r.errs.Add(1)
	s.consecutive++
	if errors.Is(err, net.ErrClosed) || errors.Is(err, unix.EBADF) || s.consecutive >= maxConsecutiveErrors {
		select {
		case s.fatal <- fmt.Errorf("nflog: receive: %w", err):
		default:
		}
		return 1
	}
	s.log.Error("nflog: receive", keyErr, err)
	return 0
}

// libLogger passes go-nflog's own messages on at debug level: they are
// about unknown attributes, and about the unbinding at shutdown, which
// fails once Run has closed the socket; those are dropped.
type libLogger struct {
	s   *session
	log *slog.Logger
}

func (l libLogger) Debugf(format string, args ...any) { l.printf(format, args...) }

func (l libLogger) Errorf(format string, args ...any) { l.printf(format, args...) }

func (l libLogger) printf(format string, args ...any) {
	if l.s.isStopped() {
		return
	}
	l.log.Debug("nflog: go-nflog: " + fmt.Sprintf(format, args...))
}
