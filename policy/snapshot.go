package policy

import (
	"fmt"
	"net/netip"
	"strings"
)

// Snapshot is a compiled, immutable policy. It answers "is this name or
// address allowed?" without locks or allocations, so any number of
// goroutines may use one at once. Build it with [Compile]; replace it, never
// change it (see [Holder]).
type Snapshot struct {
	policy Policy

	// names maps every domain suffix that a rule mentions to its node:
	// the node's index shifted left by flagBits, ORed with its flags.
	names map[string]uint32
	nodes []node
	any   bool

	// v4 and v6 are the allowlisted prefixes with nested ones removed,
	// sorted by address, so that at most one can contain a given address.
	v4, v6 []netip.Prefix
}

// node is one domain suffix that a rule mentions.
type node struct {
	name     string // the suffix, which is also the exact rule when flagExact is set
	wildcard string // "*." + name when flagWildcard is set
}

// Node flags, packed into the low bits of the names map's values so that a
// lookup needs no second memory access.
const (
	flagExact    = 1 << iota // the suffix itself is allowed
	flagWildcard             // every name below the suffix is allowed
	flagParent               // some rule names something below the suffix
	flagBits     = iota
)

// Compile builds a Snapshot from p. Entries that are not in canonical form
// are normalised as [NormalizeDomain] and [ParsePrefix] would; an entry that
// cannot be is an error, so a hand-built Policy is held to the same rules as
// a parsed one. p is copied: changing it later does not change the Snapshot.
func Compile(p *Policy) (*Snapshot, error) {
	s := &Snapshot{
		names: make(map[string]uint32, len(p.Domains)+len(p.Domains)/4),
		nodes: make([]node, 0, len(p.Domains)+len(p.Domains)/4),
	}
	var errs ErrorList
	for i, d := range p.Domains {
		if !isCanonical(d) {
			n, err := NormalizeDomain(d)
			if err != nil {
				errs = append(errs, &Error{Source: "policy", Field: fmt.Sprintf("Domains[%d]", i), Value: d, Err: err})
				continue
			}
			d = n
		}
		s.policy.Domains = append(s.policy.Domains, d)
		s.addDomain(d)
	}
	for i, pfx := range p.IPs {
		canonical := unmapPrefix(pfx)
		if !pfx.IsValid() || canonical.Masked() != canonical {
			errs = append(errs, &Error{Source: "policy", Field: fmt.Sprintf("IPs[%d]", i), Value: pfx.String(),
				Err: reason(ErrIP, "not a valid prefix without host bits")})
			continue
		}
		s.policy.IPs = append(s.policy.IPs, canonical)
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	s.v4, s.v6 = outermost(s.policy.IPs)
	return s, nil
}

// addDomain records a canonical pattern in the suffix map.
func (s *Snapshot) addDomain(d string) {
	if d == AnyDomain {
		s.any = true
		return
	}
	name, wildcard := strings.CutPrefix(d, "*.")
	if wildcard {
		s.nodes[s.set(name, flagWildcard)].wildcard = d
	} else {
		s.set(name, flagExact)
	}
	// Mark the proper suffixes, longest first, as parents. Every suffix of a
	// parent is a parent already, so the walk stops at the first one marked.
	for rest := name; ; {
		_, after, ok := strings.Cut(rest, ".")
		if !ok || s.names[after]&flagParent != 0 {
			return
		}
		s.set(after, flagParent)
		rest = after
	}
}

// set adds flag to the node for suffix, creating the node if needed, and
// returns the node's index.
func (s *Snapshot) set(suffix string, flag uint32) uint32 {
	v, ok := s.names[suffix]
	if !ok {
		v = uint32(len(s.nodes)) << flagBits
		s.nodes = append(s.nodes, node{name: suffix})
	}
	s.names[suffix] = v | flag
	return v >> flagBits
}
