package sni

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"time"
)

// fakeConn is a net.Conn that serves reads from r, failing with io.EOF once
// r is empty, and appends writes to w, or discards them if w is nil.
type fakeConn struct {
	r bytes.Reader
	w *bytes.Buffer
}

var _ net.Conn = (*fakeConn)(nil)

func (c *fakeConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *fakeConn) Write(p []byte) (int, error) {
	if c.w == nil {
		return len(p), nil
	}
	return c.w.Write(p)
}

func (c *fakeConn) Close() error                     { return nil }
func (c *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }

// captureHello returns the first flight of a crypto/tls client using cfg: it
// runs the client over a conn that records writes and fails reads, which
// stops the handshake once the ClientHello is out.
func captureHello(cfg *tls.Config) ([]byte, error) {
	var out bytes.Buffer
	err := tls.Client(&fakeConn{w: &out}, cfg).Handshake()
	if !errors.Is(err, io.EOF) {
		return nil, err
	}
	return out.Bytes(), nil
}

var errStop = errors.New("stop after the ClientHello")

// cryptoTLSHello is the common way to read a ClientHello: start a crypto/tls
// server on the recorded bytes and stop it in GetConfigForClient. It returns
// the ClientHelloInfo, or the handshake error if crypto/tls rejected the
// hello before.
func cryptoTLSHello(conn *fakeConn, data []byte) (*tls.ClientHelloInfo, error) {
	var info *tls.ClientHelloInfo
	conn.r.Reset(data)
	cfg := &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		info = h
		return nil, errStop
	}}
	err := tls.Server(conn, cfg).HandshakeContext(context.Background())
	if info == nil {
		return nil, err
	}
	return info, nil
}

// helloSummary is everything ParseClientHello reports, in comparable form.
type helloSummary struct {
	ServerName    string
	HasSNI        bool
	ALPN          []string
	Versions      []uint16
	LegacyVersion uint16
	ECH           bool
}

func summarize(h *ClientHello) helloSummary {
	s := helloSummary{
		ServerName:    h.ServerName(),
		HasSNI:        h.HasSNI(),
		Versions:      slices.Collect(h.Versions()),
		LegacyVersion: h.LegacyVersion,
		ECH:           h.ECH,
	}
	for p := range h.ALPN() {
		s.ALPN = append(s.ALPN, string(p))
	}
	return s
}

// handshakeBytes returns the concatenated payloads of the well-formed TLS
// records in data.
func handshakeBytes(data []byte) []byte {
	var msg []byte
	for len(data) >= recordHeaderLen {
		n := int(data[3])<<8 | int(data[4])
		msg = append(msg, data[recordHeaderLen:recordHeaderLen+n]...)
		data = data[recordHeaderLen+n:]
	}
	return msg
}

// reframe returns the handshake carried by the records in data, re-split into
// records with size bytes of payload each (the last may be shorter), and the
// record version of the first record.
func reframe(data []byte, size int) []byte {
	var out []byte
	for chunk := range slices.Chunk(handshakeBytes(data), size) {
		out = append(out, recordTypeHandshake, data[1], data[2], byte(len(chunk)>>8), byte(len(chunk)))
		out = append(out, chunk...)
	}
	return out
}

// Builders for hellos that real clients do not send.

func u16(v int) []byte { return []byte{byte(v >> 8), byte(v)} }

func vec8(parts ...[]byte) []byte {
	b := bytes.Join(parts, nil)
	return append([]byte{byte(len(b))}, b...)
}

func vec16(parts ...[]byte) []byte {
	b := bytes.Join(parts, nil)
	return append(u16(len(b)), b...)
}

// ext encodes an extension.
func ext(typ int, body ...[]byte) []byte { return append(u16(typ), vec16(body...)...) }

// sniExt encodes a server_name extension with one host_name per name.
func sniExt(names ...string) []byte {
	var entries [][]byte
	for _, n := range names {
		entries = append(entries, append([]byte{nameTypeHostName}, vec16([]byte(n))...))
	}
	return ext(extServerName, vec16(entries...))
}

// helloBody encodes a ClientHello body with a TLS 1.2 legacy_version, a zero
// random and session id, TLS_AES_128_GCM_SHA256, null compression and exts;
// with no exts it has no extensions block at all.
func helloBody(exts ...[]byte) []byte {
	b := slices.Concat(u16(tls.VersionTLS12), make([]byte, 32), vec8(), vec16(u16(0x1301)), vec8([]byte{0}))
	if exts != nil {
		b = append(b, vec16(exts...)...)
	}
	return b
}

// handshakeMsg wraps a body in a ClientHello handshake header.
func handshakeMsg(body []byte) []byte {
	n := len(body)
	return append([]byte{typeClientHello, byte(n >> 16), byte(n >> 8), byte(n)}, body...)
}

// record wraps payload in one handshake record with version 0x0301.
func record(payload []byte) []byte {
	return append([]byte{recordTypeHandshake, 3, 1, byte(len(payload) >> 8), byte(len(payload))}, payload...)
}

// hello builds a one-record ClientHello with exts.
func hello(exts ...[]byte) []byte { return record(handshakeMsg(helloBody(exts...))) }
