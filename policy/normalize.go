package policy

import (
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
)

// Limits on domain names, from RFC 1035.
const (
	maxNameLen  = 253
	maxLabelLen = 63
)

// AnyDomain is the pattern that allows every domain name. It is accepted so
// that a policy can say so explicitly, and [Policy.AllowsAnyDomain] flags it.
const AnyDomain = "*"

// idnaProfile maps internationalised names to their ASCII (punycode) form the
// way a resolver would look them up. It leaves the character checks to
// checkName, which also allows '_' (seen in real host names) where strict
// STD3 rules would not.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.StrictDomainName(false),
	idna.BidiRule(),
	idna.Transitional(false),
)

// NormalizeDomain returns the canonical form of a domain pattern: an exact
// name ("example.com"), a wildcard ("*.example.com", which matches names
// below example.com at any depth but not example.com itself) or [AnyDomain].
//
// The canonical form is lower case, has no trailing dot, and is ASCII:
// internationalised names are converted to punycode. Surrounding white space
// is ignored. It rejects empty labels, labels longer than 63 bytes, names
// longer than 253 bytes, bytes other than letters, digits, '-' and '_', a '*'
// anywhere but as the whole first label, IP literals, ports and URLs.
// The error wraps [ErrDomain].
func NormalizeDomain(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == AnyDomain {
		return AnyDomain, nil
	}
	name, wildcard := strings.CutPrefix(s, "*.")
	if strings.Contains(name, "*") {
		return "", reason(ErrDomain, "'*' is allowed only as the whole first label, as in *.example.com")
	}
	name, err := normalizeName(name)
	if err != nil {
		return "", err
	}
	if wildcard {
		return "*." + name, nil
	}
	return name, nil
}

// normalizeName canonicalises a host name without wildcards.
func normalizeName(s string) (string, error) {
	if s == "" {
		return "", reason(ErrDomain, "empty name")
	}
	if strings.Contains(s, "://") || strings.ContainsAny(s, "/?#@") {
		return "", reason(ErrDomain, "a domain is a bare host name, not a URL")
	}
	if _, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return "", reason(ErrDomain, "an IP address is not a domain; list it under ips")
	}
	if strings.Contains(s, ":") {
		return "", reason(ErrDomain, "ports are not allowed in domains")
	}
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	if needsIDNA(s) {
		ascii, err := idnaProfile.ToASCII(s)
		if err != nil {
			return "", reason(ErrDomain, "not a valid internationalised name: %v", trimIDNAError(err))
		}
		s = ascii
	}
	if err := checkName(s); err != nil {
		return "", err
	}
	return s, nil
}

// needsIDNA reports whether the lower-case s has non-ASCII bytes or punycode labels, which
// only the IDNA rules can map or validate.
func needsIDNA(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return strings.HasPrefix(s, "xn--") || strings.Contains(s, ".xn--")
}

func trimIDNAError(err error) string {
	return strings.TrimPrefix(err.Error(), "idna: ")
}

// checkName validates a lower-case ASCII host name label by label.
func checkName(s string) error {
	if len(s) > maxNameLen {
		return reason(ErrDomain, "name is %d bytes long, more than %d", len(s), maxNameLen)
	}
	allDigits := false
	for label := range strings.SplitSeq(s, ".") {
		switch {
		case label == "":
			return reason(ErrDomain, "empty label")
		case len(label) > maxLabelLen:
			return reason(ErrDomain, "label %q is %d bytes long, more than %d", label, len(label), maxLabelLen)
		case label[0] == '-' || label[len(label)-1] == '-':
			return reason(ErrDomain, "label %q starts or ends with '-'", label)
		}
		allDigits = true
		for i := 0; i < len(label); i++ {
			c := label[i]
			if hostByte[c] == 0 {
				return reason(ErrDomain, "character %q is not allowed in a domain name", c)
			}
			allDigits = allDigits && c >= '0' && c <= '9'
		}
	}
	if allDigits {
		return reason(ErrDomain, "the last label is numeric, which no domain name has; list addresses under ips")
	}
	return nil
}

// hostByte maps each byte to its lower-case form when it may appear in a
// host name label (letters, digits, '-', '_'), and to 0 otherwise. The
// matcher uses it to validate and fold case in one step.
var hostByte = func() (t [256]byte) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = byte(c)
		t[c-'a'+'A'] = byte(c)
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c)
	}
	t['-'] = '-'
	t['_'] = '_'
	return t
}()

// ParsePrefix parses an allowlist IP entry: a single IPv4 or IPv6 address,
// which becomes a /32 or /128 prefix, or a CIDR prefix. IPv4-mapped IPv6
// forms (::ffff:192.0.2.1) are stored as IPv4, as the kernel sees them.
// It rejects ports, zones and prefixes with host bits set (a likely typo,
// which the error spells out). The error wraps [ErrIP].
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, reason(ErrIP, "empty entry")
	}
	if _, err := netip.ParseAddrPort(s); err == nil {
		return netip.Prefix{}, reason(ErrIP, "ports are not allowed; give the address alone")
	}
	if strings.Contains(s, "%") {
		return netip.Prefix{}, reason(ErrIP, "zones are not allowed")
	}
	if !strings.Contains(s, "/") {
		addr, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, reason(ErrIP, "not an IP address or CIDR prefix")
		}
		addr = addr.Unmap()
		return netip.PrefixFrom(addr, addr.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, reason(ErrIP, "not a valid CIDR prefix")
	}
	if masked := p.Masked(); masked != p {
		return netip.Prefix{}, reason(ErrIP, "host bits are set; did you mean %s?", masked)
	}
	return unmapPrefix(p), nil
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix of /96 or longer into the
// equivalent IPv4 prefix.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}
