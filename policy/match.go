package policy

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
)

// AllowHost reports whether the policy allows the host name. See
// [Snapshot.MatchHost].
func (s *Snapshot) AllowHost(name string) bool {
	_, ok := s.MatchHost(name)
	return ok
}

// MatchHost reports whether the policy allows the host name and, if so, the
// rule that allows it: the exact name when listed, else the most specific
// wildcard ("*.example.com"), else [AnyDomain].
//
// The name may come straight from the network: it is matched without regard
// to case and with one trailing dot ignored. A name that no valid host name
// could be (empty labels, bytes other than letters, digits, '-', '_' and '.',
// a numeric last label such as an IP address, a port, over-long labels or
// names) is never allowed, whatever the policy. A name with non-ASCII bytes
// is converted to punycode first, which allocates; otherwise MatchHost does
// not allocate, and its cost grows with the number of labels in the name,
// not the number of rules.
func (s *Snapshot) MatchHost(name string) (rule string, ok bool) {
	if n := len(name); n > 0 && name[n-1] == '.' {
		name = name[:n-1]
	}
	switch checkHost(name) {
	case hostCanonical:
		return matchName(s, name)
	case hostUpper:
		var buf [maxNameLen]byte
		for i := 0; i < len(name); i++ {
			if c := name[i]; c != '.' {
				buf[i] = hostByte[c]
			} else {
				buf[i] = '.'
			}
		}
		return matchName(s, buf[:len(name)])
	case hostUnicode:
		ascii, err := normalizeName(name)
		if err != nil {
			return "", false
		}
		return matchName(s, ascii)
	default:
		return "", false
	}
}

// matchName walks a valid lower-case name's suffixes from the top-level
// label down, one map lookup each, stopping as soon as no rule lies below.
func matchName[T string | []byte](s *Snapshot, name T) (rule string, ok bool) {
	wild := -1
	for dot := len(name); ; {
		dot = lastDot(name[:dot])
		v, found := s.names[string(name[dot+1:])]
		if !found {
			break
		}
		if dot < 0 {
			// The whole name: only an exact rule matches it.
			if v&flagExact != 0 {
				return s.nodes[v>>flagBits].name, true
			}
			break
		}
		if v&flagWildcard != 0 {
			wild = int(v >> flagBits)
		}
		if v&flagParent == 0 {
			break
		}
	}
	switch {
	case wild >= 0:
		return s.nodes[wild].wildcard, true
	case s.any:
		return AnyDomain, true
	default:
		return "", false
	}
}

func lastDot[T string | []byte](name T) int {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '.' {
			return i
		}
	}
	return -1
}

// hostClass is what a quick scan learns about a host name.
type hostClass uint8

const (
	hostInvalid   hostClass = iota // no valid host name
	hostCanonical                  // valid and already lower case
	hostUpper                      // valid once lower-cased
	hostUnicode                    // has non-ASCII bytes: needs IDNA
)

// checkHost scans a name (without trailing dot) once: label lengths, bytes,
// case, and a numeric last label, which only an IP address has.
func checkHost(name string) hostClass {
	class := hostCanonical
	label, digits := 0, true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '.' {
			if label == 0 {
				return hostInvalid
			}
			label, digits = 0, true
			continue
		}
		switch lower := hostByte[c]; {
		case lower == 0 && c >= 0x80:
			return hostUnicode
		case lower == 0:
			return hostInvalid
		case lower != c:
			class = hostUpper
		}
		label++
		digits = digits && c >= '0' && c <= '9'
		if label > maxLabelLen {
			return hostInvalid
		}
	}
	if label == 0 || digits || len(name) > maxNameLen {
		return hostInvalid
	}
	return class
}

// isCanonical reports whether d is already in the form NormalizeDomain
// returns, checked quickly; false sends d through NormalizeDomain.
func isCanonical(d string) bool {
	if d == AnyDomain {
		return true
	}
	name := strings.TrimPrefix(d, "*.")
	return checkHost(name) == hostCanonical &&
		!strings.Contains(name, "xn--") &&
		!strings.HasPrefix(name, "-") && !strings.HasSuffix(name, "-") &&
		!strings.Contains(name, "-.") && !strings.Contains(name, ".-")
}

// AllowAddr reports whether the policy allows the address. See
// [Snapshot.MatchAddr].
func (s *Snapshot) AllowAddr(a netip.Addr) bool {
	_, ok := s.MatchAddr(a)
	return ok
}

// MatchAddr reports whether the policy allows the address and, if so, the
// allowlisted prefix that contains it (the widest, when entries nest).
// IPv4-mapped IPv6 addresses are matched as IPv4, and zones are ignored.
// It does not allocate; its cost grows with the logarithm of the number of
// entries.
func (s *Snapshot) MatchAddr(a netip.Addr) (rule netip.Prefix, ok bool) {
	if !a.IsValid() {
		return netip.Prefix{}, false
	}
	a = a.Unmap().WithZone("")
	list := s.v6
	if a.Is4() {
		list = s.v4
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
	return &Policy{IPs: slices.Clone(s.policy.IPs), Domains: slices.Clone(s.policy.Domains)}
}

// Prefixes returns the allowlisted IPv4 and IPv6 prefixes, sorted, with
// prefixes nested inside others left out: no two overlap, as interval sets
// in the kernel require. The slices are copies.
func (s *Snapshot) Prefixes() (v4, v6 []netip.Prefix) {
	return slices.Clone(s.v4), slices.Clone(s.v6)
}

// AllowsAnyDomain reports whether the policy allows every domain name.
func (s *Snapshot) AllowsAnyDomain() bool { return s.any }
