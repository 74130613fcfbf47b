package suggest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/policy"
)

// FormatVersion is the version of the JSON form of [Observations] that
// MarshalJSON writes and UnmarshalJSON reads.
const FormatVersion = 1

// ErrFormat is wrapped by the errors of [Observations.UnmarshalJSON]:
// the data is not observations of a version it reads.
var ErrFormat = errors.New("suggest: not observations")

// wireObservations is the JSON form of Observations.
type wireObservations struct {
	Version      int          `json:"version"`
	Events       int          `json:"events"`
	Skipped      int          `json:"skipped"`
	Overflow     int          `json:"overflow,omitempty"`
	From         time.Time    `json:"from,omitzero"`
	To           time.Time    `json:"to,omitzero"`
	Destinations []wireDest   `json:"destinations"`
	Answers      []wireAnswer `json:"answers,omitempty"`
}

// wireDest is one destination: a name (with the address a proxy last saw
// it at, if any) or an address the kernel saw a connection to.
type wireDest struct {
	Name       string        `json:"name,omitempty"`
	Addr       netip.Addr    `json:"addr,omitzero"`
	Proto      string        `json:"proto,omitempty"`
	Port       uint16        `json:"port,omitempty"`
	Verdict    events.Action `json:"verdict"`
	Count      int           `json:"count"`
	Blocked    int           `json:"blocked,omitempty"`
	WouldBlock int           `json:"would_block,omitempty"`
	First      time.Time     `json:"first"`
	Last       time.Time     `json:"last"`
}

// wireAnswer is an address and the names DNS answers gave it for.
type wireAnswer struct {
	Addr  netip.Addr `json:"addr"`
	Names []string   `json:"names"`
}

// MarshalJSON writes everything [Suggest] and [Observations.Destinations]
// need, with a version, so that a filter can keep its observations in a
// file and a tool read them back: UnmarshalJSON of the result gives
// observations that suggest the same entries. MaxDestinations is not
// written; it is the reader's to choose.
func (o Observations) MarshalJSON() ([]byte, error) {
	w := wireObservations{Version: FormatVersion, Events: o.Events, Skipped: o.Skipped, Overflow: o.Overflow,
		From: o.From.UTC(), To: o.To.UTC(), Destinations: make([]wireDest, 0, len(o.dests))}
	keys := make([]dkey, 0, len(o.dests))
	for k := range o.dests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	for _, k := range keys {
		d := o.dests[k]
		wd := wireDest{Name: k.name, Addr: k.addr, Proto: k.proto.String(), Port: k.port, Verdict: d.verdict,
			Count: d.seen.Count, Blocked: d.seen.Blocked, WouldBlock: d.seen.WouldBlock,
			First: d.seen.First.UTC(), Last: d.seen.Last.UTC()}
		if k.name != "" {
			wd.Addr = d.at
		}
		w.Destinations = append(w.Destinations, wd)
	}
	addrs := make([]netip.Addr, 0, len(o.answered))
	for a := range o.answered {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	for _, a := range addrs {
		w.Answers = append(w.Answers, wireAnswer{Addr: a, Names: slices.Sorted(slices.Values(o.answered[a]))})
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads what MarshalJSON writes, replacing what o held
// but keeping its MaxDestinations, within which it reads. Data of
// another version, or with a destination that is not one (a name that
// is not in canonical form, a verdict other than allowed, blocked or
// would-block, counts that do not add up), is an error wrapping
// [ErrFormat].
func (o *Observations) UnmarshalJSON(data []byte) error {
	var w wireObservations
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if w.Version != FormatVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrFormat, w.Version, FormatVersion)
	}
	if w.Events < 0 || w.Skipped < 0 || w.Overflow < 0 {
		return fmt.Errorf("%w: negative counts", ErrFormat)
	}
	n := Observations{MaxDestinations: o.MaxDestinations, Events: w.Events, Skipped: w.Skipped, Overflow: w.Overflow}
	var err error
	if n.From, err = utc(w.From); err != nil {
		return err
	}
	if n.To, err = utc(w.To); err != nil {
		return err
	}
	seen := make(map[dkey]bool, len(w.Destinations))
	for i, wd := range w.Destinations {
		k, d, err := wd.parse()
		if err != nil {
			return fmt.Errorf("%w: destination %d: %v", ErrFormat, i, err)
		}
		if seen[k] {
			return fmt.Errorf("%w: destination %d: listed twice", ErrFormat, i)
		}
		seen[k] = true
		if got := n.dest(k); got != nil {
			*got = *d
		} else {
			n.Overflow = addCount(n.Overflow, d.seen.Count-1) // dest counted one
		}
	}
	for i, a := range w.Answers {
		if !a.Addr.IsValid() || a.Addr.Is4In6() {
			return fmt.Errorf("%w: answer %d: address %v", ErrFormat, i, a.Addr)
		}
		for _, name := range a.Names {
			if c, ok := hostName(name); !ok || c != name {
				return fmt.Errorf("%w: answer %d: name %q", ErrFormat, i, name)
			}
			n.answer(a.Addr, name)
		}
	}
	*o = n
	return nil
}

// parse checks a destination and returns it as Observations keep it.
func (wd wireDest) parse() (dkey, *dest, error) {
	k := dkey{name: wd.Name, port: wd.Port}
	switch wd.Proto {
	case "":
	case "tcp":
		k.proto = policy.TCP
	case "udp":
		k.proto = policy.UDP
	default:
		return k, nil, fmt.Errorf("proto %q", wd.Proto)
	}
	if wd.Addr.Is4In6() {
		return k, nil, fmt.Errorf("address %v: give the IPv4 form", wd.Addr)
	}
	first, err := utc(wd.First)
	if err != nil {
		return k, nil, err
	}
	last, err := utc(wd.Last)
	if err != nil {
		return k, nil, err
	}
	d := &dest{verdict: wd.Verdict,
		seen: Seen{Count: wd.Count, Blocked: wd.Blocked, WouldBlock: wd.WouldBlock, First: first, Last: last}}
	if wd.Name != "" {
		if c, ok := hostName(wd.Name); !ok || c != wd.Name {
			return k, nil, fmt.Errorf("name %q", wd.Name)
		}
		if wd.Proto == "" && wd.Port != 0 {
			return k, nil, fmt.Errorf("port %d without a protocol", wd.Port)
		}
		d.at = wd.Addr
	} else {
		if !wd.Addr.IsValid() || wd.Proto == "" || wd.Port == 0 {
			return k, nil, errors.New("neither a name nor an address, protocol and port")
		}
		k.addr = wd.Addr
	}
	if wd.Verdict != events.Allowed && !wd.Verdict.Refused() {
		return k, nil, fmt.Errorf("verdict %v", wd.Verdict)
	}
	s := d.seen
	if s.Count < 1 || s.Blocked < 0 || s.WouldBlock < 0 || s.Blocked > s.Count || s.WouldBlock > s.Count-s.Blocked ||
		s.Last.Before(s.First) {
		return k, nil, errors.New("counts or times that do not add up")
	}
	return k, d, nil
}

// utc returns t in UTC, as MarshalJSON writes it, if it can write it.
func utc(t time.Time) (time.Time, error) {
	if t.IsZero() {
		return time.Time{}, nil
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return t, fmt.Errorf("%w: time %v: out of range", ErrFormat, t)
	}
	return t, nil
}
