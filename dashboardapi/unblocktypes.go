package dashboardapi

import "time"

// States of an [UnblockRequest].
const (
	// UnblockPending: waiting for its filter to poll, apply and
	// acknowledge it.
	UnblockPending = "pending"
	// UnblockApplied: the filter added the target to its policy.
	UnblockApplied = "applied"
	// UnblockFailed: the filter could not add it; Error says why.
	UnblockFailed = "failed"
	// UnblockExpired: no filter picked it up in time
	// ([UnblocksConfig.Expiry]).
	UnblockExpired = "expired"
)

// Kinds of an [UnblockRequest] target.
const (
	// UnblockDomain is a domain name or a wildcard, "example.com" or
	// "*.example.com", in the canonical form of policy.NormalizeDomain.
	UnblockDomain = "domain"
	// UnblockIP is an address or a prefix, "198.51.100.7/32" or
	// "2001:db8::/48", as policy.ParsePrefix returns it.
	UnblockIP = "ip"
)

// UnblockRequest is one pending or finished unblock, as the API sends it.
type UnblockRequest struct {
	// ID is opaque and unique.
	ID string `json:"id"`
	// Hostname is the filter the request is for: its HOSTNAME, as its
	// events carry it.
	Hostname string `json:"hostname"`
	// Target is normalised: a domain ("example.com", "*.example.com") or a
	// prefix ("198.51.100.7/32", "2001:db8::/48").
	Target string `json:"target"`
	// Kind is [UnblockDomain] or [UnblockIP].
	Kind string `json:"kind"`
	// Created is when the request was made.
	Created time.Time `json:"created"`
	// State is [UnblockPending], [UnblockApplied], [UnblockFailed] or
	// [UnblockExpired].
	State string `json:"state"`
	// Error says why the request failed.
	Error string `json:"error,omitempty"`
	// Updated is when State last changed (Created while pending).
	Updated time.Time `json:"updated"`
}

// Final reports whether the request reached a state that does not change
// any more: applied, failed or expired.
func (r UnblockRequest) Final() bool { return r.State != UnblockPending }

// UnblockAck is a filter's result for one request.
type UnblockAck struct {
	// ID is the request's.
	ID string `json:"id"`
	// Applied is true when the target is now in the filter's policy,
	// including when it already was.
	Applied bool `json:"applied"`
	// Error says why it was not applied.
	Error string `json:"error,omitempty"`
}

// CreateUnblock is the body of POST /api/v1/unblocks.
type CreateUnblock struct {
	// Hostname is the filter to unblock on, as its events name it.
	Hostname string `json:"hostname"`
	// Target is a domain, a wildcard, an IP address or a CIDR prefix.
	Target string `json:"target"`
}

// UnblocksResponse answers GET /api/v1/unblocks (a filter's pending
// requests) and GET /api/v1/unblocks/status (every request), oldest first.
type UnblocksResponse struct {
	Requests []UnblockRequest `json:"requests"`
}

// AckUnblocks is the body of POST /api/v1/unblocks/ack.
type AckUnblocks struct {
	Acks []UnblockAck `json:"acks"`
}

// Results of one acknowledgement, in [UnblockAckResult].
const (
	// AckRecorded: the request took the filter's result.
	AckRecorded = "recorded"
	// AckIgnored: the request had already been applied or failed; it
	// keeps its state.
	AckIgnored = "ignored"
	// AckUnknown: no such request, such as one made before the dashboard
	// restarted, or forgotten after [UnblocksConfig.MaxRecords].
	AckUnknown = "unknown"
)

// AckUnblocksResponse answers POST /api/v1/unblocks/ack: one result per
// acknowledgement, in the order they were sent. The status is 200 even
// when some are unknown.
type AckUnblocksResponse struct {
	Results []UnblockAckResult `json:"results"`
}

// UnblockAckResult says what became of one acknowledgement.
type UnblockAckResult struct {
	// ID is the acknowledgement's.
	ID string `json:"id"`
	// Result is [AckRecorded], [AckIgnored] or [AckUnknown].
	Result string `json:"result"`
	// State is the request's state after the acknowledgement, when the
	// request is known.
	State string `json:"state,omitempty"`
}

// Actions of an [UnblockAudit] record.
const (
	AuditRequest = "request" // someone asked for an unblock
	AuditAck     = "ack"     // a filter reported a result
	AuditExpire  = "expire"  // a pending request ran out of time
)

// UnblockAudit is one audit record: who asked for what, when, and what
// came of it. Records are never changed once written.
type UnblockAudit struct {
	// Time is when it happened.
	Time time.Time `json:"time"`
	// Action is [AuditRequest], [AuditAck] or [AuditExpire].
	Action string `json:"action"`
	// ID is the request's, when there is one.
	ID string `json:"id,omitempty"`
	// Hostname and Target are the request's: normalised when it was
	// valid, as sent (cut to 256 bytes) when it was refused.
	Hostname string `json:"hostname,omitempty"`
	Target   string `json:"target,omitempty"`
	// Remote is the address the HTTP request came from; behind a reverse
	// proxy, the proxy's.
	Remote string `json:"remote,omitempty"`
	// User is who the server authenticated: the signed-in person's name
	// ("anonymous (AUTH=none)" without sign-in), or for a filter
	// "filter HOSTNAME (key FINGERPRINT)" with the key's
	// [FilterKey.Fingerprint]. Never a name a client sent.
	User string `json:"user,omitempty"`
	// ForwardedFor is the X-Forwarded-For header as a trusted proxy
	// ([AuthConfig.TrustedProxies]) set it; empty from anyone else.
	ForwardedFor string `json:"forwarded_for,omitempty"`
	// Result is, for a request: "created", "duplicate" (the pending one
	// was returned) or "refused"; for an acknowledgement: "applied",
	// "failed", [AckIgnored] or [AckUnknown]; for an expiry: "expired".
	Result string `json:"result"`
	// Error is why a request was refused or an unblock failed.
	Error string `json:"error,omitempty"`
}

// UnblockAuditResponse answers GET /api/v1/unblocks/audit, oldest first.
type UnblockAuditResponse struct {
	Records []UnblockAudit `json:"records"`
}
