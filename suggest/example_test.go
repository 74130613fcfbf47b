package suggest_test

import (
	"encoding/json"
	"fmt"
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

// A filter in audit mode lets everything through and reports what it
// would refuse; the destinations show what to review first.
func ExampleObservations_Destinations() {
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	var o suggest.Observations
	for i, name := range []string{"api.example.com", "cdn.example.com", "www.example.com"} {
		o.Add(events.Event{Time: at.Add(time.Duration(i) * time.Second), Component: events.HTTPS, Action: events.WouldBlock,
			Protocol: "tcp", Name: name, Destination: netip.MustParseAddrPort("198.51.100.1:443"), Reason: events.ReasonNotAllowlisted})
	}
	o.Add(events.Event{Time: at, Component: events.HTTPS, Action: events.Allowed, Protocol: "tcp", Name: "github.com",
		Destination: netip.MustParseAddrPort("140.82.121.4:443"), Reason: events.ReasonAllowlisted, Rule: "github.com"})
	o.Add(events.Event{Time: at, Component: events.Kernel, Action: events.WouldBlock, Protocol: "tcp",
		Destination: netip.MustParseAddrPort("203.0.113.9:5432"), Reason: events.ReasonNotAllowlisted})
	for _, d := range o.Destinations(suggest.Options{}) {
		what := d.Name
		if what == "" {
			what = d.Addr.String()
		}
		fmt.Printf("%-11s %-11s %-15s %s/%d -> %s\n", d.Verdict, d.Domain, what, d.Proto, d.Port, d.Entry)
	}
	// Output:
	// would-block             203.0.113.9     tcp/5432 -> tcp/203.0.113.9:5432
	// would-block example.com api.example.com tcp/443 -> *.example.com
	// would-block example.com cdn.example.com tcp/443 -> *.example.com
	// would-block example.com www.example.com tcp/443 -> *.example.com
	// allowed     github.com  github.com      tcp/443 -> github.com
}

// Observations are kept in a file and read back, by a filter that keeps
// its own record or by a tool that reads it.
func ExampleObservations_MarshalJSON() {
	var o suggest.Observations
	o.Add(events.Event{Time: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), Component: events.DNS, Action: events.WouldBlock,
		Protocol: "udp", Name: "api.example.com", Reason: events.ReasonNotAllowlisted})
	data, err := json.Marshal(o)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(data))
	var back suggest.Observations
	if err := json.Unmarshal(data, &back); err != nil {
		panic(err)
	}
	for _, e := range suggest.Suggest(&back, suggest.Options{}) {
		fmt.Println(e.Value, "#", e.Comment())
	}
	// Output:
	// {"version":1,"events":1,"skipped":0,"from":"2026-12-03T10:00:00Z","to":"2026-12-03T10:00:00Z","destinations":[{"name":"api.example.com","verdict":"would-block","count":1,"would_block":1,"first":"2026-12-03T10:00:00Z","last":"2026-12-03T10:00:00Z"}]}
	// api.example.com # seen 1 time, all would block
}
