package sni

import (
	"encoding/binary"
	"fmt"
	"iter"
	"slices"
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
	msg, n, err := readHandshake(data)
	if err != nil {
		return ClientHello{}, err
	}
	h.Len = n
	if err := h.parse(msg[handshakeHeaderLen:]); err != nil {
		return ClientHello{}, err
	}
	return h, nil
}

// parse reads the body of a ClientHello (RFC 8446 §4.1.2, RFC 5246
// §7.4.1.2).
func (h *ClientHello) parse(body []byte) error {
	const randomLen = 32
	if len(body) < 2+randomLen+1 {
		return malformedf("ClientHello truncated")
	}
	h.LegacyVersion = binary.BigEndian.Uint16(body)
	if body[0] != 3 {
		return malformedf("ClientHello legacy_version %#04x", h.LegacyVersion)
	}
	rest := body[2+randomLen:]
	if rest[0] > 32 {
		return malformedf("ClientHello legacy_session_id")
	}
	_, rest, ok := cutVec8(rest)
	if !ok {
		return malformedf("ClientHello truncated")
	}
	suites, rest, ok := cutVec16(rest)
	if !ok {
		return malformedf("ClientHello truncated")
	}
	if len(suites) == 0 || len(suites)%2 != 0 {
		return malformedf("ClientHello cipher_suites")
	}
	methods, rest, ok := cutVec8(rest)
	if !ok {
		return malformedf("ClientHello truncated")
	}
	if len(methods) == 0 {
		return malformedf("ClientHello legacy_compression_methods")
	}
	if len(rest) == 0 {
		return nil // TLS 1.2 and earlier may omit extensions
	}
	exts, rest, ok := cutVec16(rest)
	if !ok || len(rest) != 0 {
		return malformedf("ClientHello extensions length")
	}

	// No extension type may appear twice: types below 64, the common
	// ones, are noted in a bit set, the others in a list of at most
	// maxHighExtensions.
	var seenLow uint64
	var highTypes [maxHighExtensions]uint16
	high := highTypes[:0]
	for len(exts) > 0 {
		if len(exts) < 4 {
			return malformedf("ClientHello extension truncated")
		}
		typ := binary.BigEndian.Uint16(exts)
		data, next, ok := cutVec16(exts[2:])
		if !ok {
			return malformedf("ClientHello extension %#04x truncated", typ)
		}
		exts = next
		if typ < 64 {
			if seenLow&(1<<typ) != 0 {
				return malformedf("duplicate extension %#04x", typ)
			}
			seenLow |= 1 << typ
		} else {
			if len(high) == maxHighExtensions {
				return malformedf("ClientHello has more than %d extensions of types above 63", maxHighExtensions)
			}
			if slices.Contains(high, typ) {
				return malformedf("duplicate extension %#04x", typ)
			}
			high = append(high, typ)
		}
		var err error
		switch typ {
		case extServerName:
			h.name, err = parseServerName(data)
		case extALPN:
			h.alpn, err = parseALPN(data)
		case extSupportedVersions:
			// A list of 2-byte versions, not empty (RFC 8446 §4.2.1).
			if len(data) < 3 || int(data[0]) != len(data)-1 || data[0]%2 != 0 {
				return malformedf("supported_versions length")
			}
			h.versions = data[1:]
		case extECH:
			h.ECH = true
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readHandshake returns the ClientHello handshake message, its header
// included, carried by the records at the start of data, and the number of
// bytes those records occupy. The message must end where a record ends. msg
// is a slice of data if the message came in one record, and a new buffer
// joined from the records otherwise.
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
	if records == 1 {
		return data[recordHeaderLen:off], off, nil
	}
	msg = make([]byte, 0, msgLen)
	for p := 0; p < off; {
		recLen := int(data[p+3])<<8 | int(data[p+4])
		msg = append(msg, data[p+recordHeaderLen:p+recordHeaderLen+recLen]...)
		p += recordHeaderLen + recLen
	}
	return msg, off, nil
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
	if endsInNumber(checked) {
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
