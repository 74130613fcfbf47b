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
//	})
//
// A [Sink] must not block the caller; sinks that do I/O sit behind a queue.
// This package imports nothing else of the module.
package events
