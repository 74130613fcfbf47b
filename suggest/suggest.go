package suggest

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/policy"
)

// DefaultWildcardMin is how many names below one registrable domain make
// [Suggest] propose a wildcard for it, when [Options.WildcardMin] is zero.
const DefaultWildcardMin = 3

// DefaultMaxDestinations bounds what [Observations] keep when
// MaxDestinations is zero.
const DefaultMaxDestinations = 10000

// Observations are what a workload did, gathered from the filter's events
// with [Observations.Add]: the names it asked for and the addresses it
// connected to, with their protocols and ports. The zero value is empty
// and ready to use; it is not safe for concurrent use.
//
// What they keep is bounded, so that a workload asking for millions of
// random names cannot grow them without limit: see MaxDestinations.
type Observations struct {
	// MaxDestinations bounds the distinct destinations kept, and the
	// pairs of an address and a name that DNS answers tied together:
	// beyond it an event about a new one is counted in Overflow and
	// dropped, while those kept go on counting. Zero means
	// DefaultMaxDestinations; negative means no bound (for a trusted file
	// read offline).
	MaxDestinations int
	// dests holds every destination kept.
	dests map[dkey]*dest
	// answered maps each address that a DNS answer gave to the names it
	// was given for, so that a connection to it is suggested by name.
	answered map[netip.Addr][]string
	answers  int // pairs in answered
	// Events counts the events read; Skipped, those that could not be a
	// reason to allow anything (attempts to get around the filter,
	// denied destinations, malformed requests, errors).
	Events, Skipped int
	// Overflow counts the events and answered addresses dropped beyond
	// MaxDestinations.
	Overflow int
	// From and To bound the events' times.
	From, To time.Time
}

// dkey identifies a destination: a name, on the protocol and port a
// proxy saw it on (AnyProto and 0 for a DNS question), or an address the
// kernel saw a connection to, tied to names only once every answer has
// been read.
type dkey struct {
	name  string
	addr  netip.Addr // kernel connections only
	proto policy.Proto
	port  uint16
}

// dest is what is known about one destination.
type dest struct {
	seen    Seen
	verdict events.Action // the decision at seen.Last
	at      netip.Addr    // for a name, the address a proxy last saw it at
}

func (d *dest) add(t time.Time, a events.Action, at netip.Addr) {
	if !t.Before(d.seen.Last) {
		d.verdict = a
		if at.IsValid() {
			d.at = at
		}
	} else if !d.at.IsValid() {
		d.at = at
	}
	d.seen.add(t, a)
}

// Seen counts the observations of a destination, or of what an entry
// covers.
type Seen struct {
	// Count is how many decisions; Blocked, how many refused the
	// traffic; WouldBlock, how many would have refused it but let it
	// through, in audit mode.
	Count, Blocked, WouldBlock int
	// First and Last bound their times.
	First, Last time.Time
}

func (s *Seen) add(t time.Time, a events.Action) {
	s.Count++
	switch a {
	case events.Blocked:
		s.Blocked++
	case events.WouldBlock:
		s.WouldBlock++
	}
	if s.First.IsZero() || t.Before(s.First) {
		s.First = t
	}
	if t.After(s.Last) {
		s.Last = t
	}
}

// Add records one event. A would-block event (audit mode) counts as a
// blocked one does: both are decisions to refuse, and what they refused
// is what a policy would have to allow.
func (o *Observations) Add(e events.Event) {
	if e.Action == events.Changed {
		return // the filter's, not the workload's
	}
	o.Events++
	if o.From.IsZero() || e.Time.Before(o.From) {
		o.From = e.Time
	}
	if e.Time.After(o.To) {
		o.To = e.Time
	}
	if e.Action != events.Allowed && !e.Action.Refused() || noReason(e.Reason) {
		o.Skipped++
		return
	}
	proto := policy.TCP
	if e.Protocol == "udp" {
		proto = policy.UDP
	}
	switch e.Component {
	case events.DNS:
		name, ok := hostName(e.Name)
		if !ok {
			o.Skipped++
			return
		}
		d := o.dest(dkey{name: name})
		if d == nil {
			return
		}
		d.add(e.Time, e.Action, netip.Addr{})
		for field := range strings.FieldsSeq(e.Detail) {
			if a, err := netip.ParseAddr(field); err == nil {
				o.answer(a.Unmap(), name)
			}
		}
	case events.HTTPS, events.HTTP:
		name, ok := hostName(e.Name)
		if !ok {
			o.Skipped++
			return
		}
		if d := o.dest(dkey{name: name, proto: proto, port: e.Destination.Port()}); d != nil {
			d.add(e.Time, e.Action, e.Destination.Addr().Unmap())
		}
	case events.Kernel:
		if !e.Destination.IsValid() || e.Destination.Port() == 0 {
			o.Skipped++
			return
		}
		if d := o.dest(dkey{addr: e.Destination.Addr().Unmap(), proto: proto, port: e.Destination.Port()}); d != nil {
			d.add(e.Time, e.Action, netip.Addr{})
		}
	default:
		o.Skipped++
	}
}

// hostName returns the canonical form of a name a workload reached or
// asked for, if it is one: a wildcard ("*.example.com" as a server name)
// is not, and must never become a suggested wildcard.
func hostName(s string) (string, bool) {
	name, err := policy.NormalizeDomain(s)
	if err != nil || strings.HasPrefix(name, "*") {
		return "", false
	}
	return name, true
}

// noReason reports whether r is that of a decision that is never a
// reason to allow anything: an attempt to get around the filter, a
// denied destination, a malformed or unanswerable request.
func noReason(r events.Reason) bool {
	switch r {
	case events.ReasonDenied, events.ReasonMalformed, events.ReasonNoName, events.ReasonTimeout,
		events.ReasonRateLimited, events.ReasonTooLong, events.ReasonQueryType, events.ReasonLocalName:
		return true
	}
	return r.Bypass()
}

// limit is the bound of MaxDestinations, or -1 for none.
func (o *Observations) limit() int {
	switch {
	case o.MaxDestinations < 0:
		return -1
	case o.MaxDestinations == 0:
		return DefaultMaxDestinations
	}
	return o.MaxDestinations
}

// dest returns the destination of k, made if there is room, else nil
// (counted in Overflow).
func (o *Observations) dest(k dkey) *dest {
	if d := o.dests[k]; d != nil {
		return d
	}
	if n := o.limit(); n >= 0 && len(o.dests) >= n {
		o.Overflow++
		return nil
	}
	if o.dests == nil {
		o.dests = map[dkey]*dest{}
	}
	d := &dest{}
	o.dests[k] = d
	return d
}

// answer records that a DNS answer gave a for name, if there is room.
func (o *Observations) answer(a netip.Addr, name string) {
	if slices.Contains(o.answered[a], name) {
		return
	}
	if n := o.limit(); n >= 0 && o.answers >= n {
		o.Overflow++
		return
	}
	if o.answered == nil {
		o.answered = map[netip.Addr][]string{}
	}
	o.answered[a] = append(o.answered[a], name)
	o.answers++
}

// each calls f with the exact entry that allows the destination of k,
// and the name it was reached by ("" for an address reached without
// one): several times for an address that answers gave for several
// names. These are the rules of [Suggest], before wildcards.
func (o *Observations) each(k dkey, dnsMode bool, f func(name, entry string)) {
	if k.name != "" {
		if k.port == 0 || k.port == 80 || k.port == 443 {
			f(k.name, k.name)
		} else {
			f(k.name, policy.NameRule{Pattern: k.name, Ports: policy.Ports{First: k.port, Last: k.port}}.String())
		}
		return
	}
	names := o.answered[k.addr]
	switch {
	case len(names) == 0:
		f("", policy.AddrRule{Proto: k.proto, Prefix: netip.PrefixFrom(k.addr, k.addr.BitLen()),
			Ports: policy.Ports{First: k.port, Last: k.port}}.String())
	case dnsMode:
		for _, n := range names {
			f(n, n)
		}
	default:
		for _, n := range names {
			f(n, policy.NameRule{Proto: k.proto, Pattern: n, Ports: policy.Ports{First: k.port, Last: k.port}}.String())
		}
	}
}

// Options tune [Suggest]. The zero value is the default.
type Options struct {
	// WildcardMin is how many distinct names below one registrable domain
	// (example.com for a.example.com and b.c.example.com, by the public
	// suffix list) make a wildcard "*.example.com" instead of the names.
	// Zero means DefaultWildcardMin; a negative value proposes none. No
	// wildcard is ever proposed over a public suffix ("*.co.uk").
	WildcardMin int
	// DNSMode is set for a filter in dns mode, where a name allows every
	// port of its addresses: connections to an address answered for a
	// name are then covered by the name. In https mode they become
	// "tcp/NAME:PORT" entries.
	DNSMode bool
}

// Entry is one suggested policy entry, with what it covers.
type Entry struct {
	// Value is the entry in canonical form, as the policy file takes it.
	Value string
	// IP reports an address entry (the policy's ips), else a name entry.
	IP bool
	// Covers lists the observed names or addresses the entry stands for,
	// when it is not itself one of them (a wildcard's names).
	Covers []string
	// Seen sums the observations the entry covers.
	Seen Seen
}

// Suggest returns the entries of a policy that allows what o observed,
// and nothing else that a reader could not see from the entries: exact
// names, wildcards where many names share a registrable domain, names on
// the ports they were reached on, and addresses only where no name was
// seen for them. Names come first, then addresses, each sorted.
func Suggest(o *Observations, opt Options) []Entry {
	minWild := cmp.Or(opt.WildcardMin, DefaultWildcardMin)
	seen := map[string]*Seen{}
	for k, d := range o.dests {
		o.each(k, opt.DNSMode, func(_, entry string) {
			s := seen[entry]
			if s == nil {
				s = &Seen{}
				seen[entry] = s
			}
			s.merge(&d.seen)
		})
	}

	// Plain names, grouped by registrable domain.
	groups := map[string][]string{}
	var out []Entry
	for k := range seen {
		switch {
		case strings.Contains(k, ":"): // with a port
		case isAddr(k):
		default:
			base, err := publicsuffix.EffectiveTLDPlusOne(k)
			if err != nil || base == k {
				continue // the apex itself, or no registrable domain
			}
			groups[base] = append(groups[base], k)
		}
	}
	wild := map[string]string{} // name -> its wildcard
	for base, names := range groups {
		if minWild < 0 || len(names) < minWild {
			continue
		}
		slices.Sort(names)
		e := Entry{Value: "*." + base, Covers: names}
		for _, n := range names {
			wild[n] = e.Value
			e.Seen.merge(seen[n])
		}
		out = append(out, e)
	}
	for k, s := range seen {
		if _, covered := wild[k]; covered {
			continue
		}
		out = append(out, Entry{Value: k, IP: isAddr(k), Seen: *s})
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if a.IP != b.IP {
			if a.IP {
				return 1
			}
			return -1
		}
		return cmp.Compare(sortKey(a.Value), sortKey(b.Value))
	})
	return out
}

// isAddr reports whether an entry is an address entry.
func isAddr(entry string) bool {
	_, err := policy.ParseAddrEntry(entry)
	return err == nil
}

// sortKey orders names by registrable domain, then by name: the entries
// of one site sit together.
func sortKey(entry string) string {
	_, rest, ok := strings.Cut(entry, "/")
	if !ok {
		rest = entry
	}
	name := strings.TrimPrefix(rest, "*.")
	if i := strings.LastIndex(name, ":"); i >= 0 && !strings.Contains(name, "]") {
		name = name[:i]
	}
	base, err := publicsuffix.EffectiveTLDPlusOne(name)
	if err != nil {
		base = name
	}
	return base + " " + name + " " + entry
}

func (s *Seen) merge(o *Seen) {
	if o == nil {
		return
	}
	s.Count += o.Count
	s.Blocked += o.Blocked
	s.WouldBlock += o.WouldBlock
	if s.First.IsZero() || (!o.First.IsZero() && o.First.Before(s.First)) {
		s.First = o.First
	}
	if o.Last.After(s.Last) {
		s.Last = o.Last
	}
}

// Comment says what an entry covers and how often it was seen, for the
// line of the policy file that holds it.
func (e Entry) Comment() string {
	var b strings.Builder
	if len(e.Covers) > 0 {
		shown := e.Covers
		if len(shown) > 5 {
			shown = shown[:5]
		}
		fmt.Fprintf(&b, "covers %s", strings.Join(unicodeNames(shown), ", "))
		if len(e.Covers) > len(shown) {
			fmt.Fprintf(&b, " and %d more", len(e.Covers)-len(shown))
		}
		b.WriteString("; ")
	} else if u := unicodeNames([]string{e.Value}); u[0] != e.Value {
		fmt.Fprintf(&b, "%s; ", u[0])
	}
	times := "times"
	if e.Seen.Count == 1 {
		times = "time"
	}
	fmt.Fprintf(&b, "seen %d %s", e.Seen.Count, times)
	switch s := e.Seen; {
	case s.Blocked > 0 && s.Blocked == s.Count:
		b.WriteString(", all blocked")
	case s.WouldBlock > 0 && s.WouldBlock == s.Count:
		b.WriteString(", all would block")
	default:
		if s.Blocked > 0 {
			fmt.Fprintf(&b, ", %d blocked", s.Blocked)
		}
		if s.WouldBlock > 0 {
			fmt.Fprintf(&b, ", %d would block", s.WouldBlock)
		}
	}
	return b.String()
}
