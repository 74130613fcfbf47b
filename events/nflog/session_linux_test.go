package nflog

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"testing"

	gonflog "github.com/florianl/go-nflog/v2"
	"github.com/mdlayher/netlink"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/g0lab/g0efilter/events"
)

func newSession(ctx context.Context, sink events.Sink) *session {
	return &session{
		r: &Reader{}, log: slog.New(slog.DiscardHandler), sink: sink,
		ctx: ctx, fatal: make(chan error, 1),
	}
}

func recvErr(errno error) error {
	return &netlink.OpError{Op: "receive", Err: os.NewSyscallError("recvmsg", errno)}
}

func TestSessionOnError(t *testing.T) {
	s := newSession(context.Background(), events.Discard)
	assert.Equal(t, 0, s.onError(recvErr(unix.ENOBUFS)), "an overflow is not fatal")
	assert.Equal(t, 0, s.onError(recvErr(unix.EINTR)), "a stray error is not fatal")
	assert.Equal(t, Stats{Overflows: 1, Errors: 1}, s.r.Stats())
	assert.Empty(t, s.fatal)

	payload := make([]byte, 40)
	payload[0] = 0x60
	assert.Equal(t, 0, s.hook(gonflog.Attribute{Payload: &payload}), "a message resets the error run")
	for range maxConsecutiveErrors - 1 {
		require.Equal(t, 0, s.onError(recvErr(unix.EIO)))
	}
	assert.Equal(t, 1, s.onError(recvErr(unix.EIO)), "errors in a row: fatal")
	err := <-s.fatal
	assert.ErrorIs(t, err, unix.EIO)
	assert.ErrorContains(t, err, "nflog: receive: ")

	s = newSession(context.Background(), events.Discard)
	assert.Equal(t, 1, s.onError(&netlink.OpError{Op: "receive", Err: net.ErrClosed}))
	assert.ErrorIs(t, <-s.fatal, net.ErrClosed)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s = newSession(ctx, events.Discard)
	assert.Equal(t, 1, s.onError(errors.New("i/o timeout")), "Run is ending")
	assert.Equal(t, Stats{}, s.r.Stats())
}

func TestSessionHook(t *testing.T) {
	var got []events.Event
	s := newSession(context.Background(), events.SinkFunc(func(e events.Event) { got = append(got, e) }))
	prefix := DefaultBlockPrefix
	payload := ipv4(ProtoTCP, v4a, v4b, nil, tcpSYN(40000, 22))
	a := gonflog.Attribute{Prefix: &prefix, Payload: &payload}

	assert.Equal(t, 0, s.hook(a))
	require.Len(t, got, 1)
	assert.Equal(t, ap("198.18.0.2:22"), got[0].Destination)

	s.stop()
	assert.Equal(t, 1, s.hook(a), "stopped: no more events")
	assert.Len(t, got, 1)
}
