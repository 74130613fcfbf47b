package policy

import (
	"fmt"
	"net/netip"
	"slices"
)

// Snapshot is a compiled, immutable policy. It answers "is this name or
// address allowed?" without locks or allocations, so any number of
// goroutines may use one at once. Build it with [Compile]; replace it, never
// change it (see [Holder]).
type Snapshot struct {
	policy Policy

	names     *nameTable[string]
	anyDomain bool // the policy has AnyDomain

	// v4 and v6 are the allowlisted prefixes with nested ones removed,
	// sorted by address, so that at most one can contain a given address.
	v4, v6 []netip.Prefix

	deny         *nameTable[string] // the denied names; nil when there are none
	deny4, deny6 []netip.Prefix

	services  []Service              // the address entries with ports, as the kernel's sets hold them
	namePorts *nameTable[[]NameRule] // the domain entries with ports
}

// Compile builds a Snapshot from p. Entries that are not in canonical form
// are normalised as [NormalizeDomain] and [ParsePrefix] would; an entry that
// cannot be is an error, so a hand-built Policy is held to the same rules as
// a parsed one. The domains may take at most 256 MiB in all. p is copied:
// changing it later does not change the Snapshot.
func Compile(p *Policy) (*Snapshot, error) {
	s := &Snapshot{}
	var errs ErrorList
	s.policy.Domains = canonicalDomains(p.Domains, "Domains", &errs)
	s.policy.IPs = canonicalPrefixes(p.IPs, "IPs", &errs)
	s.policy.DenyDomains = canonicalDomains(p.DenyDomains, "DenyDomains", &errs)
	s.policy.DenyIPs = canonicalPrefixes(p.DenyIPs, "DenyIPs", &errs)
	s.policy.AddrPorts = canonicalAddrRules(p.AddrPorts, &errs)
	s.policy.NamePorts = canonicalNameRules(p.NamePorts, &errs)
	s.policy.Mode = canonicalMode(p.Mode, &errs)
	if slices.Contains(s.policy.DenyDomains, AnyDomain) {
		errs = append(errs, &Error{Source: "policy", Field: "DenyDomains", Value: AnyDomain,
			Err: reason(ErrDomain, `"*" would deny every name: leave the names out of the allowlist instead`)})
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	var err error
	if s.names, s.anyDomain, err = compileNames(s.policy.Domains); err != nil {
		return nil, &Error{Source: "policy", Field: "Domains", Err: err}
	}
	if len(s.policy.DenyDomains) > 0 {
		if s.deny, _, err = compileNames(s.policy.DenyDomains); err != nil {
			return nil, &Error{Source: "policy", Field: "DenyDomains", Err: err}
		}
	}
	if s.services, _, err = services(s.policy.AddrPorts); err != nil {
		return nil, &Error{Source: "policy", Field: "AddrPorts", Err: err}
	}
	s.namePorts = compileNameRules(s.policy.NamePorts)
	s.v4, s.v6 = outermost(s.policy.IPs)
	s.deny4, s.deny6 = outermost(s.policy.DenyIPs)
	return s, nil
}

// canonicalDomains normalises the patterns of the field, as
// [NormalizeDomain] would, and records those that cannot be.
func canonicalDomains(domains []string, field string, errs *ErrorList) []string {
	out := make([]string, 0, len(domains))
	for i, d := range domains {
		if !isCanonical(d) {
			n, err := NormalizeDomain(d)
			if err != nil {
				*errs = append(*errs, &Error{Source: "policy", Field: fmt.Sprintf("%s[%d]", field, i), Value: d, Err: err})
				continue
			}
			d = n
		}
		out = append(out, d)
	}
	return out
}

// canonicalPrefixes unmaps the prefixes of the field and records those that
// are invalid or have host bits.
func canonicalPrefixes(ps []netip.Prefix, field string, errs *ErrorList) []netip.Prefix {
	var out []netip.Prefix
	for i, pfx := range ps {
		canonical := unmapPrefix(pfx)
		if !pfx.IsValid() || canonical.Masked() != canonical {
			*errs = append(*errs, &Error{Source: "policy", Field: fmt.Sprintf("%s[%d]", field, i), Value: pfx.String(),
				Err: reason(ErrIP, "not a valid prefix without host bits")})
			continue
		}
		out = append(out, canonical)
	}
	return out
}
