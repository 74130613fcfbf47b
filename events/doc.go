// Package events carries every decision g0efilter takes, as a typed [Event],
// to the places that want to know: the log, a file, the dashboard, Gotify.
//
// Typical usage, in a component that decides:
//
//	sink.Emit(events.Event{
//		Time:      time.Now(),
//		Component: events.HTTPS,
//		Action:    events.Blocked,
//		Name:      "evil.example",
//		Reason:    events.ReasonNotAllowlisted,
//		Flow:      flow, // from events.NewFlowID(), once per connection
//	})
//
// and, where the program is wired together:
//
//	file, err := events.OpenFile("/var/log/g0efilter.jsonl", events.FileConfig{})
//	if err != nil {
//		return err
//	}
//	fileQ := events.NewQueue(file, 0)
//	sink := events.Multi(events.NewLogSink(logger), fileQ, dashboardQ, notifier)
//	...
//	fileQ.Close(ctx) // delivers what is queued
//	file.Close()
//
// A [Sink] must not block the caller; sinks that do I/O sit behind a
// [Queue], which drops (and counts) events rather than wait. This package
// imports nothing else of the module.
//
// # Wire format
//
// [Event.MarshalJSON] writes, and [Event.UnmarshalJSON] reads, one JSON
// object per event. It is what the file sink writes, one object a line, and
// what the dashboard ingests and serves. Keys appear in this order; all but
// time, component and action are left out when empty (a zero port, a zero
// flow):
//
//	time       string  the decision's time, RFC 3339 with nanoseconds, in
//	                   UTC: "2026-11-24T21:52:26.123456789Z". Trailing zeros
//	                   of the fraction are dropped. Readers accept any
//	                   RFC 3339 offset and convert to UTC.
//	host       string  the filter that decided (HOSTNAME)
//	component  string  "https", "http", "dns", "kernel" (others may be added)
//	action     string  "allowed", "blocked", "error", "would-block" or "changed"
//	protocol   string  "tcp" or "udp"
//	src_ip     string  client address: "10.0.0.2", "2001:db8::2"
//	src_port   number  client port, 1 to 65535; only with src_ip
//	dst_ip     string  original destination address
//	dst_port   number  original destination port; only with dst_ip
//	name       string  TLS server name, HTTP host or DNS question name
//	qtype      string  DNS question type: "A", "AAAA", ...
//	reason     string  why, in stable words: "not allowlisted", ...
//	detail     string  what varies per event, such as an error text
//	rule       string  the policy entry that matched: "*.example.com"
//	flow       string  the flow ID as a decimal string ("1844674407370955161"),
//	                   since a uint64 does not fit a JavaScript number
//
// Reading is strict, so that a receiver can reject a bad event alone: time,
// component and action must be present, action must be one of the five
// names, addresses must parse, ports and flow must fit their types, and a
// port needs its address. The error wraps [ErrInvalid] and names the field.
// Keys not listed here are ignored, so that newer filters can add some.
//
// # Logging
//
// [NewLogSink] writes events to a [log/slog] logger: allowed at INFO,
// blocked at WARN, errors at ERROR (see [LogLevel]), with the attribute keys
// [KeyHost], [KeyName] and so on. [ParseLevel] reads LOG_LEVEL, which adds
// TRACE ([LevelTrace]) below DEBUG; [ReplaceLevelNames] makes handlers print
// it as "TRACE".
//
// # Files
//
// A [File] appends the wire format, one event a line, with one write per
// event and size-based rotation (path.1, path.2, ...). See [FileConfig].
package events
