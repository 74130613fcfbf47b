package sni

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
)

// MaxHeadSize is the longest request head [ParseRequestHead] accepts, in
// bytes, from the method to the empty line that ends the head: 16 KiB.
// Browsers stay well below it, and it is the order of common server limits
// (nginx and Apache allow 8 KiB per line). A head that is not complete within
// MaxHeadSize bytes is [ErrTooLarge]; in particular ParseRequestHead never
// returns [ErrNeedMore] for MaxHeadSize bytes or more.
const MaxHeadSize = 16 << 10

// maxMethodLen is the longest method accepted. The longest registered one,
// UPDATEREDIRECTREF, has 17 bytes; the cap lets a client that does not speak
// HTTP be told apart quickly.
const maxMethodLen = 32

// RequestHead is what [ParseRequestHead] reads from an HTTP/1.x request head.
//
// A RequestHead does not copy the method, the target or the host: it keeps
// slices of the data passed to ParseRequestHead. Do not modify that data
// while using the RequestHead. The host is checked when parsed and
// lower-cased when read.
type RequestHead struct {
	// Method is the request method, such as "GET". It is a token (RFC 9110
	// §5.6.2) of at most 32 bytes, not necessarily a registered method.
	Method []byte

	// Target is the request target as sent: "/path?query" (origin form),
	// "http://example.com/path" (absolute form), "example.com:443" for
	// CONNECT (authority form) or "*".
	Target []byte

	// ProtoMinor is the minor HTTP version: 0 for HTTP/1.0 and 1 for
	// HTTP/1.1.
	ProtoMinor int

	// HeadLen is the number of bytes of input the head occupies, from the
	// method to the line ending of the empty line that ends it. The message
	// body or the next request starts there.
	HeadLen int

	// HostMismatch reports that the target is in absolute or authority
	// form and there is a Host header that names another host, or is
	// empty. The host of the target wins (RFC 9112 §3.2.2), but an origin
	// server or intermediary that reads the Host header instead would go
	// elsewhere, so a filter should refuse such a request.
	HostMismatch bool

	// ContentLength is the length of the body from the Content-Length
	// header, or 0 if there is none. A request with neither Content-Length
	// nor Transfer-Encoding has no body (RFC 9112 §6.3).
	ContentLength int64

	// Chunked reports a "Transfer-Encoding: chunked" body, whose length
	// only the chunks tell.
	Chunked bool

	// Upgrade reports an Upgrade header: the client asks to switch the
	// connection to another protocol (WebSocket, h2c) after this request.
	Upgrade bool

	host []byte // checked host without port, brackets or trailing dot, or nil
}

// ParseRequestHead parses the HTTP/1.0 or HTTP/1.1 request head at the start
// of data, the first bytes a client sent on a connection. If data holds a
// valid but incomplete head, ParseRequestHead returns [ErrNeedMore] and should
// be called again once more bytes have arrived.
//
// Lines may end in CRLF or, as RFC 9112 §2.2 allows, a bare LF, so that the
// head ends where lenient origin servers think it does; a CR anywhere else is
// malformed. The method may be any token; a request that does not start with
// one followed by a space, or whose request line does not end in an
// "HTTP/" version, is [ErrNotHTTP], and so is an empty line before it.
//
// The host comes from the target if it is in absolute or authority form, and
// from the Host header otherwise. Errors wrap [ErrMalformed] for a bad target
// or version, whitespace before a field name (including obs-fold), a field
// line without a colon, control bytes in a field value, more than one Host
// header, a host that is not a host name, IPv4 address or IPv6 literal, and an
// HTTP/1.1 request without any host. An HTTP/1.0 request may have no host;
// [RequestHead.HasHost] then reports false. A head that does not fit in
// [MaxHeadSize] bytes is [ErrTooLarge].
//
// ParseRequestHead does not allocate when it succeeds.
func ParseRequestHead(data []byte) (h RequestHead, err error) {
	if err := h.parse(data, true); err != nil {
		return RequestHead{}, err
	}
	return h, nil
}

// parse reads the request head at the start of data into h. With fast, it
// reads the common lines with commonRequestLine and commonFields, which
// read them as the general code does, only faster.
func (h *RequestHead) parse(data []byte, fast bool) error {
	// Tell a client that speaks something else without waiting for a line.
	methodLen, err := scanMethod(data)
	if err != nil {
		return err
	}
	head := data[:min(len(data), MaxHeadSize)]
	h.Method = head[:methodLen]
	// commonFields lets DEL through in field values, where it is invalid
	// as it is everywhere in a head: a head with a DEL goes the general
	// way, which says where it is.
	fast = fast && bytes.IndexByte(head, 0x7f) < 0
	off := 0
	if fast {
		off = h.commonRequestLine(head, methodLen)
	}
	if off == 0 {
		line, next, ok := firstLine(head)
		if !ok {
			return needMore(data)
		}
		if err := h.parseRequestLine(line[methodLen+1:]); err != nil {
			return err
		}
		off = next
	}

	var fields fieldState
	for {
		// Most lines are read by commonFields; nextField reads the
		// others, the empty line that ends the head among them.
		if fast {
			if off, err = h.commonFields(head, off, &fields); err != nil {
				return err
			}
		}
		name, value, next, err := nextField(head, off)
		if err == ErrNeedMore {
			return needMore(data)
		}
		if err != nil {
			return err
		}
		off = next
		if name == nil {
			break // the empty line
		}
		if err := h.field(&fields, name, value); err != nil {
			return err
		}
	}
	if fields.haveLength && h.Chunked {
		return malformedf("both Content-Length and Transfer-Encoding")
	}
	h.HeadLen = off
	return h.setHost(fields.host, fields.haveHost)
}

// fieldState is what parse remembers of the field lines it has read.
type fieldState struct {
	host       []byte // value of the Host header, if haveHost
	haveHost   bool
	haveLength bool // a Content-Length header was read
}

// field takes note of a field line, if parse looks at its name.
func (h *RequestHead) field(st *fieldState, name, value []byte) error {
	if isHost(name) {
		if st.haveHost {
			return malformedf("more than one Host header")
		}
		st.host, st.haveHost = value, true
		return nil
	}
	return h.framing(name, value, &st.haveLength)
}

// scanMethod returns the length of the method at the start of data, which
// must be a token followed by a space.
func scanMethod(data []byte) (int, error) {
	for i, c := range data {
		if c == ' ' && i > 0 {
			return i, nil
		}
		if i == maxMethodLen || !tokenByte[c] {
			return 0, fmt.Errorf("%w: request does not start with a method", ErrNotHTTP)
		}
	}
	return 0, ErrNeedMore
}

// needMore returns the error for a head that has not ended within data.
func needMore(data []byte) error {
	if len(data) >= MaxHeadSize {
		return fmt.Errorf("%w: request head longer than %d bytes", ErrTooLarge, MaxHeadSize)
	}
	return ErrNeedMore
}

// firstLine returns the first line of b without its LF or CRLF ending, and
// the offset of the line after it. ok is false if the line has not ended
// within b.
func firstLine(b []byte) (line []byte, next int, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, 0, false
	}
	line = b[:i]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, i + 1, true
}

// commonRequestLine reads the request line of b, whose method is methodLen
// bytes long, if it is of the common kind: a target of bytes that
// parseRequestLine accepts, a space, "HTTP/1.1" or "HTTP/1.0", and CRLF or
// LF. It returns the offset of the next line, or 0 for any other line, which
// parseRequestLine then reads. A line it reads, parseRequestLine would read
// the same way.
func (h *RequestHead) commonRequestLine(b []byte, methodLen int) int {
	start := methodLen + 1
	var m uint64
	sp := start
	for ; sp < len(b)-7; sp += 8 {
		if m = targetMask(binary.LittleEndian.Uint64(b[sp:])); m != 0 {
			break
		}
	}
	if m == 0 {
		m = targetMask(tail(b, sp))
	}
	sp += bits.TrailingZeros64(m) / 8
	const (
		http10 = 'H' | 'T'<<8 | 'T'<<16 | 'P'<<24 | '/'<<32 | '1'<<40 | '.'<<48 | '0'<<56
		http11 = http10 + 1<<56
	)
	if sp == start || sp+10 > len(b) || b[sp] != ' ' {
		return 0
	}
	minor := 0
	switch binary.LittleEndian.Uint64(b[sp+1:]) {
	case http11:
		minor = 1
	case http10:
	default:
		return 0
	}
	next := sp + 10
	switch {
	case b[sp+9] == '\n':
	case b[sp+9] == '\r' && next < len(b) && b[next] == '\n':
		next++
	default:
		return 0
	}
	h.Target, h.ProtoMinor = b[start:sp], minor
	return next
}

// parseRequestLine reads the part of the request line after the method and
// its space: request-target SP HTTP-version (RFC 9112 §3).
func (h *RequestHead) parseRequestLine(rest []byte) error {
	sp := bytes.LastIndexByte(rest, ' ')
	if sp < 0 || !bytes.HasPrefix(rest[sp+1:], []byte("HTTP/")) {
		return fmt.Errorf("%w: request line has no HTTP version", ErrNotHTTP)
	}
	switch version := rest[sp+1:]; string(version) {
	case "HTTP/1.1":
		h.ProtoMinor = 1
	case "HTTP/1.0":
		h.ProtoMinor = 0
	default:
		return malformedf("unsupported version %.16q", version)
	}
	target := rest[:sp]
	if len(target) == 0 {
		return malformedf("empty request target")
	}
	// No form of request target has a fragment (RFC 9112 §3.2). Skip 8
	// bytes at a time while none is invalid, then find the first that is.
	i := 0
	for i+8 <= len(target) && targetMask(binary.LittleEndian.Uint64(target[i:])) == 0 {
		i += 8
	}
	for _, c := range target[i:] {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return malformedf("invalid byte %q in request target", c)
		}
	}
	h.Target = target
	return nil
}

// commonFields reads the field lines of b from off on while they are of the
// common kind, and returns the offset of the first line that is not: a name
// of ASCII letters, digits and '-', a colon, and a value without control
// bytes, ended by CRLF or LF. b must not hold a DEL, which commonFields does
// not look for. nextField reads every other line, and for each line that
// commonFields reads it returns the same name, value and next line.
//
// It is the fast path of parse: it looks at 8 bytes at a time, and makes
// slices of a line only if its name has the length of one that parse looks
// at.
func (h *RequestHead) commonFields(b []byte, off int, st *fieldState) (int, error) {
	for {
		var m uint64
		i := off
		for ; i < len(b)-7; i += 8 {
			if m = nameMask(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				break
			}
		}
		if m == 0 {
			m = nameMask(tail(b, i))
		}
		colon := i + bits.TrailingZeros64(m)/8
		// The end of the line is looked for from the start of the
		// word the name ends in, not from the colon, so that the next
		// line need not wait for where the colon is. The name has no
		// byte that valueMask marks.
		end := i
		for m = 0; end < len(b)-7; end += 8 {
			if m = valueMask(binary.LittleEndian.Uint64(b[end:])); m != 0 {
				break
			}
		}
		if m == 0 {
			m = valueMask(tail(b, end))
		}
		end += bits.TrailingZeros64(m) / 8
		// Both masks mark the zero bytes tail puts past the end of b,
		// and nameMask marks every byte that valueMask marks, so
		// colon <= end.
		if colon == off || end >= len(b) || b[colon] != ':' {
			return off, nil
		}
		// b[end] is the first byte of the line that valueMask marks,
		// after the colon, which nameMask would have stopped at.
		next := end + 1
		switch {
		case b[end] == '\n':
		case b[end] == '\r' && next < len(b) && b[next] == '\n':
			next++
		default:
			return off, nil // HTAB, a stray CR or another control byte
		}
		switch colon - off {
		case len("host"), len("upgrade"), len("content-length"), len("transfer-encoding"):
			vs, ve := colon+1, end
			for vs < ve && b[vs] == ' ' {
				vs++
			}
			for ve > vs && b[ve-1] == ' ' {
				ve--
			}
			if err := h.field(st, b[off:colon], b[vs:ve]); err != nil {
				return 0, err
			}
		}
		off = next
	}
}

// nextField reads the line of b that starts at off, a header field line or
// the empty line that ends the head (RFC 9112 §5). It returns the field's
// name and its value without surrounding whitespace, or a nil name for the
// empty line, and the offset of the next line. It returns ErrNeedMore if the
// line may be valid but does not end within b.
func nextField(b []byte, off int) (name, value []byte, next int, err error) {
	line := b[off:]
	if len(line) == 0 {
		return nil, nil, 0, ErrNeedMore
	}
	switch line[0] {
	case '\n':
		return nil, nil, off + 1, nil
	case '\r':
		if len(line) == 1 {
			return nil, nil, 0, ErrNeedMore
		}
		if line[1] == '\n' {
			return nil, nil, off + 2, nil
		}
		return nil, nil, 0, malformedf("CR without LF")
	case ' ', '\t':
		return nil, nil, 0, malformedf("header line starts with whitespace (obs-fold)")
	}

	colon := 0
	for colon < len(line) && tokenByte[line[colon]] {
		colon++
	}
	switch {
	case colon == len(line):
		return nil, nil, 0, ErrNeedMore
	case line[colon] == '\r' || line[colon] == '\n':
		return nil, nil, 0, malformedf("header line without colon")
	case line[colon] != ':':
		return nil, nil, 0, malformedf("invalid byte %q in field name", line[colon])
	case colon == 0:
		return nil, nil, 0, malformedf("empty field name")
	}

	// The line ends at the first control byte other than HTAB, which must
	// be LF or CR LF (RFC 9110 §5.5: a value is field-vchar, SP, HTAB and
	// obs-text).
	end := colon + 1
	for {
		if end+8 <= len(line) {
			m := controlMask(binary.LittleEndian.Uint64(line[end:]))
			if m == 0 {
				end += 8
				continue
			}
			end += bits.TrailingZeros64(m) / 8
		} else {
			for end < len(line) && line[end] >= ' ' && line[end] != 0x7f {
				end++
			}
			if end == len(line) {
				return nil, nil, 0, ErrNeedMore
			}
		}
		if line[end] != '\t' {
			break
		}
		end++
	}
	next = off + end + 1
	switch {
	case line[end] == '\r' && end+1 == len(line):
		return nil, nil, 0, ErrNeedMore
	case line[end] == '\r' && line[end+1] == '\n':
		next++
	case line[end] != '\n':
		return nil, nil, 0, malformedf("invalid byte %q in field value", line[end])
	}

	value = line[colon+1 : end]
	for len(value) > 0 && (value[0] == ' ' || value[0] == '\t') {
		value = value[1:]
	}
	for n := len(value); n > 0 && (value[n-1] == ' ' || value[n-1] == '\t'); n-- {
		value = value[:n-1]
	}
	return line[:colon], value, next, nil
}

// tail returns the bytes of b from i on, fewer than 8, as a little-endian
// uint64 with zero bytes in place of those past the end of b, or 0 if there
// are none or b is shorter than 8 bytes. The masks of the fast paths mark a
// zero byte, so that a scan that reaches the end of b stops there.
func tail(b []byte, i int) uint64 {
	if i >= len(b) || len(b) < 8 {
		return 0
	}
	return binary.LittleEndian.Uint64(b[len(b)-8:]) >> (8 * (i + 8 - len(b)))
}

// nameMask returns the high bit of the first byte of x that is not an ASCII
// letter, digit or '-', and maybe of later bytes, or 0 if there is none. The
// tests add a constant below 0x80 to each byte, whose high bit then says
// whether the byte reached the bound the constant sets; only a byte of 0x80
// or more can carry into the next byte, and it is itself marked.
func nameMask(x uint64) uint64 {
	lower := x | ones*0x20 // letters in lower case; no other byte becomes one
	letter := (lower + ones*(0x80-'a')) &^ (lower + ones*(0x80-'z'-1))
	digit := (x + ones*(0x80-'0')) &^ (x + ones*(0x80-'9'-1))
	notDash := (x ^ ones*'-') + ones*0x7f
	return (x | notDash&^(letter|digit)) & highs
}

// valueMask returns the high bit of the first byte of x that is a control
// byte, below ' ', and maybe of later bytes, or 0 if there is none: x-ones*n
// &^ x & highs has the high bit of the first byte of x below n set, and none
// before it (Bit Twiddling Hacks, "Determine if a word has a byte less than
// n"). Unlike controlMask it lets DEL through, which parse keeps away from
// it.
func valueMask(x uint64) uint64 {
	return (x - ones*' ') &^ x & highs
}

// controlMask returns the high bit of the first byte of x that is a control
// byte, below ' ' or DEL, and maybe of later bytes, or 0 if there is none.
// Bytes equal to DEL are those where x^(ones*DEL) is below 1.
func controlMask(x uint64) uint64 {
	del := x ^ ones*0x7f
	return valueMask(x) | (del-ones)&^del&highs
}

// targetMask returns the high bit of the first byte of x that is invalid in
// a request target, a control byte, space, DEL, a byte of 0x80 or more, or
// '#', and maybe of later bytes, or 0 if there is none. Each test adds a
// constant below 0x80 to the low 7 bits of a byte, which cannot carry into the
// next byte, and looks at the high bit of the sum: the bits reach 0x21 (past
// space), are 0x7f (DEL, or 0xff) or, once '#' is xored away, are not 0.
func targetMask(x uint64) uint64 {
	low := x &^ highs
	notHash := (low ^ ones*'#') + ones*0x7f
	return (x | ^(low + ones*(0x80-0x21)) | (low + ones) | ^notHash) & highs
}

// framing records the header fields that say where the body ends, and
// Upgrade. Anything a server might read differently from this proxy is
// malformed: the next request would start where the proxy does not look.
func (h *RequestHead) framing(name, value []byte, haveLength *bool) error {
	switch {
	case equalFold(name, "content-length"):
		if *haveLength {
			return malformedf("more than one Content-Length header")
		}
		n, ok := parseLength(value)
		if !ok {
			return malformedf("Content-Length %.32q is not a length", value)
		}
		h.ContentLength, *haveLength = n, true
	case equalFold(name, "transfer-encoding"):
		if h.Chunked || !equalFold(value, "chunked") {
			return malformedf("Transfer-Encoding %.32q: only a single \"chunked\" is accepted", value)
		}
		h.Chunked = true
	case equalFold(name, "upgrade"):
		h.Upgrade = true
	}
	return nil
}

// parseLength parses a Content-Length value: decimal digits, at most 18 of
// them, so that it fits an int64.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// equalFold reports whether b equals the lower-case ASCII string s, ignoring
// the case of b.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// isHost reports whether a field name is "Host", in any case.
func isHost(name []byte) bool {
	return len(name) == 4 &&
		name[0]|0x20 == 'h' && name[1]|0x20 == 'o' && name[2]|0x20 == 's' && name[3]|0x20 == 't'
}

// setHost sets the host and HostMismatch from the target and the value of
// the Host header, which is present if haveHost.
func (h *RequestHead) setHost(hostField []byte, haveHost bool) error {
	authority, err := targetAuthority(h.Method, h.Target)
	if err != nil {
		return err
	}
	var fieldHost []byte
	if haveHost {
		// The Host header must be valid even when the target wins.
		if fieldHost, err = checkHost(hostField); err != nil {
			return malformedf("Host %.64q: %v", hostField, err)
		}
	}
	if authority == nil {
		if !haveHost && h.ProtoMinor == 1 {
			return malformedf("HTTP/1.1 request without Host")
		}
		h.host = fieldHost
		return nil
	}
	if h.host, err = checkHost(authority); err != nil {
		return malformedf("request target host %.64q: %v", authority, err)
	}
	if len(h.host) == 0 {
		return malformedf("request target without host")
	}
	h.HostMismatch = haveHost && !bytes.EqualFold(fieldHost, h.host)
	return nil
}

// targetAuthority returns the authority of a target in absolute form
// ("http://example.com:8080/path") or, for CONNECT, authority form
// ("example.com:443"), and nil for a target in origin form ("/path") or, but
// for CONNECT, "*". Any scheme is accepted, like net/http does; user
// information ("http://user@host/") is refused (RFC 9110 §4.2.4), because it
// makes the host easy to misread.
func targetAuthority(method, target []byte) ([]byte, error) {
	connect := string(method) == "CONNECT"
	if target[0] == '/' || string(target) == "*" && !connect {
		return nil, nil
	}
	authority := target
	if !connect {
		i := schemeLen(target)
		if i == 0 || !bytes.HasPrefix(target[i:], []byte("://")) {
			return nil, malformedf("request target %.64q is not in origin or absolute form", target)
		}
		authority = target[i+3:]
		for j, c := range authority {
			if c == '/' || c == '?' {
				authority = authority[:j]
				break
			}
		}
	}
	if bytes.IndexByte(authority, '@') >= 0 {
		return nil, malformedf("request target %.64q has user information", target)
	}
	return authority, nil
}

// schemeLen returns the length of the URI scheme at the start of target:
// ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986 §3.1).
func schemeLen(target []byte) int {
	for i, c := range target {
		if !isAlpha(c) && (i == 0 || !isDigit(c) && c != '+' && c != '-' && c != '.') {
			return i
		}
	}
	return len(target)
}

// tokenByte reports which bytes are tchar (RFC 9110 §5.6.2).
var tokenByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = isAlpha(byte(c)) || isDigit(byte(c))
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()

// HasHost reports whether the request names a host. Only a request in
// origin form with an empty Host header, or an HTTP/1.0 one without a Host
// header, does not.
func (h *RequestHead) HasHost() bool { return len(h.host) > 0 }

// Host returns the host the request is for, normalised as described in the
// package documentation (an IPv6 literal is returned without brackets), or ""
// if it names none. It allocates the string; see [RequestHead.AppendHost] for
// a way that does not.
func (h *RequestHead) Host() string {
	var buf [maxNameLen]byte
	return string(h.AppendHost(buf[:0]))
}

// AppendHost appends the host, as returned by [RequestHead.Host], to dst and
// returns the extended slice. It does not allocate if dst has room for 253
// more bytes.
func (h *RequestHead) AppendHost(dst []byte) []byte {
	return appendLower(dst, h.host)
}
