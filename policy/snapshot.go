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
// a parsed one. p is copied: changing it later does not change the Snapshot.
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
	s.names, s.anyDomain = compileNames(s.policy.Domains)
	s.v4, s.v6 = outermost(s.policy.IPs)
	return s, nil
}

// compileNames builds the suffix table for canonical patterns. A hash
// collision between two different suffixes, which has a chance of about
// n²/2⁶² for n suffixes, is met by starting again with another seed.
func compileNames(domains []string) (t *suffixTable, anyDomain bool) {
	for {
		t = newSuffixTable(len(domains) + len(domains)/8)
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
			return t, anyDomain
		}
	}
}

// addDomain records a canonical pattern other than AnyDomain, walking its
// suffixes from the top-level label down as a match does: each proper
// suffix is the parent of something. It reports false on a hash collision.
func addDomain(t *suffixTable, d string) bool {
	name, wildcard := strings.CutPrefix(d, "*.")
	h := t.seed
	for end := len(name); ; {
		dot := lastDot(name[:end])
		h = hashLabel(h, name, dot+1, end)
		if dot < 0 {
			break
		}
		if !t.add(h, name[dot+1:], flagParent, "") {
			return false
		}
		end = dot
	}
	if wildcard {
		return t.add(h, name, flagWildcard, d)
	}
	return t.add(h, name, flagExact, "")
}
