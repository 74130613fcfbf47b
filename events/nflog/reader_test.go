package nflog

import (
	"bytes"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/events"
)

func TestReaderEvent(t *testing.T) {
	tcp4 := ipv4(ProtoTCP, v4a, v4b, nil, tcpSYN(40000, 22))
	udp6 := ipv6(ProtoUDP, v6a, v6b, udp(40001, 443, "quic"))
	stamp := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

	tests := []struct {
		name    string
		reader  *Reader
		prefix  string
		payload []byte
		ts      time.Time
		want    events.Event
	}{
		{"blocked, default prefix", &Reader{Host: "box"}, "g0efilter blocked: ", tcp4, stamp, events.Event{
			Time: stamp, Host: "box", Component: events.Kernel, Action: events.Blocked, Protocol: "tcp",
			Source: ap("198.18.0.1:40000"), Destination: ap("198.18.0.2:22"), Reason: events.ReasonNotAllowlisted,
		}},
		{"allowed, default prefix", &Reader{}, "g0efilter allowed: ", udp6, stamp, events.Event{
			Time: stamp, Component: events.Kernel, Action: events.Allowed, Protocol: "udp",
			Source: ap("[fd00:18::1]:40001"), Destination: ap("[fd00:18::2]:443"), Reason: events.ReasonAllowlisted,
		}},
		{"pinned, default prefix", &Reader{}, "g0efilter pinned: ", udp6, stamp, events.Event{
			Time: stamp, Component: events.Kernel, Action: events.Allowed, Protocol: "udp",
			Source: ap("[fd00:18::1]:40001"), Destination: ap("[fd00:18::2]:443"), Reason: events.ReasonPinned,
		}},
		{"own prefixes", &Reader{AllowPrefix: "ok ", BlockPrefix: "no "}, "no ", udp6, stamp, events.Event{
			Time: stamp, Component: events.Kernel, Action: events.Blocked, Protocol: "udp",
			Source: ap("[fd00:18::1]:40001"), Destination: ap("[fd00:18::2]:443"), Reason: events.ReasonNotAllowlisted,
		}},
		{"forged mark", &Reader{Host: "box"}, "g0efilter forged mark: ", tcp4, stamp, events.Event{
			Time: stamp, Host: "box", Component: events.Kernel, Action: events.Blocked, Protocol: "tcp",
			Source: ap("198.18.0.1:40000"), Destination: ap("198.18.0.2:22"), Reason: events.ReasonForgedMark,
		}},
		{"local service", &Reader{}, "g0efilter local service: ", udp6, stamp, events.Event{
			Time: stamp, Component: events.Kernel, Action: events.Blocked, Protocol: "udp",
			Source: ap("[fd00:18::1]:40001"), Destination: ap("[fd00:18::2]:443"), Reason: events.ReasonLocalService,
		}},
		{"fixed prefixes beside own ones", &Reader{AllowPrefix: "ok ", BlockPrefix: "no ", PinnedPrefix: "pin "},
			DefaultLocalServicePrefix, tcp4, stamp, events.Event{
				Time: stamp, Component: events.Kernel, Action: events.Blocked, Protocol: "tcp",
				Source: ap("198.18.0.1:40000"), Destination: ap("198.18.0.2:22"), Reason: events.ReasonLocalService,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := tt.reader.event(slog.New(slog.DiscardHandler), tt.prefix, tt.payload, tt.ts)
			require.True(t, ok)
			assert.NotZero(t, e.Flow)
			e.Flow = 0
			assert.Equal(t, tt.want, e)
			assert.Equal(t, Stats{Packets: 1, Events: 1}, tt.reader.Stats())
		})
	}
}

// TestReaderVerdict maps each prefix the ruleset logs with to its verdict,
// with the Reader's defaults and with prefixes of its own.
func TestReaderVerdict(t *testing.T) {
	type verdict struct {
		action events.Action
		reason events.Reason
		ok     bool
	}
	own := &Reader{AllowPrefix: "ok ", BlockPrefix: "no ", PinnedPrefix: "pin "}
	tests := []struct {
		reader *Reader
		prefix string
		want   verdict
	}{
		{&Reader{}, "g0efilter blocked: ", verdict{events.Blocked, events.ReasonNotAllowlisted, true}},
		{&Reader{}, "g0efilter allowed: ", verdict{events.Allowed, events.ReasonAllowlisted, true}},
		{&Reader{}, "g0efilter pinned: ", verdict{events.Allowed, events.ReasonPinned, true}},
		{&Reader{}, "g0efilter forged mark: ", verdict{events.Blocked, events.ReasonForgedMark, true}},
		{&Reader{}, "g0efilter local service: ", verdict{events.Blocked, events.ReasonLocalService, true}},
		{&Reader{}, "g0efilter local service:", verdict{}},
		{&Reader{}, "g0efilter spoofed source: ", verdict{events.Blocked, events.ReasonSpoofedSource, true}},
		{&Reader{}, "g0efilter injected: ", verdict{events.Blocked, events.ReasonInjected, true}},
		{own, "g0efilter forged conn: ", verdict{events.Blocked, events.ReasonForgedConn, true}},
		{own, "g0efilter denied: ", verdict{events.Blocked, events.ReasonDenied, true}},
		{&Reader{}, "g0efilter would block: ", verdict{events.WouldBlock, events.ReasonNotAllowlisted, true}},
		{own, "g0efilter would deny: ", verdict{events.WouldBlock, events.ReasonDenied, true}},
		{&Reader{}, "", verdict{}},
		{own, "no ", verdict{events.Blocked, events.ReasonNotAllowlisted, true}},
		{own, "ok ", verdict{events.Allowed, events.ReasonAllowlisted, true}},
		{own, "pin ", verdict{events.Allowed, events.ReasonPinned, true}},
		{own, "g0efilter blocked: ", verdict{}},
		{own, "g0efilter forged mark: ", verdict{events.Blocked, events.ReasonForgedMark, true}},
		{own, "g0efilter local service: ", verdict{events.Blocked, events.ReasonLocalService, true}},
	}
	for _, tt := range tests {
		var got verdict
		got.action, got.reason, got.ok = tt.reader.verdict(tt.prefix)
		assert.Equal(t, tt.want, got, "%+v %q", tt.reader, tt.prefix)
	}
}

func TestReaderEventTime(t *testing.T) {
	var r Reader
	before := time.Now()
	for _, ts := range []time.Time{{}, time.Unix(0, 0)} {
		e, ok := r.event(slog.New(slog.DiscardHandler), DefaultBlockPrefix, ipv4(ProtoICMP, v4a, v4b, nil, nil), ts)
		require.True(t, ok)
		assert.False(t, e.Time.Before(before), "no timestamp from the kernel: the time of reading")
		assert.Equal(t, "icmp", e.Protocol)
	}
}

func TestReaderEventSkips(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var r Reader
	tcp4 := ipv4(ProtoTCP, v4a, v4b, nil, tcpSYN(40000, 22))

	for range 2 {
		_, ok := r.event(log, "someone else: ", tcp4, time.Time{})
		assert.False(t, ok)
	}
	_, ok := r.event(log, DefaultBlockPrefix, nil, time.Time{})
	assert.False(t, ok)
	_, ok = r.event(log, DefaultAllowPrefix, []byte{0x45, 0, 0}, time.Time{})
	assert.False(t, ok)

	assert.Equal(t, Stats{Packets: 4, UnknownPrefix: 2, Malformed: 2}, r.Stats())
	assert.Equal(t, 1, bytes.Count(buf.Bytes(), []byte("unknown log prefix")), "warned once: %s", buf.String())
	assert.Contains(t, buf.String(), `prefix="someone else: "`)
}

func TestReaderFlushTimeout(t *testing.T) {
	for d, want := range map[time.Duration]uint32{
		0: 0, -time.Second: 0, time.Millisecond: 1, 10 * time.Millisecond: 1,
		11 * time.Millisecond: 2, time.Second: 100, 1 << 62: math.MaxUint32,
	} {
		r := Reader{FlushTimeout: d}
		assert.Equal(t, want, r.flushTimeout(), "%v", d)
	}
}
