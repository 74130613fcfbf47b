package policy

import "strings"

// maxDomainBytes bounds the bytes the domains of one list may take in all:
// 256 MiB, far beyond any real policy.
const maxDomainBytes = 256 << 20

// nameTable holds the domain patterns of one list: the exact names, and the
// wildcards keyed by the suffix they cover ("example.com" for
// "*.example.com"). Each value is the rule itself, for the decision to
// name.
type nameTable struct {
	exact    map[string]string
	wildcard map[string]string
}

// compileNames builds the table for canonical patterns, and reports whether
// they hold AnyDomain.
func compileNames(domains []string) (t *nameTable, anyDomain bool, err error) {
	size := 0
	for _, d := range domains {
		size += len(d)
	}
	if size > maxDomainBytes {
		return nil, false, reason(ErrDomain, "the domains take %d bytes, more than the %d MiB a policy may have", size, maxDomainBytes>>20)
	}
	t = &nameTable{exact: make(map[string]string), wildcard: make(map[string]string)}
	for _, d := range domains {
		if d == AnyDomain {
			anyDomain = true
		} else if base, ok := strings.CutPrefix(d, "*."); ok {
			t.wildcard[base] = d
		} else {
			t.exact[d] = d
		}
	}
	return t, anyDomain, nil
}

// match returns the rule that allows name, a valid host name in lower case:
// the exact name if listed, else the wildcard of its longest listed suffix.
// It looks the name up, then each suffix that starts after a dot, longest
// first.
func (t *nameTable) match(name []byte) (rule string, ok bool) {
	if rule, ok = t.exact[string(name)]; ok {
		return rule, true
	}
	for i, c := range name {
		if c != '.' {
			continue
		}
		if rule, ok = t.wildcard[string(name[i+1:])]; ok {
			return rule, true
		}
	}
	return "", false
}
