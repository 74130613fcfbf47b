package dashboardapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/g0lab/g0efilter/events"
)

// Record is an event as the dashboard stores and serves it: the event and
// the ID the store gave it. IDs grow with every event stored and are never
// reused, not even after a clear, so "every event after ID n" is a complete
// answer to a reader that has seen up to n.
type Record struct {
	ID    uint64
	Event events.Event
}

// MarshalJSON writes the event's wire format (see package events) with an
// "id" key first: {"id":42,"time":"...","component":"https",...}. IDs stay
// below 2^53, so a JavaScript number holds them exactly.
func (r Record) MarshalJSON() ([]byte, error) {
	ev, err := r.Event.MarshalJSON()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(ev)+24)
	out = append(out, `{"id":`...)
	out = strconv.AppendUint(out, r.ID, 10)
	if len(ev) > 2 {
		out = append(out, ',')
	}
	return append(out, ev[1:]...), nil
}

// UnmarshalJSON reads what MarshalJSON writes. The event part is checked as
// [events.Event.UnmarshalJSON] checks it.
func (r *Record) UnmarshalJSON(data []byte) error {
	var id struct {
		ID *uint64 `json:"id"`
	}
	if err := json.Unmarshal(data, &id); err != nil {
		return fmt.Errorf("dashboardapi: record: %w", err)
	}
	if id.ID == nil {
		return fmt.Errorf("dashboardapi: record: id missing")
	}
	var e events.Event
	if err := e.UnmarshalJSON(data); err != nil {
		return err
	}
	r.ID, r.Event = *id.ID, e
	return nil
}

// IngestResponse answers POST /api/v1/logs. Valid events of a batch are
// stored even when others are rejected; the status is 200 unless every
// event of a non-empty batch was rejected (400).
type IngestResponse struct {
	// Accepted counts the events stored.
	Accepted int `json:"accepted"`
	// Rejected lists the events that were not, in batch order.
	Rejected []Rejection `json:"rejected,omitempty"`
}

// Rejection says why one event of a batch was not stored.
type Rejection struct {
	// Index is the event's position in the batch, from 0.
	Index int `json:"index"`
	// Error names the field and the problem: "events: invalid event: action:
	// unknown value \"permitted\"".
	Error string `json:"error"`
}

// LogsResponse answers GET /api/v1/logs.
type LogsResponse struct {
	// Events are the matching records, oldest first.
	Events []Record `json:"events"`
	// More is true when the limit cut the answer short: more records match
	// before the first one returned (reading the newest) or after the last
	// one (reading with since_id).
	More bool `json:"more"`
	// LastID is the store's newest ID when the answer was made, matching or
	// not: a stream opened with last_event_id=LastID continues from here
	// without a gap.
	LastID uint64 `json:"last_id"`
}

// ClearResponse answers DELETE /api/v1/logs.
type ClearResponse struct {
	// Cleared counts the events removed.
	Cleared int `json:"cleared"`
}

// Health answers GET /health.
type Health struct {
	// Status is "ok" when the store answers, "unavailable" (with status
	// 503) when it does not.
	Status string `json:"status"`
	// Events counts the events held.
	Events int `json:"events"`
	// LastID is the newest ID given.
	LastID uint64 `json:"last_id"`
	// Error says what failed when Status is not "ok".
	Error string `json:"error,omitempty"`
}

// Info answers GET /api/v1/info, which the UI reads first.
type Info struct {
	// Unblocks is true when the server has remote unblock routes, so that
	// the UI shows its unblock buttons.
	Unblocks bool `json:"unblocks"`
	// ReadLimit is the most events one read returns.
	ReadLimit int `json:"read_limit"`
	// Ingest is true when a filter key is set, so filters can ship events.
	Ingest bool `json:"ingest"`
	// User and Role are the signed-in person's; User is empty with
	// AUTH=none.
	User string `json:"user"`
	Role string `json:"role"`
	// Auth is how the person signed in: none, local, forward or oidc.
	Auth string `json:"auth"`
	// CSRFToken goes in the X-Csrf-Token header of every request that
	// changes something.
	CSRFToken string `json:"csrf_token"`
	// Logout is true when the person can sign out here (local and OIDC
	// sign-ins).
	Logout bool `json:"logout"`
}

// ObservedResponse answers GET /api/v1/observed?hostname=X: what one
// filter's workload reached or tried to, as the events this dashboard
// holds for it show, grouped by registrable domain. Groups come by their
// most pressing verdict, would-block first, then blocked, then allowed;
// within a verdict by domain, with the addresses reached without a name
// last.
type ObservedResponse struct {
	// Hostname is the filter's.
	Hostname string `json:"hostname"`
	// Events counts the filter's events read; Skipped, those that are no
	// reason to allow anything (denied, malformed, attempts to get around
	// the filter); Overflow, those about more destinations than are kept
	// (suggest.DefaultMaxDestinations).
	Events   int `json:"events"`
	Skipped  int `json:"skipped"`
	Overflow int `json:"overflow"`
	// Partial is true when only the oldest 200 000 events this
	// dashboard holds, of every filter, were read.
	Partial bool `json:"partial"`
	// From and To bound the events' times; absent without events.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
	// Groups are the destinations by registrable domain.
	Groups []ObservedGroup `json:"groups"`
}

// ObservedGroup is the destinations of one registrable domain, or those
// reached by address without a name.
type ObservedGroup struct {
	// Domain is the registrable domain by the public suffix list
	// ("example.co.uk" for api.example.co.uk; a name that has none stands
	// for itself), "" for addresses reached without a name.
	Domain string `json:"domain"`
	// Verdict is the most pressing of its destinations' verdicts:
	// would-block, else blocked, else allowed.
	Verdict events.Action `json:"verdict"`
	// Count, Blocked and WouldBlock sum its destinations'.
	Count      int `json:"count"`
	Blocked    int `json:"blocked"`
	WouldBlock int `json:"would_block"`
	// Destinations are ordered as the groups are, then by name, address
	// and port.
	Destinations []ObservedDestination `json:"destinations"`
}

// ObservedDestination is one name, or one address reached without a
// name, on a protocol and port.
type ObservedDestination struct {
	// Name is the name in canonical (ASCII) form; empty for an address
	// reached without one.
	Name string `json:"name,omitempty"`
	// Addr is the address connected to, when known: for a name, the one
	// the filter last saw it at.
	Addr string `json:"addr,omitempty"`
	// Proto ("tcp", "udp") and Port are absent for a DNS question.
	Proto string `json:"proto,omitempty"`
	Port  uint16 `json:"port,omitempty"`
	// Verdict is the latest decision: allowed, blocked or would-block.
	Verdict events.Action `json:"verdict"`
	// Count is how many decisions; Blocked and WouldBlock, how many of
	// them refused or, in audit mode, would have.
	Count      int `json:"count"`
	Blocked    int `json:"blocked"`
	WouldBlock int `json:"would_block"`
	// First and Last bound the decisions' times.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	// Entry is the entry of the suggested policy (GET /api/v1/suggest,
	// with the same dns parameter) that allows it: "api.example.com",
	// "*.example.com", "tcp/198.51.100.7:5432", "api.example.com:8443".
	Entry string `json:"entry"`
	// Target is what the UI's Allow button asks a remote unblock for:
	// the name where a plain name entry allows it, else Entry itself,
	// with its protocol and ports, so that the destination is allowed
	// and no more. Empty where Entry is not one.
	Target string `json:"target,omitempty"`
}

// ErrorResponse is the body of every answer with a 4xx or 5xx status.
type ErrorResponse struct {
	Error string `json:"error"`
}

// appendJSON appends v's JSON, as json.Marshal writes it, without the
// trailing newline an Encoder adds.
func appendJSON(b *bytes.Buffer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.Write(data)
	return nil
}
