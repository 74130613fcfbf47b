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

// Observations are what a workload did, gathered from the filter's events
// with [Observations.Add]: the names it asked for and the addresses it
// connected to, with their protocols and ports. The zero value is empty
// and ready to use; it is not safe for concurrent use.
type Observations struct {
	// seen holds every destination by its policy entry: "github.com",
	// "tcp/github.com:22", "tcp/198.51.100.7:5432".
	seen map[string]*Seen
	// answered maps each address that a DNS answer gave to the names it
	// was given for, so that a connection to it is suggested by name.
	answered map[netip.Addr][]string
	// conns are the connections by address the kernel reported, tied to
	// names only once every answer has been read.
	conns []conn
	// Events counts the events read; Skipped, those that could not be a
	// reason to allow anything (attempts to get around the filter,
	// denied destinations, malformed requests).
	Events, Skipped int
	// From and To bound the events' times.
	From, To time.Time
}

// conn is a connection to an address that the kernel reported.
type conn struct {
	proto policy.Proto
	dst   netip.AddrPort
	time  time.Time
	ok    bool // allowed
}

// Seen is one observed destination.
type Seen struct {
	Count, Blocked int
	First, Last    time.Time
}

func (s *Seen) add(t time.Time, allowed bool) {
	s.Count++
	if !allowed {
		s.Blocked++
	}
	if s.First.IsZero() || t.Before(s.First) {
		s.First = t
	}
	if t.After(s.Last) {
		s.Last = t
	}
}

// Add records one event.
func (o *Observations) Add(e events.Event) {
	if o.seen == nil {
		o.seen, o.answered = map[string]*Seen{}, map[netip.Addr][]string{}
	}
	o.Events++
	if o.From.IsZero() || e.Time.Before(o.From) {
		o.From = e.Time
	}
	if e.Time.After(o.To) {
		o.To = e.Time
	}
	if e.Action == events.Error || e.Reason.Bypass() || e.Reason == events.ReasonDenied ||
		e.Reason == events.ReasonMalformed || e.Reason == events.ReasonNoName || e.Reason == events.ReasonTimeout ||
		e.Reason == events.ReasonRateLimited || e.Reason == events.ReasonTooLong || e.Reason == events.ReasonQueryType ||
		e.Reason == events.ReasonLocalName {
		o.Skipped++
		return
	}
	allowed := e.Action == events.Allowed
	proto := policy.TCP
	if e.Protocol == "udp" {
		proto = policy.UDP
	}
	switch e.Component {
	case events.DNS:
		name, err := policy.NormalizeDomain(e.Name)
		if err != nil || name == policy.AnyDomain {
			o.Skipped++
			return
		}
		o.record(name, e.Time, allowed)
		for field := range strings.FieldsSeq(e.Detail) {
			if a, err := netip.ParseAddr(field); err == nil {
				a = a.Unmap()
				if !slices.Contains(o.answered[a], name) {
					o.answered[a] = append(o.answered[a], name)
				}
			}
		}
	case events.HTTPS, events.HTTP:
		name, err := policy.NormalizeDomain(e.Name)
		if err != nil || name == policy.AnyDomain {
			o.Skipped++
			return
		}
		entry := name
		if port := e.Destination.Port(); port != 0 && port != 80 && port != 443 {
			entry = policy.NameRule{Pattern: name, Ports: policy.Ports{First: port, Last: port}}.String()
		}
		o.record(entry, e.Time, allowed)
	case events.Kernel:
		if !e.Destination.IsValid() || e.Destination.Port() == 0 {
			o.Skipped++
			return
		}
		dst := netip.AddrPortFrom(e.Destination.Addr().Unmap(), e.Destination.Port())
		o.conns = append(o.conns, conn{proto, dst, e.Time, allowed})
	default:
		o.Skipped++
	}
}

func (o *Observations) record(entry string, t time.Time, allowed bool) {
	s := o.seen[entry]
	if s == nil {
		s = &Seen{}
		o.seen[entry] = s
	}
	s.add(t, allowed)
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
	seen := make(map[string]*Seen, len(o.seen))
	for k, s := range o.seen {
		c := *s
		seen[k] = &c
	}
	add := func(entry string, c conn) {
		s := seen[entry]
		if s == nil {
			s = &Seen{}
			seen[entry] = s
		}
		s.add(c.time, c.ok)
	}
	for _, c := range o.conns {
		names := o.answered[c.dst.Addr()]
		switch {
		case len(names) == 0:
			rule := policy.AddrRule{Proto: c.proto, Prefix: netip.PrefixFrom(c.dst.Addr(), c.dst.Addr().BitLen()),
				Ports: policy.Ports{First: c.dst.Port(), Last: c.dst.Port()}}
			add(rule.String(), c)
		case opt.DNSMode:
			for _, n := range names {
				add(n, c)
			}
		default:
			for _, n := range names {
				add(policy.NameRule{Proto: c.proto, Pattern: n, Ports: policy.Ports{First: c.dst.Port(), Last: c.dst.Port()}}.String(), c)
			}
		}
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
	switch e.Seen.Blocked {
	case 0:
	case e.Seen.Count:
		b.WriteString(", all blocked")
	default:
		fmt.Fprintf(&b, ", %d blocked", e.Seen.Blocked)
	}
	return b.String()
}
