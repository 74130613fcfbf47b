package suggest

import (
	"cmp"
	"math"
	"net/netip"
	"slices"

	"golang.org/x/net/publicsuffix"

	"github.com/g0lab/g0efilter/events"
)

// Destination is one thing the workload reached or tried to: a name, or
// an address reached without a name, on a protocol and port.
type Destination struct {
	// Name is the name in canonical (ASCII) form, "" for an address
	// reached without one.
	Name string
	// Addr is the address connected to: for a name, the one a proxy last
	// saw it at, or the one a DNS answer gave it when the kernel saw the
	// connection; invalid for a DNS question.
	Addr netip.Addr
	// Proto is "tcp" or "udp", "" for a DNS question.
	Proto string
	// Port is the destination port, 0 for a DNS question.
	Port uint16
	// Domain is Name's registrable domain by the public suffix list
	// (example.co.uk for api.example.co.uk), Name itself when it has
	// none, "" for an address: what a view groups by.
	Domain string
	// Entry is the entry of [Suggest], with the same Options, that
	// allows this destination: its name or address entry, or the
	// wildcard that covers it.
	Entry string
	// Verdict is the latest decision: [events.Allowed],
	// [events.Blocked] or [events.WouldBlock].
	Verdict events.Action
	// Seen counts the decisions about it.
	Seen Seen
}

// Destinations returns every destination o kept, with the entry of
// Suggest(o, opt) that allows each: would-block first, then blocked, then
// allowed (by their latest verdict); within each by Domain, Name, Addr,
// Port and Proto. An address that DNS answers gave for several names is
// listed once for each name, as Suggest counts it for each.
func (o *Observations) Destinations(opt Options) []Destination {
	cover := map[string]string{} // exact entry -> the suggested entry
	for _, e := range Suggest(o, opt) {
		cover[e.Value] = e.Value
		for _, n := range e.Covers {
			cover[n] = e.Value
		}
	}
	out := make([]Destination, 0, len(o.dests))
	for k, d := range o.dests {
		o.each(k, opt.DNSMode, func(name, entry string) {
			dst := Destination{Name: name, Addr: k.addr, Proto: k.proto.String(), Port: k.port,
				Entry: cover[entry], Verdict: d.verdict, Seen: d.seen}
			if k.name != "" {
				dst.Addr = d.at
			}
			if name != "" {
				dst.Domain = name
				if base, err := publicsuffix.EffectiveTLDPlusOne(name); err == nil {
					dst.Domain = base
				}
			}
			out = append(out, dst)
		})
	}
	slices.SortFunc(out, func(a, b Destination) int {
		return cmp.Or(
			cmp.Compare(Urgency(a.Verdict), Urgency(b.Verdict)),
			cmp.Compare(a.Domain, b.Domain),
			cmp.Compare(a.Name, b.Name),
			a.Addr.Compare(b.Addr),
			cmp.Compare(a.Port, b.Port),
			cmp.Compare(a.Proto, b.Proto),
		)
	})
	return out
}

// Urgency orders verdicts by what needs a person first, as Destinations
// does: would-block (0), then blocked (1), then allowed (2).
func Urgency(a events.Action) int {
	switch a {
	case events.WouldBlock:
		return 0
	case events.Blocked:
		return 1
	}
	return 2
}

// Merge adds what other observed to o, as if o had read other's events
// too, within o's MaxDestinations: the counts add up, and a destination
// both saw takes the verdict of the later one.
func (o *Observations) Merge(other *Observations) {
	o.Events += other.Events
	o.Skipped += other.Skipped
	o.Overflow += other.Overflow
	if !other.From.IsZero() && (o.From.IsZero() || other.From.Before(o.From)) {
		o.From = other.From
	}
	if other.To.After(o.To) {
		o.To = other.To
	}
	// In a fixed order, so that what a bound leaves out does not depend
	// on a map's.
	keys := make([]dkey, 0, len(other.dests))
	for k := range other.dests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	for _, k := range keys {
		if d := o.dest(k); d != nil {
			d.merge(other.dests[k])
		} else {
			o.Overflow = addCount(o.Overflow, other.dests[k].seen.Count-1) // dest counted one
		}
	}
	addrs := make([]netip.Addr, 0, len(other.answered))
	for a := range other.answered {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	for _, a := range addrs {
		for _, n := range other.answered[a] {
			o.answer(a, n)
		}
	}
}

// merge adds what o knows of the same destination.
func (d *dest) merge(o *dest) {
	if !o.seen.Last.Before(d.seen.Last) {
		d.verdict = o.verdict
		if o.at.IsValid() {
			d.at = o.at
		}
	} else if !d.at.IsValid() {
		d.at = o.at
	}
	d.seen.merge(&o.seen)
}

func compareKeys(a, b dkey) int {
	return cmp.Or(
		cmp.Compare(a.name, b.name),
		a.addr.Compare(b.addr),
		cmp.Compare(a.proto, b.proto),
		cmp.Compare(a.port, b.port),
	)
}

// addCount adds without going past the largest int.
func addCount(a, b int) int {
	if b > 0 && a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}
