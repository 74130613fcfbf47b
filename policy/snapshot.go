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

	names     *suffixTable
	anyDomain bool // the policy has AnyDomain

	// v4 and v6 are the allowlisted prefixes with nested ones removed,
	// sorted by address, so that at most one can contain a given address.
	v4, v6 []netip.Prefix
}

// Compile builds a Snapshot from p. Entries that are not in canonical form
// are normalised as [NormalizeDomain] and [ParsePrefix] would; an entry that
// cannot be is an error, so a hand-built Policy is held to the same rules as
// a parsed one. The domains may take at most 256 MiB in all. p is copied:
// changing it later does not change the Snapshot.
func Compile(p *Policy) (*Snapshot, error) {
	s := &Snapshot{}
	s.policy.Domains = make([]string, 0, len(p.Domains))
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
	var err error
	if s.names, s.anyDomain, err = compileNames(s.policy.Domains); err != nil {
		return nil, &Error{Source: "policy", Field: "Domains", Err: err}
	}
	s.v4, s.v6 = outermost(s.policy.IPs)
	return s, nil
}

// compileNames builds the suffix table for canonical patterns. Two
// suffixes with the same tag on one probe run, which has a chance of about
// n/2²⁴ for n suffixes, are met by starting again with another seed.
func compileNames(domains []string) (t *suffixTable, anyDomain bool, err error) {
	size := 0
	for _, d := range domains {
		size += len(d)
	}
	if size > maxKeys {
		return nil, false, reason(ErrDomain, "the domains take %d bytes, more than the %d MiB a policy may have", size, maxKeys>>20)
	}
	for {
		t = newSuffixTable(len(domains)+len(domains)/8, size)
		ok := true
		for _, d := range domains {
			if d == AnyDomain {
				anyDomain = true
				continue
			}
			if ok = addDomain(t, d); !ok {
				break
			}
		}
		if ok {
			t.seal()
			return t, anyDomain, nil
		}
	}
}

// addDomain records a canonical pattern other than AnyDomain, walking its
// suffixes from the top-level label down as a match does: each proper
// suffix is the parent of something. It reports false when two suffixes'
// tags clash.
func addDomain(t *suffixTable, d string) bool {
	off := t.addRule(d)
	name, wildcard := strings.CutPrefix(d, "*.")
	if wildcard {
		off += 2
	}
	h := t.seed
	for end := len(name); ; {
		dot, next := hashLabel(h, name, end)
		if h = next; dot < 0 {
			break
		}
		if !t.add(h, off+dot+1, len(name)-dot-1, flagParent) {
			return false
		}
		end = dot
	}
	if wildcard {
		return t.add(h, off, len(name), flagWildcard)
	}
	return t.add(h, off, len(name), flagExact)
}
