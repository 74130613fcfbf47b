package policy

import (
	"errors"
	"strings"
)

// Mode says whether a policy is enforced or only audited.
type Mode string

// Modes. The zero Mode states none: a [Loader] gives it its own Mode, and
// [Compile] takes it as Enforce.
const (
	// Enforce refuses what the policy does not allow.
	Enforce Mode = "enforce"
	// Audit takes every decision as Enforce would but lets the traffic
	// through, reporting what Enforce would refuse (events.WouldBlock),
	// so that a policy can be learnt from what a workload does. The
	// guards against getting around the filter (a forged mark, a spoofed
	// source, a raw frame) hold in both modes: they are not the policy's
	// to waive.
	Audit Mode = "audit"
)

// ErrMode reports a mode other than "enforce" or "audit".
var ErrMode = errors.New("policy: invalid mode")

// errModeValue is the error of every mode other than "enforce" or "audit".
var errModeValue = reason(ErrMode, `expected %q or %q (%q lets everything through and reports what %s would refuse)`,
	Enforce, Audit, Audit, Enforce)

// ParseMode returns the Mode named s: "enforce" or "audit", in any case,
// or the zero Mode for an empty s.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "", Enforce, Audit:
		return m, nil
	}
	return "", errModeValue
}

// String returns the mode's name, "enforce" for the zero Mode.
func (m Mode) String() string {
	if m == "" {
		return string(Enforce)
	}
	return string(m)
}

// canonicalMode checks a hand-built Policy's mode.
func canonicalMode(m Mode, errs *ErrorList) Mode {
	c, err := ParseMode(string(m))
	if err != nil {
		*errs = append(*errs, &Error{Source: "policy", Field: "Mode", Value: string(m), Err: err})
		return ""
	}
	if c == "" {
		return Enforce
	}
	return c
}
