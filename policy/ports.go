package policy

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Proto is the transport protocol of an entry: "tcp/" or "udp/" before it,
// or neither (both).
type Proto uint8

// The protocols of an entry.
const (
	AnyProto Proto = iota // no prefix: TCP and UDP
	TCP                   // "tcp/"
	UDP                   // "udp/"
)

// String returns "tcp", "udp" or "" for AnyProto.
func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return ""
}

// Covers reports whether an entry of protocol p covers protocol q (TCP or
// UDP).
func (p Proto) Covers(q Proto) bool { return p == AnyProto || p == q }

// Ports is an inclusive range of ports. The zero value means every port.
type Ports struct{ First, Last uint16 }

// All reports whether r is every port.
func (r Ports) All() bool { return r == Ports{} }

// Contains reports whether port is in r.
func (r Ports) Contains(port uint16) bool {
	return r.All() || r.First <= port && port <= r.Last
}

// String returns "22", "8000-8099", or "" for every port.
func (r Ports) String() string {
	switch {
	case r.All():
		return ""
	case r.First == r.Last:
		return strconv.Itoa(int(r.First))
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// maxNamePorts is the widest port range a name entry with a protocol may
// have: the addresses answered for the name are pinned port by port.
const maxNamePorts = 256

// AddrRule is an address entry limited to a protocol, a port range or both,
// such as "udp/1.1.1.1:53" or "tcp/[2001:db8::7]:8000-8099". An entry with
// neither is a plain prefix ([Policy.IPs]).
type AddrRule struct {
	Proto  Proto
	Prefix netip.Prefix
	Ports  Ports
}

// String returns the entry in canonical form: "tcp/198.51.100.0/24:5432".
func (r AddrRule) String() string {
	var b strings.Builder
	if r.Proto != AnyProto {
		b.WriteString(r.Proto.String() + "/")
	}
	p := r.Prefix.String()
	if r.Prefix.IsSingleIP() {
		p = r.Prefix.Addr().String()
	}
	if r.Prefix.Addr().Is6() && !r.Ports.All() {
		p = "[" + p + "]"
	}
	b.WriteString(p)
	if !r.Ports.All() {
		b.WriteString(":" + r.Ports.String())
	}
	return b.String()
}

// NameRule is a domain entry limited to a protocol and a port range, such
// as "tcp/github.com:22" or "*.example.com:8443". An entry with neither is
// a plain pattern ([Policy.Domains]).
//
// With a protocol, the entry allows that protocol on those ports to the
// addresses that the filter's own resolver answered for a matching name.
// Without one it is web traffic on those ports, decided by the proxies:
// by the TLS server name, or by the HTTP Host on an HTTP port.
type NameRule struct {
	Proto   Proto
	Pattern string // canonical, as [NormalizeDomain] returns it
	Ports   Ports
}

// String returns the entry in canonical form: "tcp/github.com:22".
func (r NameRule) String() string {
	s := r.Pattern + ":" + r.Ports.String()
	if r.Proto != AnyProto {
		s = r.Proto.String() + "/" + s
	}
	return s
}

// cutProto removes a "tcp/" or "udp/" prefix, in any case.
func cutProto(s string) (Proto, string) {
	if len(s) > 4 && s[3] == '/' {
		switch strings.ToLower(s[:3]) {
		case "tcp":
			return TCP, s[4:]
		case "udp":
			return UDP, s[4:]
		}
	}
	return AnyProto, s
}

// unknownProto explains a "proto/" prefix other than tcp and udp.
func unknownProto(p Proto, rest string) error {
	if p != AnyProto {
		return nil
	}
	word, _, ok := strings.Cut(rest, "/")
	if !ok || word == "" || strings.ContainsAny(word, ".:[") {
		return nil
	}
	return fmt.Errorf("unknown protocol %q: write tcp/ or udp/, or neither for both", word)
}

// parsePorts parses "22" or "8000-8099".
func parsePorts(s string) (Ports, error) {
	first, last, isRange := strings.Cut(s, "-")
	a, err := parsePort(first)
	if err != nil {
		return Ports{}, err
	}
	b := a
	if isRange {
		if b, err = parsePort(last); err != nil {
			return Ports{}, err
		}
		if b < a {
			return Ports{}, fmt.Errorf("port range %s runs backwards; did you mean %d-%d?", s, b, a)
		}
	}
	return Ports{a, b}, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

// ParseAddrEntry parses an address entry of the allowlist: a plain
// address or prefix as [ParsePrefix] takes it, optionally after "tcp/" or
// "udp/" and before ":PORT" or ":FIRST-LAST" (an IPv6 address or prefix in
// brackets then: "[2001:db8::7]:443"). A plain entry is returned as
// AddrRule with AnyProto and every port. The error wraps [ErrIP].
func ParseAddrEntry(s string) (AddrRule, error) {
	s = strings.TrimSpace(s)
	proto, rest := cutProto(s)
	if err := unknownProto(proto, rest); err != nil {
		return AddrRule{}, reason(ErrIP, "%v", err)
	}
	addr, port := rest, ""
	switch {
	case strings.HasPrefix(rest, "["):
		end := strings.Index(rest, "]")
		if end < 0 {
			return AddrRule{}, reason(ErrIP, "missing ']' after the IPv6 address")
		}
		addr, port = rest[1:end], rest[end+1:]
		if strings.HasPrefix(port, "/") { // "[2001:db8::]/32:443"
			bits, after, _ := strings.Cut(port[1:], ":")
			addr, port = addr+"/"+bits, ":"+after
			if after == "" {
				port = ""
			}
		}
		if port != "" && !strings.HasPrefix(port, ":") {
			return AddrRule{}, reason(ErrIP, "expected ':PORT' after ']'")
		}
		port = strings.TrimPrefix(port, ":")
		if port == "" {
			return AddrRule{}, reason(ErrIP, "brackets are for an IPv6 address with a port, as in [2001:db8::1]:443")
		}
	case strings.Count(rest, ":") == 1:
		addr, port, _ = strings.Cut(rest, ":")
		if port == "" {
			return AddrRule{}, reason(ErrIP, "no port after ':'")
		}
	case strings.Count(rest, ":") > 1:
		if _, err := netip.ParseAddrPort(rest); err == nil {
			return AddrRule{}, reason(ErrIP, "ports are not allowed; give the address alone")
		}
		// A bare IPv6 address or prefix. One with a port would need brackets.
		if i := strings.LastIndex(rest, ":"); i > 0 && !strings.Contains(rest[i:], "/") {
			if _, err := netip.ParseAddr(rest); err != nil {
				if _, perr := netip.ParseAddr(rest[:i]); perr == nil {
					return AddrRule{}, reason(ErrIP, "an IPv6 address with a port goes in brackets: [%s]:%s", rest[:i], rest[i+1:])
				}
			}
		}
	}
	if proto == AnyProto && port == "" {
		p, err := ParsePrefix(rest)
		return AddrRule{Prefix: p}, err
	}
	p, err := ParsePrefix(addr)
	if err != nil {
		return AddrRule{}, err
	}
	r := AddrRule{Proto: proto, Prefix: p}
	if port != "" {
		if r.Ports, err = parsePorts(port); err != nil {
			return AddrRule{}, reason(ErrIP, "%v", err)
		}
	}
	return r, nil
}

// ParseNameEntry parses a domain entry of the allowlist: a pattern as
// [NormalizeDomain] takes it, optionally after "tcp/" or "udp/" and before
// ":PORT" or ":FIRST-LAST". A plain pattern is returned as NameRule with
// AnyProto and every port. An entry with a protocol needs a port, and its
// range may hold at most 256 ports. The error wraps [ErrDomain].
func ParseNameEntry(s string) (NameRule, error) {
	s = strings.TrimSpace(s)
	proto, rest := cutProto(s)
	if err := unknownProto(proto, rest); err != nil {
		return NameRule{}, reason(ErrDomain, "%v", err)
	}
	name, port, hasPort := rest, "", false
	if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.Contains(rest, "://") && strings.Count(rest, ":") == 1 {
		name, port, hasPort = rest[:i], rest[i+1:], true
	}
	pattern, err := NormalizeDomain(name)
	if err != nil {
		return NameRule{}, err
	}
	r := NameRule{Proto: proto, Pattern: pattern}
	if !hasPort {
		if proto != AnyProto {
			return NameRule{}, reason(ErrDomain, "a name with a protocol needs a port, as in %s/%s:22; without one, write the name alone", proto, pattern)
		}
		return r, nil
	}
	if pattern == AnyDomain {
		return NameRule{}, reason(ErrDomain, `"*" cannot take a port: it allows every name on the proxied ports already`)
	}
	if r.Ports, err = parsePorts(port); err != nil {
		return NameRule{}, reason(ErrDomain, "%v", err)
	}
	if n := int(r.Ports.Last) - int(r.Ports.First) + 1; proto != AnyProto && n > maxNamePorts {
		return NameRule{}, reason(ErrDomain, "a name's port range may hold at most %d ports (this one holds %d): its addresses are allowed port by port", maxNamePorts, n)
	}
	return r, nil
}

// expand returns the protocols an entry of protocol p covers: TCP and UDP
// for AnyProto.
func (p Proto) expand() []Proto {
	if p == AnyProto {
		return []Proto{TCP, UDP}
	}
	return []Proto{p}
}

// Service is one element of the kernel's sets of address entries with
// ports: a protocol (TCP or UDP), a prefix and a port range, all present.
type Service struct {
	Proto  Proto
	Prefix netip.Prefix
	Ports  Ports
}

// services expands rules into services, one per protocol, every port made
// explicit, sorted by protocol, family, address and ports, with those
// that another one holds removed. Two that overlap without one holding the
// other are an error naming both entries, and bad is the index of the
// later one: the kernel's sets hold disjoint elements only.
func services(rules []AddrRule) (svcs []Service, bad int, err error) {
	type item struct {
		Service
		rule int
	}
	var all []item
	for i, r := range rules {
		ports := r.Ports
		if ports.All() {
			ports = Ports{1, 65535}
		}
		for _, p := range r.Proto.expand() {
			all = append(all, item{Service{p, r.Prefix.Masked(), ports}, i})
		}
	}
	slices.SortFunc(all, func(a, b item) int {
		return cmp.Or(
			cmp.Compare(a.Proto, b.Proto),
			a.Prefix.Addr().Compare(b.Prefix.Addr()),
			cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()),
			cmp.Compare(a.Ports.First, b.Ports.First),
			cmp.Compare(b.Ports.Last, a.Ports.Last))
	})
	var out []item
	var open []item // the kept items whose prefixes hold the current one's
next:
	for _, it := range all {
		// Sorted so, an earlier prefix either holds this one or ends
		// before it, and before every later one.
		for len(open) > 0 {
			o := open[len(open)-1]
			if o.Proto == it.Proto && o.Prefix.Overlaps(it.Prefix) {
				break
			}
			open = open[:len(open)-1]
		}
		for _, o := range open {
			switch {
			case o.Ports.First <= it.Ports.First && it.Ports.Last <= o.Ports.Last:
				continue next // held by o
			case it.Ports.First <= o.Ports.Last && o.Ports.First <= it.Ports.Last:
				return nil, max(o.rule, it.rule), overlapError(rules[min(o.rule, it.rule)], rules[max(o.rule, it.rule)])
			}
		}
		out = append(out, it)
		open = append(open, it)
	}
	svcs = make([]Service, len(out))
	for i, it := range out {
		svcs[i] = it.Service
	}
	return svcs, 0, nil
}

func overlapError(a, b AddrRule) error {
	return reason(ErrIP, "%s and %s overlap in part; the kernel's sets need entries that are apart or one inside the other: split the ports or the prefixes", a, b)
}

func compileNameRules(rules []NameRule) *nameTable[[]NameRule] {
	t := newNameTable[[]NameRule]()
	for _, r := range rules {
		t.add(r.Pattern, append(t.at(r.Pattern), r))
	}
	return t
}

// eachNamePort calls yield with each entry with a port whose pattern
// matches the host name, most specific first, until yield returns false.
// A name that cannot be a host name matches none.
func (s *Snapshot) eachNamePort(name string, yield func(NameRule) bool) {
	if len(s.policy.NamePorts) == 0 {
		return
	}
	name = strings.TrimSuffix(name, ".")
	var buf [maxNameLen]byte
	lower, ok := lowerName(&buf, name)
	if !ok || numericLastLabel(name) {
		return
	}
	s.namePorts.each(lower, func(rules []NameRule) bool {
		for _, r := range rules {
			if !yield(r) {
				return false
			}
		}
		return true
	})
}

// MatchHostPort reports whether a domain entry with a port allows the host
// name on port for protocol proto (TCP or UDP), and the entry that does, in
// canonical form. Entries without a port are not looked at: see
// [Snapshot.MatchHost]. A denied name is never allowed.
func (s *Snapshot) MatchHostPort(name string, proto Proto, port uint16) (rule string, ok bool) {
	if _, denied := s.DenyHost(name); denied {
		return "", false
	}
	s.eachNamePort(name, func(r NameRule) bool {
		if r.Proto.Covers(proto) && r.Ports.Contains(port) {
			rule, ok = r.String(), true
		}
		return !ok
	})
	return rule, ok
}

// MatchNamePorts returns the domain entries with a port that match the host
// name, or nil (also for a denied name).
func (s *Snapshot) MatchNamePorts(name string) []NameRule {
	var out []NameRule
	if _, denied := s.DenyHost(name); denied {
		return nil
	}
	s.eachNamePort(name, func(r NameRule) bool {
		out = append(out, r)
		return true
	})
	return out
}

// Services returns the address entries with a protocol or a port as the
// kernel's sets hold them: one element per protocol, every port explicit,
// sorted, those held by another left out. The slice is a copy.
func (s *Snapshot) Services() []Service { return slices.Clone(s.services) }

// ProxiedPorts returns the TCP ports of the domain entries with a port
// and no protocol: web traffic that the proxies decide, on ports besides
// 80 and 443. The ranges are sorted and merged.
func (s *Snapshot) ProxiedPorts() []Ports {
	var rs []Ports
	for _, r := range s.policy.NamePorts {
		if r.Proto == AnyProto {
			rs = append(rs, r.Ports)
		}
	}
	slices.SortFunc(rs, func(a, b Ports) int { return cmp.Compare(a.First, b.First) })
	var out []Ports
	for _, r := range rs {
		if n := len(out); n > 0 && int(r.First) <= int(out[n-1].Last)+1 {
			out[n-1].Last = max(out[n-1].Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	return out
}

// canonicalAddrRules checks hand-built address entries as
// [ParseAddrEntry] would have.
func canonicalAddrRules(rules []AddrRule, errs *ErrorList) []AddrRule {
	var out []AddrRule
	for i, r := range rules {
		field := fmt.Sprintf("AddrPorts[%d]", i)
		r.Prefix = unmapPrefix(r.Prefix)
		switch {
		case !r.Prefix.IsValid() || r.Prefix.Masked() != r.Prefix:
			*errs = append(*errs, &Error{Source: "policy", Field: field, Value: r.Prefix.String(), Err: reason(ErrIP, "not a valid prefix without host bits")})
		case r.Proto > UDP || r.Ports.First == 0 && r.Ports.Last != 0 || r.Ports.First > r.Ports.Last:
			*errs = append(*errs, &Error{Source: "policy", Field: field, Value: r.String(), Err: reason(ErrIP, "invalid protocol or port range")})
		case !slices.Contains(out, r):
			out = append(out, r)
		}
	}
	return out
}

// canonicalNameRules checks hand-built domain entries as
// [ParseNameEntry] would have.
func canonicalNameRules(rules []NameRule, errs *ErrorList) []NameRule {
	var out []NameRule
	for i, r := range rules {
		field := fmt.Sprintf("NamePorts[%d]", i)
		n, err := ParseNameEntry(r.String())
		if err == nil && n.Ports.All() {
			err = reason(ErrDomain, "an entry of NamePorts needs a port")
		}
		if err != nil {
			*errs = append(*errs, &Error{Source: "policy", Field: field, Value: r.String(), Err: err})
			continue
		}
		out = appendUnique(out, n)
	}
	return out
}

// MatchAddrPort reports whether an address entry with a protocol or a port
// allows a on port for protocol proto (TCP or UDP), and the entry that
// does, in canonical form. Entries without either are [Snapshot.MatchAddr]'s.
// A denied address is never allowed. It looks at every entry in turn: it
// is for tools, not for the data path, where the kernel decides.
func (s *Snapshot) MatchAddrPort(a netip.Addr, proto Proto, port uint16) (rule string, ok bool) {
	a = a.Unmap()
	if _, denied := s.DenyAddr(a); denied {
		return "", false
	}
	for _, r := range s.policy.AddrPorts {
		if r.Proto.Covers(proto) && r.Ports.Contains(port) && r.Prefix.Contains(a) {
			return r.String(), true
		}
	}
	return "", false
}
