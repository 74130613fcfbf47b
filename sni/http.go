package sni

import (
	"bytes"
	"fmt"
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
	if err := h.parse(data); err != nil {
		return RequestHead{}, err
	}
	return h, nil
}

// parse reads the request head at the start of data into h.
func (h *RequestHead) parse(data []byte) error {
	// Tell a client that speaks something else without waiting for a line.
	methodLen, err := scanMethod(data)
	if err != nil {
		return err
	}
	head := data[:min(len(data), MaxHeadSize)]
	h.Method = head[:methodLen]
	line, off, ok := firstLine(head)
	if !ok {
		return needMore(data)
	}
	if err := h.parseRequestLine(line[methodLen+1:]); err != nil {
		return err
	}

	var fields fieldState
	for {
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
	// No form of request target has a fragment (RFC 9112 §3.2).
	for _, c := range target {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return malformedf("invalid byte %q in request target", c)
		}
	}
	h.Target = target
	return nil
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
	for end < len(line) && (line[end] >= ' ' && line[end] != 0x7f || line[end] == '\t') {
		end++
	}
	if end == len(line) {
		return nil, nil, 0, ErrNeedMore
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
