package dnsfilter

import "errors"

// Errors returned by this package, for callers that branch with [errors.Is].
var (
	// ErrNoUpstream means an [Upstream] has no servers to ask.
	ErrNoUpstream = errors.New("dnsfilter: no upstream servers")

	// ErrUpstream means no upstream server gave a usable answer: every one
	// timed out, could not be reached, sent something that is not an
	// answer to the question, or answered SERVFAIL or REFUSED. The error
	// that wraps it also wraps each server's own error.
	ErrUpstream = errors.New("dnsfilter: no upstream answered")

	// ErrNotFound means a name has no A or AAAA records: it does not exist
	// (NXDOMAIN) or exists without addresses.
	ErrNotFound = errors.New("dnsfilter: name not found")

	// ErrInvalidName means a name given to [Resolver.LookupNetIP] is not a
	// valid domain name.
	ErrInvalidName = errors.New("dnsfilter: invalid name")

	// ErrServerUsed means a [Server] was asked to serve a second time.
	ErrServerUsed = errors.New("dnsfilter: server already used")

	// ErrMarkUnsupported means [Upstream.Mark] is set on an operating
	// system where sockets cannot carry a firewall mark (any but Linux).
	ErrMarkUnsupported = errors.New("dnsfilter: socket marks are only available on Linux")
)
