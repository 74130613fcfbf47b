package gotify

import (
	"fmt"
	"strings"
)

// matcher matches names against domain patterns: exact names, "*.example.com"
// (any name below example.com, not example.com itself) and "*" (everything).
type matcher struct {
	all      bool
	exact    map[string]bool
	suffixes []string // ".example.com" for "*.example.com"
}

// normalize folds case and drops surrounding space and one trailing dot.
func normalize(name string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
}

// compile checks and compiles patterns; empty ones are skipped, so that a
// list such as "a.example,,b.example" works.
func compile(patterns []string) (matcher, error) {
	m := matcher{exact: map[string]bool{}}
	for _, raw := range patterns {
		p := normalize(raw)
		switch {
		case p == "":
		case p == "*":
			m.all = true
		case strings.HasPrefix(p, "*.") && len(p) > 2 && !strings.Contains(p[2:], "*"):
			m.suffixes = append(m.suffixes, p[1:])
		case strings.Contains(p, "*") || strings.HasPrefix(p, ".") || strings.Contains(p, ".."):
			return matcher{}, fmt.Errorf("%w: ignore pattern %q: want a name, *.name or *", ErrConfig, raw)
		default:
			m.exact[p] = true
		}
	}
	return m, nil
}

func (m matcher) match(name string) bool {
	if m.all {
		return true
	}
	name = normalize(name)
	if m.exact[name] {
		return true
	}
	for _, s := range m.suffixes {
		if strings.HasSuffix(name, s) && len(name) > len(s) {
			return true
		}
	}
	return false
}
