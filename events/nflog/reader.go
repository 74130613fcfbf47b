package nflog

import (
	"errors"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/g0lab/g0efilter/events"
)

// Defaults for the zero fields of a [Reader].
const (
	DefaultGroup        uint16 = 100
	DefaultBufSize      uint32 = 96
	DefaultQThresh      uint32 = 50
	DefaultAllowPrefix         = "g0efilter allowed: "
	DefaultBlockPrefix         = "g0efilter blocked: "
	DefaultPinnedPrefix        = "g0efilter pinned: "
)

// Log prefixes of the rules that keep the workload from getting around the
// filter, the same as nftrules.ForgedMarkLogPrefix,
// nftrules.LocalServiceLogPrefix, nftrules.SpoofedSourceLogPrefix,
// nftrules.InjectedLogPrefix and nftrules.ForgedConnLogPrefix. The ruleset does not let them be changed,
// so neither does the Reader: packets logged with them become
// [events.Blocked] events whatever its fields say.
const (
	// DefaultForgedMarkPrefix is the prefix of the rule that drops a
	// packet carrying the filter's bypass mark from a socket outside the
	// filter's cgroup; its event has reason [events.ReasonForgedMark].
	DefaultForgedMarkPrefix = "g0efilter forged mark: "
	// DefaultLocalServicePrefix is the prefix of the rules that refuse a
	// connection from the workload to one of the filter's local services
	// (a proxy, the DNS server, a guarded port or address) other than
	// through the redirect; its event has reason
	// [events.ReasonLocalService].
	DefaultLocalServicePrefix = "g0efilter local service: "
	// DefaultSpoofedSourcePrefix is the prefix of the rule that drops a
	// packet from a user's socket whose source address is not one of the
	// namespace's; its event has reason [events.ReasonSpoofedSource].
	DefaultSpoofedSourcePrefix = "g0efilter spoofed source: "
	// DefaultInjectedPrefix is the prefix of the rule that drops a frame
	// written to loopback by a packet socket; its event has reason
	// [events.ReasonInjected].
	DefaultInjectedPrefix = "g0efilter injected: "
	// DefaultForgedConnPrefix is the prefix of the rule that drops a
	// packet written into one of the filter's own connections from a
	// socket outside its cgroup; its event has reason
	// [events.ReasonForgedConn].
	DefaultForgedConnPrefix = "g0efilter forged conn: "
	// DefaultDeniedPrefix is the prefix of the rules that refuse a
	// connection to a denied address; its event has reason
	// [events.ReasonDenied].
	DefaultDeniedPrefix = "g0efilter denied: "
)

// Log prefixes of the rules that let through, in audit mode, what enforce
// mode would refuse: the same as nftrules.WouldBlockLogPrefix and
// nftrules.WouldDenyLogPrefix. Packets logged with them become
// [events.WouldBlock] events.
const (
	// DefaultWouldBlockPrefix is the prefix of the rule that accepts a new
	// connection that is not allowlisted; its event has reason
	// [events.ReasonNotAllowlisted].
	DefaultWouldBlockPrefix = "g0efilter would block: "
	// DefaultWouldDenyPrefix is the prefix of the rule that accepts a new
	// connection to a denied address; its event has reason
	// [events.ReasonDenied].
	DefaultWouldDenyPrefix = "g0efilter would deny: "
)

// ErrUnsupported is returned by [Reader.Run] on operating systems other
// than Linux.
var ErrUnsupported = errors.New("nflog: netfilter logging is only available on Linux")

// Attribute keys of the Reader's log lines.
const (
	keyGroup  = "group"
	keyPrefix = "prefix"
	keyErr    = "err"
	keyCount  = "count"
)

// Reader reads the packets that the ruleset's log statements send to an
// nflog group and emits one [events.Event] for each. Its zero value reads
// group 100 in the calling process's network namespace and discards the
// events. Set its fields before calling [Reader.Run] and do not change them
// afterwards; do not copy a Reader once it has run.
type Reader struct {
	// Group is the nflog group to bind, as in the rules' "log group N".
	// Zero means 100 (nftrules.Config.NflogGroup's default).
	Group uint16
	// NetNS is an open file descriptor of the network namespace to read
	// in (from /run/netns/NAME or /proc/PID/ns/net). Zero means the
	// calling process's namespace.
	NetNS int
	// BufSize is how many bytes of each packet the kernel copies to the
	// Reader (the group's copy range, NFLOG_BUFSIZE). The addresses and
	// ports need the IP header, its options or extension headers and the
	// first 4 bytes of the transport header. Zero means 96, enough for an
	// IPv4 header with the longest options or an IPv6 header with 52 bytes
	// of extension headers.
	BufSize uint32
	// QThresh is how many packets the kernel queues for the group before
	// it sends them in one batch (NFLOG_QTHRESH); a batch is also sent
	// when FlushTimeout passes or the kernel's buffer fills up. Larger
	// batches cost fewer system calls under a flood of blocked packets.
	// Zero means 50.
	QThresh uint32
	// FlushTimeout is how long the kernel holds a batch that has not
	// reached QThresh packets, rounded up to a multiple of 10 ms. The
	// kernel gives no timestamp for packets on the output hook, so events
	// carry the time they are read, up to this much after the packet.
	// Zero means the kernel's default, one second.
	FlushTimeout time.Duration
	// ReadBuffer is the size in bytes of the socket's receive buffer,
	// which absorbs bursts while the Reader is busy; when it overflows the
	// kernel drops messages and Run counts an overflow. Zero means the
	// system default (net.core.rmem_default); a value above
	// net.core.rmem_max is capped to it.
	ReadBuffer int
	// AllowPrefix is the log prefix of the rules that accept a
	// connection; such packets become [events.Allowed] events with reason
	// [events.ReasonAllowlisted]. Empty means "g0efilter allowed: ".
	AllowPrefix string
	// BlockPrefix is the log prefix of the rules that drop or reject a
	// connection; such packets become [events.Blocked] events with reason
	// [events.ReasonNotAllowlisted]. Empty means "g0efilter blocked: "
	// (nftrules.Config.LogPrefix's default). Packets with a prefix other
	// than AllowPrefix, BlockPrefix, PinnedPrefix and the fixed ones
	// (DefaultForgedMarkPrefix and the others above) are counted
	// in [Stats.UnknownPrefix] and skipped.
	BlockPrefix string
	// PinnedPrefix is the log prefix of dns mode's rules that accept a
	// connection to an address pinned from an allowed DNS answer; such
	// packets become [events.Allowed] events with reason
	// [events.ReasonPinned]. Empty means "g0efilter pinned: ".
	PinnedPrefix string
	// Host identifies the filter in the events (Event.Host).
	Host string
	// Logger receives the Reader's own troubles: overflows, malformed
	// packets, receive errors. Nil means discard.
	Logger *slog.Logger
	// Sink receives the events. Nil means [events.Discard].
	Sink events.Sink
	// NotifyStarted, if not nil, is called once Run has bound the group:
	// packets logged from then on are read.
	NotifyStarted func()

	packets   atomic.Uint64
	emitted   atomic.Uint64
	malformed atomic.Uint64
	unknown   atomic.Uint64
	overflows atomic.Uint64
	errs      atomic.Uint64
}

// Stats are the Reader's counters, cumulative over all runs.
type Stats struct {
	Packets       uint64 // log messages received
	Events        uint64 // events emitted
	Malformed     uint64 // messages without a packet that Decode can read
	UnknownPrefix uint64 // messages whose prefix is none that the Reader knows
	Overflows     uint64 // times the kernel dropped messages because the socket buffer was full (ENOBUFS)
	Errors        uint64 // other receive errors
}

// Stats returns the Reader's counters. It may be called at any time, from
// any goroutine.
func (r *Reader) Stats() Stats {
	return Stats{
		Packets:       r.packets.Load(),
		Events:        r.emitted.Load(),
		Malformed:     r.malformed.Load(),
		UnknownPrefix: r.unknown.Load(),
		Overflows:     r.overflows.Load(),
		Errors:        r.errs.Load(),
	}
}

func (r *Reader) group() uint16 {
	if r.Group == 0 {
		return DefaultGroup
	}
	return r.Group
}

func (r *Reader) bufSize() uint32 {
	if r.BufSize == 0 {
		return DefaultBufSize
	}
	return r.BufSize
}

func (r *Reader) qthresh() uint32 {
	if r.QThresh == 0 {
		return DefaultQThresh
	}
	return r.QThresh
}

// flushTimeout returns FlushTimeout in the kernel's unit, 10 ms.
func (r *Reader) flushTimeout() uint32 {
	const unit = 10 * time.Millisecond
	if r.FlushTimeout <= 0 {
		return 0
	}
	return uint32(min((r.FlushTimeout+unit-1)/unit, math.MaxUint32))
}

func (r *Reader) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

func (r *Reader) sink() events.Sink {
	if r.Sink == nil {
		return events.Discard
	}
	return r.Sink
}

// verdict maps a log prefix to the event's action and reason.
func (r *Reader) verdict(prefix string) (events.Action, events.Reason, bool) {
	allow, block, pinned := r.AllowPrefix, r.BlockPrefix, r.PinnedPrefix
	if allow == "" {
		allow = DefaultAllowPrefix
	}
	if block == "" {
		block = DefaultBlockPrefix
	}
	if pinned == "" {
		pinned = DefaultPinnedPrefix
	}
	switch prefix {
	case DefaultForgedMarkPrefix:
		return events.Blocked, events.ReasonForgedMark, true
	case DefaultLocalServicePrefix:
		return events.Blocked, events.ReasonLocalService, true
	case DefaultSpoofedSourcePrefix:
		return events.Blocked, events.ReasonSpoofedSource, true
	case DefaultInjectedPrefix:
		return events.Blocked, events.ReasonInjected, true
	case DefaultForgedConnPrefix:
		return events.Blocked, events.ReasonForgedConn, true
	case DefaultDeniedPrefix:
		return events.Blocked, events.ReasonDenied, true
	case DefaultWouldBlockPrefix:
		return events.WouldBlock, events.ReasonNotAllowlisted, true
	case DefaultWouldDenyPrefix:
		return events.WouldBlock, events.ReasonDenied, true
	case block:
		return events.Blocked, events.ReasonNotAllowlisted, true
	case allow:
		return events.Allowed, events.ReasonAllowlisted, true
	case pinned:
		return events.Allowed, events.ReasonPinned, true
	}
	return 0, "", false
}

// event turns one logged packet into an event, counting and logging what
// it cannot use. ts is the packet's timestamp, zero if the kernel gave
// none (it gives none on the output hook); now is used then.
func (r *Reader) event(log *slog.Logger, prefix string, payload []byte, ts time.Time) (events.Event, bool) {
	r.packets.Add(1)
	action, reason, ok := r.verdict(prefix)
	if !ok {
		if r.unknown.Add(1) == 1 {
			log.Warn("nflog: skipping packets with an unknown log prefix", keyPrefix, prefix)
		}
		return events.Event{}, false
	}
	p, err := Decode(payload)
	if err != nil {
		r.malformed.Add(1)
		log.Debug("nflog: skipping packet", keyErr, err)
		return events.Event{}, false
	}
	if ts.IsZero() || ts.Unix() == 0 {
		ts = time.Now()
	}
	r.emitted.Add(1)
	return events.Event{
		Time:        ts,
		Host:        r.Host,
		Component:   events.Kernel,
		Action:      action,
		Protocol:    p.Protocol(),
		Source:      p.Source,
		Destination: p.Destination,
		Reason:      reason,
		Flow:        events.NewFlowID(),
	}, true
}
