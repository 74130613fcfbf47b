package sni

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/g0lab/g0efilter/events"
)

// errRefused ends a kept-alive connection whose next request was blocked.
var errRefused = errors.New("request refused")

// maxChunkLine bounds a chunk-size line or a trailer line of a chunked body.
const maxChunkLine = 4 << 10

// reqReader reads the client side of an HTTP connection: request heads and
// bodies, through a peek buffer that is held only while it has unread bytes.
type reqReader struct {
	conn  net.Conn
	buf   *buffer // nil when nothing is buffered
	off   int     // start of the unread bytes in buf.b
	first [64]byte
}

func (r *reqReader) buffered() []byte {
	if r.buf == nil {
		return nil
	}
	return r.buf.b[r.off:]
}

// consume marks n buffered bytes read, releasing the buffer when it is empty.
func (r *reqReader) consume(n int) {
	r.off += n
	if r.off == len(r.buf.b) {
		r.release()
	}
}

func (r *reqReader) release() {
	putBuffer(r.buf)
	r.buf, r.off = nil, 0
}

// fill reads more bytes from the client into the buffer, making room first.
// While nothing is buffered it waits with a small array, so an idle
// kept-alive connection holds no peek buffer.
func (r *reqReader) fill() error {
	if r.buf == nil {
		n, err := r.conn.Read(r.first[:])
		if n > 0 {
			r.buf = getBuffer()
			r.buf.b = append(r.buf.b, r.first[:n]...)
		}
		return err
	}
	if len(r.buf.b) == cap(r.buf.b) && r.off > 0 {
		r.buf.b = r.buf.b[:copy(r.buf.b, r.buf.b[r.off:])]
		r.off = 0
	}
	b := r.buf.b
	n, err := r.conn.Read(b[len(b):cap(b)])
	r.buf.b = b[:len(b)+n]
	return err
}

// head reads the next request head. It returns the read error if the client
// stopped or stalled first.
//
// A head that arrives a few bytes at a time is parsed again only when its
// end may have come, when what is buffered has doubled, or when the buffer
// is full: the work stays linear in the head's length, however slowly it
// drips in, and a head that goes wrong early is still refused early.
func (r *reqReader) head() (RequestHead, error) {
	parsed := 0 // how much of the head the last parse saw
	for {
		b := r.buffered()
		if len(b) > 0 && (len(b) >= 2*parsed || len(r.buf.b) == cap(r.buf.b) || mayEndHead(b[max(parsed-2, 0):])) {
			h, err := ParseRequestHead(b)
			if !errors.Is(err, ErrNeedMore) {
				return h, err
			}
			parsed = len(b)
		}
		if err := r.fill(); err != nil {
			return RequestHead{}, err
		}
	}
}

// mayEndHead reports whether b holds an empty line's end: "\n\n" or
// "\n\r\n".
func mayEndHead(b []byte) bool {
	for i := bytes.IndexByte(b, '\n'); i >= 0 && i+1 < len(b); {
		if rest := b[i+1:]; rest[0] == '\n' || len(rest) > 1 && rest[0] == '\r' && rest[1] == '\n' {
			return true
		}
		next := bytes.IndexByte(b[i+1:], '\n')
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return false
}

// line returns the next line of the body, through its LF, at most
// maxChunkLine bytes long. It stays valid until the next read.
func (r *reqReader) line() ([]byte, error) {
	for {
		b := r.buffered()
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return b[:i+1], nil
		}
		if len(b) >= maxChunkLine {
			return nil, fmt.Errorf("%w: chunk line longer than %d bytes", ErrMalformed, maxChunkLine)
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

// serveHTTP decides the first request, connects, and then forwards requests
// one by one, deciding each. In audit mode a connection whose requests the
// proxy cannot follow (not HTTP, a head that never completes, CONNECT or an
// upgrade) is forwarded raw once its refusal is reported.
func (c *conn) serveHTTP(ctx context.Context) {
	p := c.proxy
	r := &reqReader{conn: c.client}
	defer func() {
		if r.buf != nil {
			r.release()
		}
	}()
	c.client.SetReadDeadline(time.Now().Add(p.helloTimeout()))
	h, err := r.head()
	var (
		name string
		v    verdict
	)
	switch {
	case err == nil:
		name = h.Host()
		var ok bool
		if v, ok = checkRequest(&h); ok {
			v = p.decide(ctx, name, c.dst)
		}
	case errors.Is(err, ErrNeedMore) || !isParseError(err):
		v = c.readVerdict(err, len(r.buffered()))
	default:
		v = verdict{reason: events.ReasonMalformed, detail: err.Error()}
	}
	if !c.open(ctx, name, v) {
		return
	}
	c.client.SetReadDeadline(time.Time{})
	if err != nil || !followable(&h) {
		c.relay(func(st *idleState) error { return c.forwardRaw(r, st) })
		return
	}
	dialled := ""
	if v.allowed {
		dialled = name
	}
	c.relay(func(st *idleState) error {
		return c.forwardRequests(ctx, r, h, dialled, st)
	})
}

// isParseError reports whether err came from the parser rather than the
// connection.
func isParseError(err error) bool {
	return errors.Is(err, ErrMalformed) || errors.Is(err, ErrNotHTTP) || errors.Is(err, ErrTooLarge)
}

// checkRequest refuses requests whose meaning the proxy cannot follow
// safely, whatever their host.
func checkRequest(h *RequestHead) (verdict, bool) {
	switch {
	case !h.HasHost():
		return verdict{reason: events.ReasonNoName}, false
	case h.HostMismatch:
		return verdict{reason: events.ReasonHostMismatch, detail: fmt.Sprintf("target %.100q", h.Target)}, false
	case string(h.Method) == "CONNECT":
		return verdict{reason: events.ReasonUnsupported, detail: "CONNECT tunnels are not forwarded"}, false
	case h.Upgrade:
		// After a switch of protocols the proxy could no longer see the
		// requests that follow; if the server declined the switch, they
		// would go through unchecked.
		return verdict{reason: events.ReasonUnsupported, detail: "protocol upgrade on plain HTTP is not forwarded"}, false
	}
	return verdict{}, true
}

// followable reports whether the proxy can tell where the request after h
// starts: not after a CONNECT or an upgrade, which the server may accept.
func followable(h *RequestHead) bool {
	return string(h.Method) != "CONNECT" && !h.Upgrade
}

// forwardRaw forwards what is buffered, then the rest of the client's
// stream, without reading it as requests.
func (c *conn) forwardRaw(r *reqReader, st *idleState) error {
	if b := r.buffered(); len(b) > 0 {
		if err := c.write(b); err != nil {
			return err
		}
		r.consume(len(b))
		c.proxy.stats.up.Add(uint64(len(b)))
	}
	return c.pipe(st, up, c.upstream, c.client, -1)
}

// forwardRequests forwards the request h, whose head is at the start of r's
// buffer, and every request after it on the connection, each decided before
// a byte of it goes upstream. A refused request ends the connection; in
// audit mode it is forwarded as the others are. dialled is the name the
// connection was opened for, "" if its first request was refused.
func (c *conn) forwardRequests(ctx context.Context, r *reqReader, h RequestHead, dialled string, st *idleState) error {
	lastName, lastOK := dialled, dialled != ""
	for {
		if err := c.forwardRequest(r, &h, st); err != nil {
			return err
		}

		// Wait for the first byte of the next request, as long as the
		// connection is not idle; the client may also close.
		for len(r.buffered()) == 0 {
			c.client.SetReadDeadline(time.Now().Add(st.timeout))
			err := r.fill()
			switch {
			case len(r.buffered()) > 0 || err == nil:
			case isTimeout(err):
				if st.stalled(up) {
					return errIdle
				}
			case errors.Is(err, io.EOF):
				closeWrite(c.upstream)
				st.idle[up].Store(true)
				return nil
			default:
				return err
			}
		}
		st.active(up)

		// The rest of its head must then come within HelloTimeout, as the
		// first request's did, however slowly it trickles in.
		c.client.SetReadDeadline(time.Now().Add(c.proxy.helloTimeout()))
		var (
			err  error
			name string
			v    verdict
		)
		h, err = r.head()
		switch {
		case err != nil && isParseError(err):
			v = verdict{reason: events.ReasonMalformed, detail: err.Error()}
		case isTimeout(err):
			v = c.readVerdict(err, len(r.buffered()))
		case err != nil:
			return err
		default:
			name = h.Host()
			var ok bool
			if v, ok = checkRequest(&h); ok {
				v = c.decideNext(ctx, name, dialled, lastName, lastOK)
				lastName, lastOK = name, v.allowed
			}
		}
		if v.allowed {
			c.emit(events.Allowed, name, v)
			continue
		}
		if !c.refused(ctx, name, v) {
			return errRefused
		}
		if err != nil || !followable(&h) {
			return c.forwardRaw(r, st)
		}
	}
}

// decideNext decides a request after the first on a connection that is
// already open to a destination, dialled for the name dialled ("" if the
// first request was refused and forwarded in audit mode).
func (c *conn) decideNext(ctx context.Context, name, dialled, lastName string, lastOK bool) verdict {
	p := c.proxy
	if p.Destination == DialName && name != dialled {
		detail := fmt.Sprintf("connection was dialled for %s", dialled)
		if dialled == "" {
			detail = "connection was forwarded to its original destination, not dialled by name"
		}
		return verdict{reason: events.ReasonWrongAddress, detail: detail}
	}
	if (name == lastName && lastOK) || p.Destination == DialName {
		// The destination is already right for this name: the check held a
		// moment ago, or the connection was dialled for it. The policy may
		// have changed since, so ask it again.
		return p.match(name, c.dst.Port())
	}
	return p.decide(ctx, name, c.dst)
}

// forwardRequest writes the head of h and its body upstream.
func (c *conn) forwardRequest(r *reqReader, h *RequestHead, st *idleState) error {
	b := r.buffered()
	n := h.HeadLen
	if !h.Chunked {
		// Send the head with as much of the body as is already here.
		n += int(min(h.ContentLength, int64(len(b)-h.HeadLen)))
	}
	if err := c.write(b[:n]); err != nil {
		return err
	}
	r.consume(n)
	c.proxy.stats.up.Add(uint64(n))
	if h.Chunked {
		return c.forwardChunked(r, st)
	}
	return c.forwardBody(r, h.ContentLength-int64(n-h.HeadLen), st)
}

func (c *conn) write(b []byte) error {
	c.upstream.SetWriteDeadline(time.Now().Add(c.proxy.idleTimeout()))
	_, err := c.upstream.Write(b)
	return err
}

// forwardBody forwards n bytes of body: first what is buffered, then the
// rest straight from the client's socket.
func (c *conn) forwardBody(r *reqReader, n int64, st *idleState) error {
	if n == 0 {
		return nil
	}
	if b := r.buffered(); len(b) > 0 {
		k := int(min(int64(len(b)), n))
		if err := c.write(b[:k]); err != nil {
			return err
		}
		r.consume(k)
		c.proxy.stats.up.Add(uint64(k))
		n -= int64(k)
	}
	return c.pipe(st, up, c.upstream, c.client, n)
}

// forwardChunked forwards a chunked body (RFC 9112 §7.1) through its last
// chunk and trailer section. Chunk-size lines must be hexadecimal sizes,
// optionally followed by extensions, ending in CRLF; anything looser could
// be read differently by the server and hide a request from the proxy.
func (c *conn) forwardChunked(r *reqReader, st *idleState) error {
	for {
		c.client.SetReadDeadline(time.Now().Add(st.timeout))
		line, err := r.line()
		if err != nil {
			return err
		}
		size, err := parseChunkSize(line)
		if err != nil {
			return err
		}
		if err := c.write(line); err != nil {
			return err
		}
		r.consume(len(line))
		if size == 0 {
			return c.forwardTrailers(r, st)
		}
		if err := c.forwardBody(r, size, st); err != nil {
			return err
		}
		c.client.SetReadDeadline(time.Now().Add(st.timeout))
		if line, err = r.line(); err != nil {
			return err
		}
		if string(line) != "\r\n" {
			return fmt.Errorf("%w: chunk data not followed by CRLF", ErrMalformed)
		}
		if err := c.write(line); err != nil {
			return err
		}
		r.consume(len(line))
	}
}

// forwardTrailers forwards the trailer section after the last chunk, up to
// and including its empty line.
func (c *conn) forwardTrailers(r *reqReader, st *idleState) error {
	for {
		c.client.SetReadDeadline(time.Now().Add(st.timeout))
		line, err := r.line()
		if err != nil {
			return err
		}
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return fmt.Errorf("%w: trailer line without CRLF", ErrMalformed)
		}
		end := len(line) == 2
		if err := c.write(line); err != nil {
			return err
		}
		r.consume(len(line))
		if end {
			return nil
		}
	}
}

// parseChunkSize parses a chunk-size line: 1 to 15 hexadecimal digits, then
// optionally ";" and extensions, then CRLF.
func parseChunkSize(line []byte) (int64, error) {
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return 0, fmt.Errorf("%w: chunk-size line without CRLF", ErrMalformed)
	}
	body := line[:len(line)-2]
	if bytes.IndexByte(body, '\r') >= 0 {
		return 0, fmt.Errorf("%w: CR in chunk-size line", ErrMalformed)
	}
	digits := body
	if i := bytes.IndexByte(body, ';'); i >= 0 {
		digits = body[:i]
	}
	if len(digits) == 0 || len(digits) > 15 {
		return 0, fmt.Errorf("%w: chunk size %.20q", ErrMalformed, digits)
	}
	var n int64
	for _, d := range digits {
		switch {
		case '0' <= d && d <= '9':
			d -= '0'
		case 'a' <= d && d <= 'f':
			d -= 'a' - 10
		case 'A' <= d && d <= 'F':
			d -= 'A' - 10
		default:
			return 0, fmt.Errorf("%w: chunk size %.20q", ErrMalformed, digits)
		}
		n = n<<4 | int64(d)
	}
	return n, nil
}
