// Package nflog turns the packets that g0efilter's nftables rules log to an
// nflog group into [events.Event] values: the kernel's own verdicts, for
// connections that never reach a proxy or the DNS server.
//
// Typical usage:
//
//	r := &nflog.Reader{
//		Group:  100, // nftrules.Config.NflogGroup
//		Host:   hostname,
//		Logger: logger,
//		Sink:   queue, // an events.Sink that does not block
//	}
//	g.Go(func() error { return r.Run(ctx) }) // returns nil when ctx ends
//
// # Prefixes
//
// The log statement's prefix says what the rule did: packets logged with
// [Reader.BlockPrefix] ("g0efilter blocked: ", the nftrules default) become
// [events.Blocked] events with reason [events.ReasonNotAllowlisted], those
// logged with [Reader.AllowPrefix] ("g0efilter allowed: ") become
// [events.Allowed] events with reason [events.ReasonAllowlisted] and no
// Rule, since the kernel does not say which set element matched, and those
// logged with [Reader.PinnedPrefix] ("g0efilter pinned: ") become
// [events.Allowed] events with reason [events.ReasonPinned].
//
// In audit mode the ruleset lets through what enforce mode refuses, and
// logs it with one of two fixed prefixes that give [events.WouldBlock]
// events: [DefaultWouldBlockPrefix] with reason [events.ReasonNotAllowlisted]
// and [DefaultWouldDenyPrefix] with [events.ReasonDenied].
//
// Six prefixes are fixed, as in nftrules, and give [events.Blocked]
// events. [DefaultDeniedPrefix] gives [events.ReasonDenied], for a
// connection to a denied address. The others are attempts to get around
// the filter. [DefaultForgedMarkPrefix]
// ("g0efilter forged mark: ") gives reason [events.ReasonForgedMark], for a
// packet that carries the filter's bypass mark from a socket outside its
// cgroup; [DefaultLocalServicePrefix] ("g0efilter local service: ") gives
// [events.ReasonLocalService], for a connection from the workload to one of
// the filter's local services other than through the redirect;
// [DefaultSpoofedSourcePrefix] gives [events.ReasonSpoofedSource], for a
// packet with a source address that is not the namespace's;
// [DefaultInjectedPrefix] gives [events.ReasonInjected], for a frame
// written to loopback by a packet socket; [DefaultForgedConnPrefix] gives
// [events.ReasonForgedConn], for a packet written into one of the filter's
// own connections from outside its cgroup. Frames
// dropped at a device's egress hook are counted by the ruleset, not logged:
// the filter reports them itself, with [events.ReasonRawFrame].
//
// Packets with other prefixes are counted and skipped. Each event gets its
// own Flow ([events.NewFlowID]): a logged packet is the first of a
// connection that no other component sees.
//
// # Decoding
//
// [Decode] is a pure function, usable on any OS: it reads the addresses
// from an IPv4 or IPv6 header, walks IPv4 options and IPv6 extension
// headers, and reads TCP, UDP, UDP-Lite, SCTP and DCCP ports. It never
// panics; a packet it cannot read is counted in [Stats.Malformed] and
// skipped.
//
// # Losses
//
// The kernel queues log messages in the socket's receive buffer. When a
// flood of blocked packets fills it, the kernel drops messages and the next
// read fails with ENOBUFS: the Reader counts it in [Stats.Overflows], logs
// a warning and goes on reading. [Reader.QThresh] batches messages and
// [Reader.ReadBuffer] enlarges the buffer.
//
// The socket is Linux only; on other systems [Reader.Run] returns
// [ErrUnsupported].
package nflog
