package sni

import (
	"errors"
	"fmt"
)

// Errors returned by [ParseClientHello] and [ParseRequestHead]. Except for
// ErrNeedMore, which is returned as is, they are wrapped with a detail that
// says what was wrong; test for them with [errors.Is].
var (
	// ErrNeedMore means the input is a valid prefix of a message that has
	// not arrived in full: call again with more bytes.
	ErrNeedMore = errors.New("sni: need more data")

	// ErrNotTLS means the first bytes cannot start a TLS handshake record,
	// for example "GET /" or an SSLv2-compatible hello.
	ErrNotTLS = errors.New("sni: not a TLS handshake")

	// ErrNotHTTP means the first bytes cannot start an HTTP/1.x request
	// line.
	ErrNotHTTP = errors.New("sni: not an HTTP/1.x request")

	// ErrMalformed means the input is TLS or HTTP but broken or ambiguous:
	// bad lengths, truncated vectors, duplicate extensions or Host
	// headers, or a name that is not a valid host name.
	ErrMalformed = errors.New("sni: malformed")

	// ErrTooLarge means the message is, or would become, larger than
	// [MaxHelloSize] or [MaxHeadSize].
	ErrTooLarge = errors.New("sni: too large")
)

// malformedf returns an error that wraps [ErrMalformed] with a detail.
func malformedf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}
