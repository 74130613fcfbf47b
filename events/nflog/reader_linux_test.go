package nflog_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/events/nflog"
	"github.com/g0lab/g0efilter/internal/e2e"
	"github.com/g0lab/g0efilter/internal/sockmark"
	"github.com/g0lab/g0efilter/nftrules"

	"github.com/g0lab/g0efilter/internal/netnstest"
)

const (
	testGroup   = 4242
	waitTimeout = 10 * time.Second // a batch waits up to a second in the kernel
	testPort    = 7000
)

// startReader runs r until the test ends, and returns once r has bound
// its group.
func startReader(t *testing.T, r *nflog.Reader) {
	t.Helper()
	ready := make(chan struct{})
	r.NotifyStarted = func() { close(ready) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "Run after cancel")
		case <-time.After(waitTimeout):
			t.Error("Run did not return after its context ended")
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("Run did not bind its group")
	}
}

// chanSink collects events without ever blocking the Reader.
type chanSink chan events.Event

func (c chanSink) Emit(e events.Event) {
	select {
	case c <- e:
	default:
		panic("test sink full")
	}
}

// netnsFD opens the named namespace, closed when the test ends.
func netnsFD(t *testing.T, name string) int {
	t.Helper()
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = unix.Close(fd) })
	return fd
}

// applyRules installs g0efilter's https-mode ruleset in the namespace fd,
// logging to testGroup; it logs new connections to allowlisted
// destinations with the prefix AllowPrefix expects, and blocked ones.
func applyRules(t *testing.T, fd int, allow4, allow6 netip.Addr) {
	t.Helper()
	applyConfig(t, fd, nftrules.Config{
		Allow4: []netip.Prefix{netip.PrefixFrom(allow4, 32)},
		Allow6: []netip.Prefix{netip.PrefixFrom(allow6, 128)},
	})
}

// applyConfig installs the ruleset of cfg, logging to testGroup, in the
// namespace fd.
func applyConfig(t *testing.T, fd int, cfg nftrules.Config) {
	t.Helper()
	cfg.NflogGroup = testGroup
	rs, err := nftrules.Build(cfg)
	require.NoError(t, err)
	c, err := nftrules.Open(nftrules.ConnConfig{NetNS: fd})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Apply(rs))
}

// dialFrom connects from local to remote in env's box and returns the
// dial (or write, for UDP) error; the connection is closed at once.
func dialFrom(env *e2e.Env, network string, local, remote netip.AddrPort) error {
	return dialMarked(env, network, local, remote, 0)
}

// dialMarked is dialFrom with a socket that carries mark, if not zero.
func dialMarked(env *e2e.Env, network string, local, remote netip.AddrPort, mark uint32) error {
	var err error
	env.InBox(func() {
		var c net.Conn
		d := net.Dialer{Timeout: 2 * time.Second}
		if mark != 0 {
			d.Control = sockmark.Control(mark)
		}
		switch network {
		case "tcp":
			d.LocalAddr = net.TCPAddrFromAddrPort(local)
		case "udp":
			d.LocalAddr = net.UDPAddrFromAddrPort(local)
		}
		c, err = d.Dial(network, remote.String())
		if err != nil {
			return
		}
		defer c.Close()
		if network == "udp" {
			_, err = c.Write([]byte("hello"))
		}
	})
	return err
}

type flow struct {
	action   events.Action
	protocol string
	src, dst netip.AddrPort
}

func (f flow) String() string {
	return fmt.Sprintf("%s %s %s -> %s", f.action, f.protocol, f.src, f.dst)
}

// TestReaderKernel installs g0efilter's ruleset in a box namespace, makes
// allowed and blocked TCP and UDP connections over IPv4 and IPv6 to an
// upstream namespace, and checks that the Reader reports each.
func TestReaderKernel(t *testing.T) {
	env := e2e.New(t)
	fd := netnsFD(t, env.Box)
	up4ok, up4no := e2e.Upstream4[0], e2e.Upstream4[1]
	up6ok, up6no := e2e.Upstream6[0], e2e.Upstream6[1]
	applyRules(t, fd, up4ok, up6ok)
	env.Echo("tcp4", netip.AddrPortFrom(up4ok, testPort).String())
	env.Echo("tcp6", netip.AddrPortFrom(up6ok, testPort).String())

	sink := make(chanSink, 256)
	r := &nflog.Reader{NetNS: fd, Group: testGroup, Host: "box", Sink: sink}
	startReader(t, r)

	want := map[flow]bool{}
	expect := func(action events.Action, network string, src, dst netip.AddrPort, wantErr error) {
		t.Helper()
		err := dialFrom(env, network, src, dst)
		if wantErr == nil {
			require.NoError(t, err, "%s %s -> %s", network, src, dst)
		} else {
			require.ErrorIs(t, err, wantErr, "%s %s -> %s", network, src, dst)
		}
		want[flow{action, network, src, dst}] = true
	}
	port := func(a netip.Addr, p uint16) netip.AddrPort { return netip.AddrPortFrom(a, p) }
	box4, box6 := e2e.Box4, e2e.Box6
	expect(events.Allowed, "tcp", port(box4, 41000), port(up4ok, testPort), nil)
	expect(events.Allowed, "tcp", port(box6, 41001), port(up6ok, testPort), nil)
	expect(events.Allowed, "udp", port(box4, 41002), port(up4ok, testPort), nil)
	expect(events.Allowed, "udp", port(box6, 41003), port(up6ok, testPort), nil)
	expect(events.Blocked, "tcp", port(box4, 41004), port(up4no, testPort), syscall.ECONNREFUSED)
	expect(events.Blocked, "tcp", port(box6, 41006), port(up6no, testPort), syscall.ECONNREFUSED)
	expect(events.Blocked, "udp", port(box4, 41014), port(up4no, testPort), syscall.EPERM)
	expect(events.Blocked, "udp", port(box6, 41016), port(up6no, testPort), syscall.EPERM)

	deadline := time.After(waitTimeout)
	for seen := 0; seen < len(want); {
		select {
		case e := <-sink:
			f := flow{e.Action, e.Protocol, e.Source, e.Destination}
			if !want[f] {
				t.Logf("other event: %s", f) // a retransmission, neighbour discovery
				continue
			}
			want[f] = false
			seen++
			assert.Equal(t, events.Kernel, e.Component, "%s", f)
			assert.NotZero(t, e.Flow, "%s", f)
			assert.Equal(t, "box", e.Host, "%s", f)
			assert.WithinDuration(t, time.Now(), e.Time, waitTimeout, "%s", f)
			reason := events.ReasonNotAllowlisted
			if e.Action == events.Allowed {
				reason = events.ReasonAllowlisted
			}
			assert.Equal(t, reason, e.Reason, "%s", f)
		case <-deadline:
			for f, missing := range want {
				if missing {
					t.Errorf("no event for %s", f)
				}
			}
			t.FailNow()
		}
	}
	st := r.Stats()
	assert.Zero(t, st.Malformed+st.UnknownPrefix+st.Overflows+st.Errors, "%+v", st)
}

// TestReaderKernelGuards installs a ruleset that keeps the filter's mark
// to its own cgroup and guards its local services, then forges the mark
// and knocks on the services from the box, and checks that the Reader
// reports each attempt as blocked, with its reason.
func TestReaderKernelGuards(t *testing.T) {
	env := e2e.New(t)
	fd := netnsFD(t, env.Box)
	const mark = 0x5eed0001
	dockerDNS := netip.MustParseAddr("127.0.0.11")
	applyConfig(t, fd, nftrules.Config{
		BypassMark: mark,
		// A cgroup that no socket of this test is in: every marked packet
		// is a forgery.
		OwnCgroup:  1 << 62,
		GuardPorts: []uint16{9090},
		GuardAddrs: []netip.Addr{dockerDNS},
	})

	sink := make(chanSink, 256)
	r := &nflog.Reader{NetNS: fd, Group: testGroup, Host: "box", Sink: sink}
	startReader(t, r)

	want := map[flow]events.Reason{}
	port := func(a netip.Addr, p uint16) netip.AddrPort { return netip.AddrPortFrom(a, p) }
	expect := func(reason events.Reason, network string, src, dst netip.AddrPort, mark uint32, check func(error) bool) {
		t.Helper()
		err := dialMarked(env, network, src, dst, mark)
		assert.True(t, check(err), "%s %s -> %s: unexpected error %v", network, src, dst, err)
		want[flow{events.Blocked, network, src, dst}] = reason
	}
	is := func(target error) func(error) bool { return func(err error) bool { return errors.Is(err, target) } }
	timeout := func(err error) bool { // a dropped SYN
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout()
	}
	box4, box6, up4, up6 := e2e.Box4, e2e.Box6, e2e.Upstream4[0], e2e.Upstream6[0]
	loop4 := netip.MustParseAddr("127.0.0.1")

	expect(events.ReasonForgedMark, "tcp", port(box4, 41100), port(up4, testPort), mark, timeout)
	expect(events.ReasonForgedMark, "udp", port(box4, 41101), port(up4, testPort), mark, is(syscall.EPERM))
	expect(events.ReasonForgedMark, "udp", port(box6, 41102), port(up6, testPort), mark, is(syscall.EPERM))
	expect(events.ReasonLocalService, "tcp", port(box4, 41110), port(box4, nftrules.DefaultHTTPPort), 0,
		is(syscall.ECONNREFUSED))
	expect(events.ReasonLocalService, "tcp", port(box6, 41111), port(box6, nftrules.DefaultHTTPSPort), 0,
		is(syscall.ECONNREFUSED))
	expect(events.ReasonLocalService, "udp", port(box4, 41112), port(box4, 9090), 0, is(syscall.EPERM))
	expect(events.ReasonLocalService, "udp", port(loop4, 41113), port(dockerDNS, 53), 0, is(syscall.EPERM))

	deadline := time.After(waitTimeout)
	for seen := 0; seen < len(want); {
		select {
		case e := <-sink:
			f := flow{e.Action, e.Protocol, e.Source, e.Destination}
			reason, ok := want[f]
			if !ok || reason == "" {
				t.Logf("other event: %s %s", f, e.Reason) // a retransmitted SYN, a reset
				continue
			}
			want[f] = ""
			seen++
			assert.Equal(t, reason, e.Reason, "%s", f)
			assert.Equal(t, events.Kernel, e.Component, "%s", f)
			assert.Equal(t, "box", e.Host, "%s", f)
			assert.NotZero(t, e.Flow, "%s", f)
		case <-deadline:
			for f, reason := range want {
				if reason != "" {
					t.Errorf("no event for %s (%s)", f, reason)
				}
			}
			t.FailNow()
		}
	}
	st := r.Stats()
	assert.Zero(t, st.Malformed+st.UnknownPrefix+st.Overflows+st.Errors, "%+v", st)
}

// TestReaderGroupTaken checks that Run fails, rather than read nothing,
// when another socket holds the group.
func TestReaderGroupTaken(t *testing.T) {
	fd := netnstest.New(t)
	startReader(t, &nflog.Reader{NetNS: fd, Group: testGroup})

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	err := (&nflog.Reader{NetNS: fd, Group: testGroup}).Run(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("nflog: group %d: ", testGroup))
}

// signalHandler is a slog handler that passes on the messages that
// contain match, without blocking.
type signalHandler struct {
	match string
	ch    chan string
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h signalHandler) WithGroup(string) slog.Handler            { return h }

func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.match) {
		select {
		case h.ch <- r.Message:
		default:
		}
	}
	return nil
}

// TestReaderOverflow stalls the Reader while a flood of blocked packets
// overflows its socket buffer, and checks that it counts and logs the
// loss and goes on reading.
func TestReaderOverflow(t *testing.T) {
	env := e2e.New(t)
	fd := netnsFD(t, env.Box)
	applyRules(t, fd, e2e.Upstream4[0], e2e.Upstream6[0])
	dst := netip.AddrPortFrom(e2e.Upstream4[1], testPort)
	send := func(srcPort uint16, n int) {
		t.Helper()
		env.InBox(func() {
			c, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(e2e.Box4, srcPort)),
				net.UDPAddrFromAddrPort(dst))
			require.NoError(t, err)
			defer c.Close()
			for range n {
				// EPERM, or ECONNREFUSED from the ICMP error that the
				// previous packet's reject sent back: logged either way.
				_, _ = c.Write([]byte("flood"))
			}
		})
	}

	first, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	after := make(chanSink, 4096)
	stalled := false
	overflowed := make(chan string, 1)
	r := &nflog.Reader{
		NetNS:      fd,
		Group:      testGroup,
		QThresh:    1,
		ReadBuffer: 1, // the kernel's minimum
		Logger:     slog.New(signalHandler{match: "overflowed", ch: overflowed}),
		Sink: events.SinkFunc(func(e events.Event) {
			if !stalled { // the Reader calls Emit from one goroutine
				stalled = true
				close(first)
				<-release // a stalled reader, against the Sink contract
				return
			}
			after.Emit(e)
		}),
	}
	startReader(t, r)
	t.Cleanup(unblock) // runs before startReader's cleanup

	send(42000, 1)
	select {
	case <-first:
	case <-time.After(waitTimeout):
		t.Fatal("no first event")
	}
	send(42001, 500)
	unblock()
	select {
	case msg := <-overflowed:
		t.Log(msg)
	case <-time.After(waitTimeout):
		t.Fatalf("no overflow reported: %+v", r.Stats())
	}

	// Reading goes on. The kernel drops what comes while the queue from
	// before the overflow drains, so a marker is sent until one arrives.
	marker := netip.AddrPortFrom(e2e.Box4, 42002)
	deadline := time.After(waitTimeout)
	for found := false; !found; {
		send(marker.Port(), 1)
		retry := time.After(100 * time.Millisecond)
		for wait := true; wait && !found; {
			select {
			case e := <-after:
				found = e.Source == marker
			case <-retry:
				wait = false
			case <-deadline:
				t.Fatalf("no event after the overflow: %+v", r.Stats())
			}
		}
	}
	st := r.Stats()
	t.Logf("%+v", st)
	assert.NotZero(t, st.Overflows)
	assert.Zero(t, st.Errors)
}
