package suggest_test

import (
	"net/netip"
	"os"
	"time"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/suggest"
)

func Example() {
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	var o suggest.Observations
	for i, name := range []string{"api.example.com", "cdn.example.com", "www.example.com", "github.com"} {
		o.Add(events.Event{Time: at.Add(time.Duration(i) * time.Second), Component: events.HTTPS, Action: events.Blocked,
			Protocol: "tcp", Name: name, Destination: netip.MustParseAddrPort("198.51.100.1:443"), Reason: events.ReasonNotAllowlisted})
	}
	o.Add(events.Event{Time: at, Component: events.Kernel, Action: events.Blocked, Protocol: "udp",
		Destination: netip.MustParseAddrPort("203.0.113.9:53"), Reason: events.ReasonNotAllowlisted})
	suggest.Write(os.Stdout, "from the example", suggest.Suggest(&o, suggest.Options{}))
	// Output:
	// # from the example
	// allowlist:
	//   ips:
	//     - "udp/203.0.113.9:53" # seen 1 time, all blocked
	//   domains:
	//     - "*.example.com" # covers api.example.com, cdn.example.com, www.example.com; seen 3 times, all blocked
	//     - "github.com"    # seen 1 time, all blocked
}
