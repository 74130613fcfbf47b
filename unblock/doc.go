// Package unblock is the filter's side of remote unblock: it polls the
// dashboard for requests to allow a name or address, adds each to the
// policy file with a safe edit, and acknowledges the result.
//
// Typical usage, in a filter whose policy comes from a file:
//
//	client, _ := dashboardapi.NewClient(dashboardapi.ClientConfig{URL: dashboardURL, APIKey: key})
//	p := &unblock.Poller{
//		Source:   client,
//		Hostname: hostname,
//		Policy:   &policy.Editor{Path: "/app/policy.yaml"},
//		Interval: 10 * time.Second,
//	}
//	go p.Run(ctx)
//
// The Poller never changes the live policy itself: it edits the file
// (comments and layout kept, nothing duplicated, safe on a single-file bind
// mount; see [policy.Editor]) and the policy watcher reloads it, exactly as
// after a hand edit. A request that cannot be applied — a filter whose
// policy comes from ALLOWLIST_* variables has no file to edit — is
// acknowledged as failed, with the reason.
//
// While the dashboard cannot be reached the Poller keeps trying, waiting
// twice as long each time, up to five minutes, and logs when the trouble
// starts and ends rather than at every poll.
package unblock
