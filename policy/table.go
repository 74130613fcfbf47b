package policy

import "strings"

// maxDomainBytes bounds the bytes the domains of one list may take in all:
// 256 MiB, far beyond any real policy.
const maxDomainBytes = 256 << 20

// nameTable holds the domain patterns of one list: the exact names, and the
// wildcards keyed by the suffix they cover ("example.com" for
// "*.example.com"). Each value is what the pattern stands for: the rule
// itself for a list of names, the entries of the pattern for the names
// with ports.
type nameTable[V any] struct {
	exact    map[string]V
	wildcard map[string]V
}

func newNameTable[V any]() *nameTable[V] {
	return &nameTable[V]{exact: make(map[string]V), wildcard: make(map[string]V)}
}

// add records the value of a canonical pattern other than AnyDomain.
func (t *nameTable[V]) add(pattern string, v V) {
	if base, ok := strings.CutPrefix(pattern, "*."); ok {
		t.wildcard[base] = v
	} else {
		t.exact[pattern] = v
	}
}

// at returns the value of a canonical pattern other than AnyDomain.
func (t *nameTable[V]) at(pattern string) V {
	if base, ok := strings.CutPrefix(pattern, "*."); ok {
		return t.wildcard[base]
	}
	return t.exact[pattern]
}

// each calls yield with the value of every pattern that matches name, a
// valid host name in lower case, most specific first: the exact name if
// listed, then the wildcard of each listed suffix, longest first, until
// yield returns false.
func (t *nameTable[V]) each(name []byte, yield func(V) bool) {
	if v, ok := t.exact[string(name)]; ok && !yield(v) {
		return
	}
	for i, c := range name {
		if c != '.' {
			continue
		}
		if v, ok := t.wildcard[string(name[i+1:])]; ok && !yield(v) {
			return
		}
	}
}

// compileNames builds the table for canonical patterns, and reports whether
// they hold AnyDomain.
func compileNames(domains []string) (t *nameTable[string], anyDomain bool, err error) {
	size := 0
	for _, d := range domains {
		size += len(d)
	}
	if size > maxDomainBytes {
		return nil, false, reason(ErrDomain, "the domains take %d bytes, more than the %d MiB a policy may have", size, maxDomainBytes>>20)
	}
	t = newNameTable[string]()
	for _, d := range domains {
		if d == AnyDomain {
			anyDomain = true
		} else {
			t.add(d, d)
		}
	}
	return t, anyDomain, nil
}

// match returns the rule that allows name, a valid host name in lower case:
// the exact name if listed, else the wildcard of its longest listed suffix.
func (t *nameTable[V]) match(name []byte) (rule V, ok bool) {
	t.each(name, func(v V) bool {
		rule, ok = v, true
		return false
	})
	return rule, ok
}
