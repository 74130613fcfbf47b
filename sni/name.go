package sni

import (
	"bytes"
	"errors"
	"fmt"
)

const (
	// maxNameLen is the longest host name in text form without a trailing
	// dot: 255 octets on the wire (RFC 1035 §2.3.4), less the length octet
	// of the first label and the root label.
	maxNameLen = 253

	// maxLabelLen is the longest DNS label (RFC 1035 §2.3.4).
	maxLabelLen = 63

	// maxPortLen is the number of digits in the largest port, 65535.
	maxPortLen = 5

	// maxIPv6Len is the length of the longest IPv6 address in text form,
	// "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255".
	maxIPv6Len = 45
)

// labelByte reports which bytes may appear in a label: ASCII letters, digits,
// '-' and '_'. '_' is not valid in host names but is common in DNS names, and
// cannot confuse a matcher.
var labelByte = func() (t [256]bool) {
	for c := range t {
		t[c] = isAlpha(byte(c)) || isDigit(byte(c)) || c == '-' || c == '_'
	}
	return t
}()

var (
	errEmptyName  = errors.New("empty name")
	errLongName   = fmt.Errorf("longer than %d bytes", maxNameLen)
	errEmptyLabel = errors.New("empty label")
	errLongLabel  = fmt.Errorf("label longer than %d bytes", maxLabelLen)
)

// checkName returns name without one trailing dot, if it is a host name:
// labels of 1 to 63 bytes allowed by labelByte, separated by dots, 253 bytes
// in all.
func checkName(name []byte) (checked []byte, err error) {
	if n := len(name); n > 0 && name[n-1] == '.' {
		name = name[:n-1]
	}
	if len(name) == 0 {
		return nil, errEmptyName
	}
	if len(name) > maxNameLen {
		return nil, errLongName
	}
	label := 0 // offset of the current label
	for i, c := range name {
		if labelByte[c] {
			continue
		}
		if c != '.' {
			return nil, fmt.Errorf("invalid byte %q", c)
		}
		if err := checkLabel(i - label); err != nil {
			return nil, err
		}
		label = i + 1
	}
	if err := checkLabel(len(name) - label); err != nil {
		return nil, err
	}
	return name, nil
}

// checkLabel checks the length of a label.
func checkLabel(n int) error {
	if n == 0 {
		return errEmptyLabel
	}
	if n > maxLabelLen {
		return errLongLabel
	}
	return nil
}

// endsInNumber reports whether the last label of name, a checked name, is a
// number: all decimal digits, or "0x" and hex digits. URL parsers read a name
// that ends in a number as an IPv4 address ("127.1", "0x7f000001"; WHATWG
// URL, "ends in a number"), and no top-level domain is numeric (RFC 3696
// §2), so such a name can only be an IP literal.
func endsInNumber(name []byte) bool {
	label := name[bytes.LastIndexByte(name, '.')+1:]
	return isDigit(label[0]) && isNumber(label)
}

// isNumber reports whether label is all decimal digits, or "0x" and hex
// digits (see endsInNumber).
func isNumber(label []byte) bool {
	if len(label) >= 2 && label[0] == '0' && label[1]|0x20 == 'x' {
		for _, c := range label[2:] {
			if !isHex(c) {
				return false
			}
		}
		return true
	}
	for _, c := range label {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// checkHost returns the host of an HTTP authority (RFC 3986 host [":" port])
// without port, brackets or one trailing dot, or nil for an empty authority.
// A host is a name as checkName accepts it, an IPv4 address (which is such a
// name), or an IPv6 literal in brackets, checked for its alphabet only: hex
// digits, ':' and '.'. The port, if any, must be at most 5 digits.
func checkHost(authority []byte) ([]byte, error) {
	if len(authority) == 0 {
		return nil, nil
	}
	host, port := authority, []byte(nil)
	if authority[0] == '[' {
		end := bytes.IndexByte(authority, ']')
		if end < 0 {
			return nil, errors.New("IPv6 literal without ']'")
		}
		host = authority[1:end]
		if rest := authority[end+1:]; len(rest) > 0 {
			if rest[0] != ':' {
				return nil, errors.New("bytes after IPv6 literal")
			}
			port = rest[1:]
		}
		if err := checkIPv6(host); err != nil {
			return nil, err
		}
	} else {
		if i := bytes.IndexByte(authority, ':'); i >= 0 {
			host, port = authority[:i], authority[i+1:]
		}
		var err error
		if host, err = checkName(host); err != nil {
			return nil, err
		}
	}
	if len(port) > maxPortLen {
		return nil, errors.New("port too long")
	}
	for _, c := range port {
		if !isDigit(c) {
			return nil, errors.New("port is not a number")
		}
	}
	return host, nil
}

// checkIPv6 checks the alphabet and length of lit, the inside of an IPv6
// literal, and that it has a ':'.
func checkIPv6(lit []byte) error {
	if len(lit) > maxIPv6Len || bytes.IndexByte(lit, ':') < 0 {
		return errors.New("invalid IPv6 literal")
	}
	for _, c := range lit {
		if !isHex(c) && c != ':' && c != '.' {
			return fmt.Errorf("invalid byte %q in IPv6 literal", c)
		}
	}
	return nil
}

// appendLower appends name, ASCII bytes, to dst in lower case.
func appendLower(dst, name []byte) []byte {
	for _, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }
