package policy

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors wrapped by [*Error], for callers that branch with [errors.Is].
var (
	// ErrSyntax reports a policy file that is not well-formed YAML.
	ErrSyntax = errors.New("policy: invalid YAML")
	// ErrEmpty reports a policy file with no document in it. An empty file is
	// refused rather than read as "allow nothing": a file caught half-written
	// must not replace a good policy.
	ErrEmpty = errors.New("policy: file is empty")
	// ErrUnknownKey reports a mapping key the policy format does not define.
	ErrUnknownKey = errors.New("policy: unknown key")
	// ErrDuplicateKey reports a mapping key given twice.
	ErrDuplicateKey = errors.New("policy: duplicate key")
	// ErrType reports a value of the wrong kind, such as a string where a list
	// is expected.
	ErrType = errors.New("policy: wrong type")
	// ErrDomain reports an entry that is not a valid domain pattern.
	ErrDomain = errors.New("policy: invalid domain")
	// ErrIP reports an entry that is not a valid IP address or CIDR prefix.
	ErrIP = errors.New("policy: invalid IP or CIDR")
)

// Error is one mistake in a policy source, located as precisely as the source
// allows.
type Error struct {
	// Source names where the entry came from: a file path, or the name of a
	// list such as "ALLOWLIST_IPS".
	Source string
	// Line is the 1-based line in a file; 0 when the source has no lines.
	Line int
	// Field is the path of the offending value, such as "allowlist.ips[2]".
	Field string
	// Value is the offending text as written; empty when there is none.
	Value string
	// Err is the reason. It wraps one of the sentinel errors of this package.
	Err error
}

// Error formats the mistake as `source:line: field "value": reason`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	switch {
	case e.Field != "" && e.Value != "":
		fmt.Fprintf(&b, "%s %q: ", e.Field, e.Value)
	case e.Field != "":
		b.WriteString(e.Field + ": ")
	case e.Value != "":
		fmt.Fprintf(&b, "%q: ", e.Value)
	}
	b.WriteString(strings.TrimPrefix(e.Err.Error(), "policy: "))
	return b.String()
}

// Unwrap returns the reason, so that errors.Is finds the sentinel.
func (e *Error) Unwrap() error { return e.Err }

// ErrorList holds every mistake found in one load, in source order. A load
// reports all bad entries, not just the first.
type ErrorList []*Error

// Error joins the mistakes, one per line.
func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns the individual mistakes, so that errors.Is and errors.As
// look into each.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// err returns the list as an error, or nil when it is empty.
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// reason wraps a sentinel with detail.
func reason(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
