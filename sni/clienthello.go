package sni

import (
	"encoding/binary"
	"fmt"
	"iter"
)

// MaxHelloSize is the most bytes of a connection [ParseClientHello] looks at:
// 16 KiB for the ClientHello message and 1 KiB for its handshake header and
// the headers of the TLS records that carry it. Real hellos are 0.2 to 2 KB
// (a post-quantum key share is about 1.2 KB) and travel in one or two
// records, so this leaves room for larger key shares, ECH and session
// tickets while bounding what a proxy buffers per connection. A hello that is
// not complete within MaxHelloSize bytes is [ErrTooLarge]; in particular
// ParseClientHello never returns [ErrNeedMore] for MaxHelloSize bytes or more.
const MaxHelloSize = 16<<10 + 1<<10

const (
	recordHeaderLen     = 5  // type, version, length (RFC 8446 §5.1)
	recordTypeHandshake = 22 // handshake(22)

	// maxRecordLen is the longest record accepted, the TLS 1.3 limit for
	// an encrypted record (RFC 8446 §5.2). A plaintext record may carry
	// only 2^14 bytes, but crypto/tls tolerates more, and so do we.
	maxRecordLen = 1<<14 + 256

	handshakeHeaderLen = 4 // msg_type, uint24 length (RFC 8446 §4)
	typeClientHello    = 1 // client_hello(1)

	// minHelloBodyLen is the shortest ClientHello body: legacy_version (2),
	// random (32), an empty legacy_session_id (1), one cipher suite (2+2)
	// and one compression method (1+1).
	minHelloBodyLen = 2 + 32 + 1 + 2 + 2 + 1 + 1

	// maxHighExtensions caps the extensions of one hello with a type of 64
	// or more, which bounds the work of their duplicate check; types below
	// 64 can appear only once each anyway. Few such types are in use
	// (renegotiation_info, encrypted_client_hello, ALPS and the 16 GREASE
	// values of RFC 8701), so no real client comes close.
	maxHighExtensions = 128

	extServerName        = 0      // server_name (RFC 6066 §3)
	extALPN              = 16     // application_layer_protocol_negotiation (RFC 7301)
	extSupportedVersions = 43     // supported_versions (RFC 8446 §4.2.1)
	extECH               = 0xfe0d // encrypted_client_hello (draft-ietf-tls-esni)

	nameTypeHostName = 0 // host_name(0) (RFC 6066 §3)
)

// ClientHello is what [ParseClientHello] reads from a TLS ClientHello.
//
// A ClientHello does not copy the server name, the ALPN protocols or the
// versions: it keeps slices of the hello's bytes, which alias the data passed
// to ParseClientHello if the hello arrived in one record, and a buffer of its
// own otherwise. Do not modify that data while using the ClientHello. The
// server name is checked when parsed and lower-cased when read.
type ClientHello struct {
	// LegacyVersion is the hello's legacy_version field: the client's
	// highest version for TLS 1.2 and earlier, and 0x0303 (TLS 1.2) for TLS
	// 1.3 clients, which list their versions in the supported_versions
	// extension instead.
	LegacyVersion uint16

	// ECH reports whether the hello carries an encrypted_client_hello
	// extension (type 0xfe0d). If so the server name is the ECH public name
	// of the client-facing server, and the name the client really wants is
	// encrypted.
	ECH bool

	// Len is the number of bytes of input the hello occupies, record
	// headers included. It is at most [MaxHelloSize].
	Len int

	name     []byte // checked host_name without a trailing dot, or nil
	alpn     []byte // ProtocolNameList body, or nil
	versions []byte // supported_versions list body, or nil
}

// ParseClientHello parses the TLS ClientHello at the start of data, the first
// bytes a client sent on a connection. The hello may be split across several
// handshake records of any size, and data may end anywhere: if it holds a
// valid but incomplete prefix, ParseClientHello returns [ErrNeedMore] and
// should be called again once more bytes have arrived.
//
// Errors wrap [ErrNotTLS] if data does not start with a handshake record,
// [ErrMalformed] if the records or the hello are invalid, including an
// invalid server name, and [ErrTooLarge] if the hello would not fit in
// [MaxHelloSize] bytes. A hello without a server_name extension is not an
// error; [ClientHello.HasSNI] then reports false.
//
// ParseClientHello does not allocate when it succeeds on a hello that came in
// one record, which is how clients send it; reassembling a hello from several
// records allocates one buffer for the message.
func ParseClientHello(data []byte) (h ClientHello, err error) {
	// Everything is read in this one function, but for the server name
	// check and what only unusual hellos need, so that a hello costs few
	// calls.
	msg, ok := oneRecord(data)
	n := recordHeaderLen + len(msg)
	if !ok {
		if msg, n, err = readHandshake(data); err != nil {
			return ClientHello{}, err
		}
	}
	h.Len = n
	body := msg[handshakeHeaderLen:]

	// The body (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2), walked by offset
	// rather than by re-slicing, which keeps each step, a load and an
	// addition, short.
	const randomLen = 32
	if len(body) < 2+randomLen+1 {
		return ClientHello{}, malformedf("ClientHello truncated")
	}
	h.LegacyVersion = uint16(body[0])<<8 | uint16(body[1])
	if body[0] != 3 {
		return ClientHello{}, malformedf("ClientHello legacy_version %#04x", h.LegacyVersion)
	}
	off := 2 + randomLen
	if n := int(body[off]); n <= 32 {
		off += 1 + n
	} else {
		return ClientHello{}, malformedf("ClientHello legacy_session_id")
	}
	if len(body)-off < 2 {
		return ClientHello{}, malformedf("ClientHello truncated")
	}
	if n := int(body[off])<<8 | int(body[off+1]); n > 0 && n%2 == 0 {
		off += 2 + n
	} else {
		return ClientHello{}, malformedf("ClientHello cipher_suites")
	}
	if len(body)-off < 1 {
		return ClientHello{}, malformedf("ClientHello truncated")
	}
	if n := int(body[off]); n > 0 {
		off += 1 + n
	} else {
		return ClientHello{}, malformedf("ClientHello legacy_compression_methods")
	}
	switch {
	case off == len(body):
		return h, nil // TLS 1.2 and earlier may omit extensions
	case len(body)-off < 2 || int(body[off])<<8|int(body[off+1]) != len(body)-off-2:
		return ClientHello{}, malformedf("ClientHello extensions length")
	}
	exts := body[off+2:]

	// The extensions. No type may appear twice: types below 64, the
	// common ones, go in a bit set; the others go in a 64-bit hash set,
	// and only when two share a bit are the extensions before looked
	// through for the same type.
	const wanted = 1<<extServerName | 1<<extALPN | 1<<extSupportedVersions
	var seenLow, seenHigh uint64
	nHigh := 0
	// Where the bodies of the extensions h reads start and end, as
	// start<<16 | end (the extensions take less than 64 KiB), or 0. They
	// are read after the walk, so that the walk calls nothing.
	var bodies [3]uint32 // server_name, ALPN, supported_versions
	// Each step of this walk waits for the length read in the one before,
	// so it is kept short: one load for the type and the length, and a
	// loop test, i < len(exts)-3, that leaves the compiler one bound to
	// check.
	i := 0
	for i < len(exts)-3 {
		x := binary.BigEndian.Uint32(exts[i:])
		typ := uint16(x >> 16)
		start := i + 4
		i = start + int(x&0xffff)
		if i > len(exts) {
			return ClientHello{}, malformedf("ClientHello extension %#04x truncated", typ)
		}
		if typ >= 64 {
			if nHigh++; nHigh > maxHighExtensions {
				return ClientHello{}, malformedf("ClientHello has more than %d extensions of types above 63", maxHighExtensions)
			}
			bit := uint64(1) << (uint32(typ) * 0x9e3779b1 >> 26)
			if seenHigh&bit != 0 && hasExtension(exts[:start-4], typ) {
				return ClientHello{}, malformedf("duplicate extension %#04x", typ)
			}
			seenHigh |= bit
			h.ECH = h.ECH || typ == extECH
			continue
		}
		bit := uint64(1) << typ
		if seenLow&bit != 0 {
			return ClientHello{}, malformedf("duplicate extension %#04x", typ)
		}
		seenLow |= bit
		if bit&wanted != 0 {
			switch body := uint32(start)<<16 | uint32(i); typ {
			case extServerName:
				bodies[0] = body
			case extALPN:
				bodies[1] = body
			default:
				bodies[2] = body
			}
		}
	}
	if i != len(exts) {
		return ClientHello{}, malformedf("ClientHello extension truncated")
	}

	if b := bodies[0]; b != 0 {
		d := exts[b>>16 : b&0xffff]
		// Clients send one entry, a host name: list length, type,
		// name length.
		if len(d) > 5 && int(d[0])<<8|int(d[1]) == len(d)-2 && d[2] == nameTypeHostName &&
			int(d[3])<<8|int(d[4]) == len(d)-5 {
			h.name, err = checkHostName(d[5:])
		} else {
			h.name, err = parseServerName(d)
		}
		if err != nil {
			return ClientHello{}, err
		}
	}
	if b := bodies[1]; b != 0 {
		if h.alpn, err = parseALPN(exts[b>>16 : b&0xffff]); err != nil {
			return ClientHello{}, err
		}
	}
	if b := bodies[2]; b != 0 {
		// supported_versions (RFC 8446 §4.2.1): a list of 2-byte
		// versions, not empty.
		d := exts[b>>16 : b&0xffff]
		if len(d) < 3 || int(d[0]) != len(d)-1 || d[0]%2 != 0 {
			return ClientHello{}, malformedf("supported_versions length")
		}
		h.versions = d[1:]
	}
	return h, nil
}

// readHandshake returns the ClientHello handshake message, its header
// included, carried by the records at the start of data, and the number of
// bytes those records occupy. The message must end where a record ends. It is
// the long way for data that oneRecord refused, so msg, when there is one, is
// a new buffer joined from several records.
//
// Records may be as short as one byte, even the handshake header may be split,
// and data may end anywhere. Record headers and the handshake header are
// checked as far as data holds them, so a bad one is reported before the rest
// arrives.
func readHandshake(data []byte) (msg []byte, n int, err error) {
	var (
		hdr     [handshakeHeaderLen]byte // handshake header, gathered across records
		hdrLen  int                      // bytes of hdr gathered
		msgLen  = -1                     // handshake header plus body, once hdr is complete
		got     int                      // message bytes in the complete records so far
		records int                      // records seen, complete or not
		off     int                      // offset in data of the next record
	)
	for got != msgLen {
		// A record needs at least one byte of payload after its header.
		if off+recordHeaderLen >= MaxHelloSize {
			return nil, 0, fmt.Errorf("%w: ClientHello continues past %d bytes", ErrTooLarge, MaxHelloSize)
		}
		rec := data[off:]
		if err := checkRecordHeader(rec, records); err != nil {
			return nil, 0, err
		}
		if len(rec) < recordHeaderLen {
			return nil, 0, ErrNeedMore
		}
		records++
		recLen := int(rec[3])<<8 | int(rec[4])
		if recLen == 0 || recLen > maxRecordLen {
			return nil, 0, malformedf("record %d: length %d", records, recLen)
		}
		if off+recordHeaderLen+recLen > MaxHelloSize {
			return nil, 0, fmt.Errorf("%w: record %d ends past %d bytes", ErrTooLarge, records, MaxHelloSize)
		}
		body := rec[recordHeaderLen:min(len(rec), recordHeaderLen+recLen)]

		if msgLen < 0 {
			// Every byte of the records before this one went into
			// hdr, so the header continues at body[hdrLen-got].
			for ; hdrLen < handshakeHeaderLen && hdrLen-got < len(body); hdrLen++ {
				hdr[hdrLen] = body[hdrLen-got]
			}
			if hdrLen > 0 && hdr[0] != typeClientHello {
				return nil, 0, malformedf("handshake message type %d, want ClientHello", hdr[0])
			}
			if hdrLen == handshakeHeaderLen {
				bodyLen := int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
				if bodyLen < minHelloBodyLen {
					return nil, 0, malformedf("ClientHello length %d", bodyLen)
				}
				msgLen = handshakeHeaderLen + bodyLen
			}
		}
		if msgLen >= 0 {
			if got+recLen > msgLen {
				return nil, 0, malformedf("record %d continues past the ClientHello", records)
			}
			// The rest of the message needs records, and
			// headers, of its own.
			later := msgLen - got - recLen
			minRecords := records + (later+maxRecordLen-1)/maxRecordLen
			if minRecords*recordHeaderLen+msgLen > MaxHelloSize {
				return nil, 0, fmt.Errorf("%w: ClientHello of %d bytes", ErrTooLarge, msgLen)
			}
		}
		if len(body) < recLen {
			return nil, 0, ErrNeedMore
		}
		got += recLen
		off += recordHeaderLen + recLen
	}
	// oneRecord, which ParseClientHello tries first, accepts every
	// hello that fits in one record, so there are several to join.
	msg = make([]byte, 0, msgLen)
	for p := 0; p < off; {
		recLen := int(data[p+3])<<8 | int(data[p+4])
		msg = append(msg, data[p+recordHeaderLen:p+recordHeaderLen+recLen]...)
		p += recordHeaderLen + recLen
	}
	return msg, off, nil
}

// oneRecord returns the handshake message if the first record of data is
// complete and carries exactly one valid ClientHello header and body, which
// is how clients send it. ParseClientHello tries it before readHandshake: ok
// is false in every other case, and then readHandshake takes the long way.
func oneRecord(data []byte) (msg []byte, ok bool) {
	if len(data) < recordHeaderLen+handshakeHeaderLen {
		return nil, false
	}
	// The record header's type and major version, and its length, which
	// must be the handshake header's and the body's: msg_type and a
	// 24-bit length in one word.
	recLen := int(binary.BigEndian.Uint16(data[3:]))
	if binary.BigEndian.Uint16(data) != recordTypeHandshake<<8|3 || data[2] > 4 ||
		binary.BigEndian.Uint32(data[5:]) != typeClientHello<<24|uint32(recLen-handshakeHeaderLen) ||
		recLen < handshakeHeaderLen+minHelloBodyLen || recLen > min(maxRecordLen, len(data)-recordHeaderLen) {
		return nil, false
	}
	return data[recordHeaderLen : recordHeaderLen+recLen], true
}

// checkRecordHeader checks the bytes present of the header of the record that
// follows the given number of records: its type must be handshake and its
// version between 0x0300 and 0x0304. A bad first record means the client does
// not speak TLS; a bad later one, that it speaks it wrongly.
func checkRecordHeader(rec []byte, records int) error {
	var detail string
	switch {
	case len(rec) > 0 && rec[0] != recordTypeHandshake:
		detail = fmt.Sprintf("type %d", rec[0])
	case len(rec) > 1 && rec[1] != 3:
		detail = fmt.Sprintf("version major %d", rec[1])
	case len(rec) > 2 && rec[2] > 4:
		detail = fmt.Sprintf("version %#04x", uint16(rec[1])<<8|uint16(rec[2]))
	default:
		return nil
	}
	if records == 0 {
		return fmt.Errorf("%w: first record: %s", ErrNotTLS, detail)
	}
	return malformedf("record %d: %s", records+1, detail)
}

// hasExtension reports whether exts, a list of well-formed extensions, has
// one of type typ.
func hasExtension(exts []byte, typ uint16) bool {
	for i := 0; i+4 <= len(exts); i += 4 + int(binary.BigEndian.Uint16(exts[i+2:])) {
		if binary.BigEndian.Uint16(exts[i:]) == typ {
			return true
		}
	}
	return false
}

// parseServerName reads a server_name extension body (RFC 6066 §3) and
// returns its host name without a trailing dot. The list must hold exactly
// one host_name, which must be a host name and not an IP literal; entries of
// other types are skipped.
func parseServerName(data []byte) ([]byte, error) {
	list, rest, ok := cutVec16(data)
	if !ok || len(rest) != 0 || len(list) == 0 {
		return nil, malformedf("server_name list length")
	}
	var hostName []byte
	for len(list) > 0 {
		nameType := list[0]
		name, next, ok := cutVec16(list[1:])
		if !ok || len(name) == 0 {
			return nil, malformedf("server_name entry")
		}
		list = next
		if nameType != nameTypeHostName {
			continue
		}
		if hostName != nil {
			return nil, malformedf("server_name has two host names")
		}
		var err error
		if hostName, err = checkHostName(name); err != nil {
			return nil, err
		}
	}
	if hostName == nil {
		return nil, malformedf("server_name has no host name")
	}
	return hostName, nil
}

// checkHostName checks the host name of a server_name entry, which must be a
// host name and not an IP literal, and returns it without a trailing dot.
func checkHostName(name []byte) ([]byte, error) {
	checked, err := checkName(name)
	if err != nil {
		return nil, malformedf("server name %.64q: %v", name, err)
	}
	if mayEndNumber(checked[len(checked)-1]) && endsInNumber(checked) {
		return nil, malformedf("server name %.64q is an IP address", name)
	}
	return checked, nil
}

// parseALPN checks an ALPN extension body (RFC 7301 §3.1), a non-empty list
// of non-empty protocol names, and returns the list.
func parseALPN(data []byte) ([]byte, error) {
	list, rest, ok := cutVec16(data)
	if !ok || len(rest) != 0 || len(list) == 0 {
		return nil, malformedf("ALPN list length")
	}
	for r := list; len(r) > 0; {
		proto, next, ok := cutVec8(r)
		if !ok || len(proto) == 0 {
			return nil, malformedf("ALPN protocol name")
		}
		r = next
	}
	return list, nil
}

// HasSNI reports whether the client sent a server name. Without one a filter
// cannot tell where the connection goes.
func (h *ClientHello) HasSNI() bool { return len(h.name) > 0 }

// ServerName returns the server name, normalised as described in the package
// documentation, or "" if the client sent none. It allocates the string; see
// [ClientHello.AppendServerName] for a way that does not.
func (h *ClientHello) ServerName() string {
	var buf [maxNameLen]byte
	return string(h.AppendServerName(buf[:0]))
}

// AppendServerName appends the server name, normalised as described in the
// package documentation, to dst and returns the extended slice. It does not
// allocate if dst has room for 253 more bytes.
func (h *ClientHello) AppendServerName(dst []byte) []byte {
	return appendLower(dst, h.name)
}

// ALPN returns an iterator over the protocols of the ALPN extension, such as
// "h2" and "http/1.1", in the client's order of preference. It yields nothing
// if the client sent no ALPN extension. Each protocol aliases the hello's
// bytes (see [ClientHello]) and has a capacity equal to its length.
func (h *ClientHello) ALPN() iter.Seq[[]byte] {
	list := h.alpn
	return func(yield func([]byte) bool) {
		for r := list; len(r) > 0; {
			n := 1 + int(r[0])
			if !yield(r[1:n:n]) {
				return
			}
			r = r[n:]
		}
	}
}

// HasALPN reports whether the client offers the ALPN protocol proto.
func (h *ClientHello) HasALPN(proto string) bool {
	for p := range h.ALPN() {
		if string(p) == proto {
			return true
		}
	}
	return false
}

// Versions returns an iterator over the TLS versions the client offers, such
// as 0x0304 for TLS 1.3 ([crypto/tls.VersionTLS13]): those of the
// supported_versions extension in the client's order, skipping GREASE values
// (RFC 8701), or, without the extension, LegacyVersion alone. Clients of TLS
// 1.2 and earlier often accept lower versions as well, which Versions does not
// list.
func (h *ClientHello) Versions() iter.Seq[uint16] {
	list, legacy := h.versions, h.LegacyVersion
	return func(yield func(uint16) bool) {
		if len(list) == 0 {
			yield(legacy)
			return
		}
		for i := 0; i+1 < len(list); i += 2 {
			v := uint16(list[i])<<8 | uint16(list[i+1])
			if !isGREASE(v) && !yield(v) {
				return
			}
		}
	}
}

// SupportsVersion reports whether [ClientHello.Versions] yields v.
func (h *ClientHello) SupportsVersion(v uint16) bool {
	for got := range h.Versions() {
		if got == v {
			return true
		}
	}
	return false
}

// isGREASE reports whether v is a GREASE value (RFC 8701 §2): 0x0a0a, 0x1a1a,
// ..., 0xfafa.
func isGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>8 == v&0xff
}

// cutVec8 splits b into the vector with a 1-byte length prefix at its start,
// without the prefix, and the bytes after it. ok is false if b is too short.
func cutVec8(b []byte) (vec, rest []byte, ok bool) {
	if len(b) < 1 || len(b)-1 < int(b[0]) {
		return nil, nil, false
	}
	n := 1 + int(b[0])
	return b[1:n], b[n:], true
}

// cutVec16 is cutVec8 for a 2-byte length prefix.
func cutVec16(b []byte) (vec, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := 2 + (int(b[0])<<8 | int(b[1]))
	if len(b) < n {
		return nil, nil, false
	}
	return b[2:n], b[n:], true
}
