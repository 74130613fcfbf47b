package sni

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
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

// nameClass sorts bytes for checkName: 0 for a label byte (see labelByte),
// classDot for '.', classBad for anything else.
var nameClass = func() (t [256]uint8) {
	for c := range t {
		switch {
		case labelByte[c]:
		case c == '.':
			t[c] = classDot
		default:
			t[c] = classBad
		}
	}
	return t
}()

const (
	classDot = 1
	classBad = 2
)

// checkName returns name without one trailing dot, if it is a host name:
// labels of 1 to 63 bytes allowed by labelByte, separated by dots, 253 bytes
// in all.
func checkName(name []byte) (checked []byte, err error) {
	if n := len(name); n > 0 && name[n-1] == '.' {
		name = name[:n-1]
	}
	if len(name) == 0 || len(name) > maxLabelLen {
		return checkNameSlow(name)
	}
	// No label of a name this short can be too long, so the name is
	// good if it has no bad byte and no empty label: no dot at either
	// end and no two dots in a row. One pass without a branch per byte
	// finds out, four bytes a step; checkNameSlow explains what is wrong.
	prev := uint8(classDot) // the name starts as if after a dot
	var bad uint8
	i := 0
	for ; i+4 <= len(name); i += 4 {
		b := name[i : i+4 : i+4]
		t0, t1, t2, t3 := nameClass[b[0]], nameClass[b[1]], nameClass[b[2]], nameClass[b[3]]
		bad |= t0&(prev|classBad) | t1&(t0|classBad) | t2&(t1|classBad) | t3&(t2|classBad)
		prev = t3
	}
	for _, c := range name[i:] {
		t := nameClass[c]
		bad |= t & (prev | classBad)
		prev = t
	}
	if bad|prev != 0 {
		return checkNameSlow(name)
	}
	return name, nil
}

// checkNameSlow is checkName, byte by byte, for a name without its trailing
// dot: for names longer than a label may be, and to say what is wrong with a
// name that checkName's single pass refused.
func checkNameSlow(name []byte) (checked []byte, err error) {
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

// mayEndNumber reports whether c, the last byte of a checked name, may end a
// number (see endsInNumber): a hex digit or the 'x' of "0x". Most names end
// in another letter, so this is looked at first.
func mayEndNumber(c byte) bool {
	c |= 0x20 // a digit stays one; letters, '-' and '_' cannot become one
	return c-'0' < 10 || c-'a' < 6 || c == 'x'
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
	dst = slices.Grow(dst, len(name))
	n := len(dst)
	dst = dst[:n+len(name)]
	out := dst[n:]
	if len(name) < 8 {
		for i, c := range name {
			if c-'A' < 26 {
				c += 'a' - 'A'
			}
			out[i] = c
		}
		return dst
	}
	// 8 bytes at a time, and the last 8 bytes of name, which may overlap
	// the ones before: writing a byte twice does no harm.
	last := len(name) - 8
	for i := 0; i < last; i += 8 {
		lowerWord(out[i:i+8], name[i:i+8])
	}
	lowerWord(out[last:], name[last:])
	return dst
}

// lowerWord writes the 8 bytes of src, ASCII, to dst in lower case.
func lowerWord(dst, src []byte) {
	x := binary.LittleEndian.Uint64(src)
	binary.LittleEndian.PutUint64(dst, x|upperMask(x)>>2) // 0x80>>2 is 'a'-'A'
}

// Some scans look at 8 bytes at a time, as a uint64.
const (
	ones  = 0x0101010101010101 // 1 in each byte
	highs = ones * 0x80        // the high bit of each byte
)

// upperMask returns the high bit of each byte of x, 8 bytes of ASCII, that
// is an upper-case letter. Adding 0x80-'A' to a byte sets its high bit if it
// is at least 'A', adding 0x80-'Z'-1 if it is above 'Z', and for ASCII
// neither addition carries into the next byte.
func upperMask(x uint64) uint64 {
	return (x + ones*(0x80-'A')) &^ (x + ones*(0x80-'Z'-1)) & highs
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }
