// Package gotify sends a Gotify push notification when g0efilter blocks
// traffic.
//
// Typical usage, where the filter is wired together:
//
//	n, err := gotify.New(gotify.Config{
//		URL:     notificationHost, // NOTIFICATION_HOST
//		Token:   notificationKey,  // NOTIFICATION_KEY
//		Host:    hostname,
//		Backoff: 60 * time.Second,
//		Ignore:  []string{"*.internal.example"},
//		Logger:  logger,
//	})
//	if err != nil {
//		return err
//	}
//	sink := events.Multi(logSink, n)
//	...
//	n.Close(ctx) // sends what is queued
//
// A [Notifier] is an [events.Sink]. It looks only at [events.Blocked]
// events, and sends at most one message per target (the event's name, or
// its destination address) per backoff window, none for ignored names. Emit
// never waits for the network: messages go through an [events.Queue] to one
// goroutine, which posts them and retries failures a few times. A Gotify
// that cannot be reached is logged once per backoff window, not once per
// event.
//
// # Messages
//
// Each message is a POST to {URL}/message with the application token in
// the X-Gotify-Key header and a JSON body, as Gotify's message API takes
// it:
//
//	{"title":"g0efilter web-1: blocked evil.example",
//	 "message":"https blocked evil.example\n10.0.0.2:51234 → 93.184.215.14:443 (tcp)\nreason: not allowlisted\ntime: 2026-11-24T21:52:26Z",
//	 "priority":5}
//
// The message names the component, the source and destination, the reason
// and, when there is one, the detail. An attempt to get around the filter
// ([events.Reason.Bypass]: a forged mark, a raw frame, ...) is titled as
// one: "g0efilter web-1: bypass attempt (raw frame)".
package gotify
