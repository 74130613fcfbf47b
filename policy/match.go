package policy

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
)

// MatchHost reports whether the policy allows the host name and, if so, the
// rule that allows it: the exact name when listed, else the most specific
// wildcard ("*.example.com"), else [AnyDomain].
//
// The name may come straight from the network. It is matched without regard
// to ASCII case and with one trailing dot ignored. A name that no valid host
// name could be (empty labels, bytes other than letters, digits, '-', '_'
// and '.', a numeric last label such as an IP address has, a port, labels
// over 63 bytes or names over 253) is never allowed, whatever the policy.
// Names on the wire are ASCII (internationalised names travel as punycode),
// so a name with other bytes is not allowed either; convert one with
// [NormalizeDomain] first.
//
// MatchHost does not allocate. It looks up the name, then each of its
// suffixes: its cost grows with the number of labels, not the number of
// rules.
//
// A name that the denylist matches is never allowed (see
// [Snapshot.DenyHost]).
func (s *Snapshot) MatchHost(name string) (rule string, ok bool) {
	if s.deny != nil {
		if _, denied := matchNames(s.deny, false, name); denied {
			return "", false
		}
	}
	return matchNames(s.names, s.anyDomain, name)
}

// DenyHost reports whether the denylist matches the host name and, if so,
// the rule that does, as [Snapshot.MatchHost] matches the allowlist. A
// denied name is never allowed, whatever allows it.
func (s *Snapshot) DenyHost(name string) (rule string, denied bool) {
	if s.deny == nil {
		return "", false
	}
	return matchNames(s.deny, false, name)
}

// matchNames matches name against the patterns of t, and any valid host
// name when anyDomain.
func matchNames(t *nameTable[string], anyDomain bool, name string) (rule string, ok bool) {
	if n := len(name); n > 0 && name[n-1] == '.' {
		name = name[:n-1]
	}
	var buf [maxNameLen]byte
	lower, ok := lowerName(&buf, name)
	if !ok {
		return "", false
	}
	if rule, ok := t.match(lower); ok {
		return rule, true
	}
	if anyDomain && !numericLastLabel(name) {
		return AnyDomain, true
	}
	return "", false
}

// lowerName writes name to buf in lower case and returns it, if name is a
// dot-separated run of labels of 1 to 63 bytes, each a letter (either
// case), digit, '-' or '_', 253 bytes in all; otherwise ok is false.
func lowerName(buf *[maxNameLen]byte, name string) (lower []byte, ok bool) {
	if len(name) == 0 || len(name) > maxNameLen {
		return nil, false
	}
	label := 0 // length of the label so far
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '.' && label > 0:
			label = 0
		case c == '.' || hostByte[c] == 0 || label == maxLabelLen:
			return nil, false
		default:
			c = hostByte[c]
			label++
		}
		buf[i] = c
	}
	return buf[:len(name)], label > 0
}

// numericLastLabel reports whether the last label is all digits, as in an
// IPv4 address; no domain name ends that way.
func numericLastLabel(name string) bool {
	for i := len(name) - 1; i >= 0 && name[i] != '.'; i-- {
		if name[i] < '0' || name[i] > '9' {
			return false
		}
	}
	return true
}

// isCanonical reports whether d is already in the form NormalizeDomain
// returns, in one pass; false sends d through NormalizeDomain. Punycode
// labels always take that path, since only the IDNA rules can check them.
func isCanonical(d string) bool {
	if d == AnyDomain {
		return true
	}
	name := strings.TrimPrefix(d, "*.")
	if len(name) == 0 || len(name) > maxNameLen || numericLastLabel(name) {
		return false
	}
	start := 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '.' {
			if c := name[i]; c == 0 || hostByte[c] != c { // not allowed, or upper case
				return false
			}
			continue
		}
		label := name[start:i]
		if len(label) == 0 || len(label) > maxLabelLen || label[0] == '-' || label[len(label)-1] == '-' ||
			strings.HasPrefix(label, "xn--") {
			return false
		}
		start = i + 1
	}
	return true
}

// MatchAddr reports whether the policy allows the address and, if so, the
// allowlisted prefix that contains it (the widest, when entries nest).
// IPv4-mapped IPv6 addresses are matched as IPv4, and zones are ignored.
// It does not allocate; its cost grows with the logarithm of the number of
// entries.
//
// An address in the denylist is never allowed (see [Snapshot.DenyAddr]).
func (s *Snapshot) MatchAddr(a netip.Addr) (rule netip.Prefix, ok bool) {
	if _, denied := s.DenyAddr(a); denied {
		return netip.Prefix{}, false
	}
	return matchPrefixes(s.v4, s.v6, a)
}

// DenyAddr reports whether the denylist holds the address and, if so, the
// denied prefix that contains it. A denied address is never allowed,
// whatever allows it.
func (s *Snapshot) DenyAddr(a netip.Addr) (rule netip.Prefix, denied bool) {
	return matchPrefixes(s.deny4, s.deny6, a)
}

// matchPrefixes finds the prefix of v4 or v6 (sorted, disjoint) that
// contains a.
func matchPrefixes(v4, v6 []netip.Prefix, a netip.Addr) (netip.Prefix, bool) {
	if !a.IsValid() {
		return netip.Prefix{}, false
	}
	a = a.Unmap().WithZone("")
	list := v6
	if a.Is4() {
		list = v4
	}
	// Find the last prefix that starts at or before a.
	lo, hi := 0, len(list)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if list[mid].Addr().Compare(a) <= 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo > 0 && list[lo-1].Contains(a) {
		return list[lo-1], true
	}
	return netip.Prefix{}, false
}

// outermost sorts prefixes, drops those nested in another, and splits them
// by family.
func outermost(all []netip.Prefix) (v4, v6 []netip.Prefix) {
	sorted := slices.Clone(all)
	slices.SortFunc(sorted, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.Bits(), b.Bits())
	})
	kept := sorted[:0]
	for _, p := range sorted {
		if n := len(kept); n > 0 && kept[n-1].Contains(p.Addr()) {
			continue // sorted by address then length, so p lies inside kept[n-1]
		}
		kept = append(kept, p)
	}
	split := slices.IndexFunc(kept, func(p netip.Prefix) bool { return p.Addr().Is6() })
	if split < 0 {
		split = len(kept)
	}
	return slices.Clip(kept[:split]), kept[split:]
}

// Policy returns a copy of the canonical policy the Snapshot was compiled
// from.
func (s *Snapshot) Policy() *Policy {
	return &Policy{
		IPs: slices.Clone(s.policy.IPs), Domains: slices.Clone(s.policy.Domains),
		DenyIPs: slices.Clone(s.policy.DenyIPs), DenyDomains: slices.Clone(s.policy.DenyDomains),
		AddrPorts: slices.Clone(s.policy.AddrPorts), NamePorts: slices.Clone(s.policy.NamePorts),
		Mode: s.policy.Mode,
	}
}

// Mode returns the policy's mode, Enforce or Audit.
func (s *Snapshot) Mode() Mode { return s.policy.Mode }

// Audit reports whether the policy is only audited: decisions to refuse
// are reported, and the traffic is let through.
func (s *Snapshot) Audit() bool { return s.policy.Mode == Audit }

// DenyPrefixes returns the denied IPv4 and IPv6 prefixes as [Snapshot.Prefixes]
// returns the allowed ones.
func (s *Snapshot) DenyPrefixes() (v4, v6 []netip.Prefix) {
	return slices.Clone(s.deny4), slices.Clone(s.deny6)
}

// Prefixes returns the allowlisted IPv4 and IPv6 prefixes, sorted, with
// prefixes nested inside others left out: no two overlap, as interval sets
// in the kernel require. The slices are copies.
func (s *Snapshot) Prefixes() (v4, v6 []netip.Prefix) {
	return slices.Clone(s.v4), slices.Clone(s.v6)
}

// AllowsAnyDomain reports whether the policy allows every domain name.
func (s *Snapshot) AllowsAnyDomain() bool { return s.anyDomain }
