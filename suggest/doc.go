// Package suggest turns what a workload did, as the filter's events tell
// it, into a policy a person can review: watch first, then allow.
//
// Typical usage, with the events of a LOG_FILE:
//
//	var o suggest.Observations
//	for _, e := range evs { // events.Event, decoded from the file's lines
//		o.Add(e)
//	}
//	entries := suggest.Suggest(&o, suggest.Options{})
//	suggest.Write(os.Stdout, "suggested from events.jsonl", entries)
//
// # The rules
//
//   - A name the workload asked for (a DNS question, a TLS server name, an
//     HTTP Host) becomes an exact entry; on a port other than 80 and 443
//     through the proxies, "name:port".
//   - Where several names share a registrable domain (by the public suffix
//     list: a.example.co.uk and b.example.co.uk share example.co.uk), a
//     wildcard stands for them; never one over a public suffix, and the
//     registrable domain itself stays an exact entry when it was seen.
//   - A connection to an address the filter's resolver answered for a name
//     is suggested by that name ("tcp/name:port"; in dns mode the name
//     alone, which allows every port); an address is suggested only when
//     no name was seen for it ("tcp/198.51.100.7:5432").
//   - Attempts to get around the filter, denied destinations and
//     malformed requests are never a reason to allow anything: they are
//     counted, not suggested.
//   - A filter in audit mode lets traffic through and reports what it
//     would refuse (events.WouldBlock): that counts as blocked traffic
//     does, and is what audit mode is for.
//
// Each entry carries a comment saying what it covers and how often it was
// seen, blocked and would block. [Missing] keeps what a policy lacks, and
// [Diff] shows it as a unified diff of the policy file (see
// policy.Append).
//
// # What was observed
//
// [Observations.Destinations] lists every destination with its counts,
// its latest verdict and the suggested entry that allows it, would-block
// first: what a view of the workload's traffic shows. Observations
// encode to JSON with a version ([Observations.MarshalJSON]), so a
// filter can keep its own record in a file and a tool suggest from it
// later; [Observations.Merge] adds one set to another. They keep at most
// [Observations.MaxDestinations] destinations (10000 by default), so a
// workload asking for endless random names cannot grow them without
// limit: what is beyond is counted in Overflow.
package suggest
