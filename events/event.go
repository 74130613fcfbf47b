package events

import (
	"net/netip"
	"time"
)

// Action is the verdict an event reports.
type Action uint8

// Actions. The zero Action is invalid, so that an event nobody filled in is
// never mistaken for a verdict.
const (
	Allowed Action = iota + 1 // the traffic was let through
	Blocked                   // the traffic was refused
	Error                     // the decision could not be carried out
	// WouldBlock is a decision to refuse taken in audit mode: the
	// traffic was let through, and would have been refused in enforce
	// mode for the event's Reason.
	WouldBlock
	// Changed reports a change to the filter rather than a decision on
	// traffic: its policy's mode switched ([ReasonAuditMode],
	// [ReasonEnforceMode]). Its Component is [Policy].
	Changed
)

// String returns "allowed", "blocked", "error", "would-block", "changed",
// or "action(N)" for an invalid value.
func (a Action) String() string {
	switch a {
	case Allowed:
		return "allowed"
	case Blocked:
		return "blocked"
	case Error:
		return "error"
	case WouldBlock:
		return "would-block"
	case Changed:
		return "changed"
	}
	return "action(" + itoa(uint64(a)) + ")"
}

// Component names the part of the filter that decided.
type Component string

// Components.
const (
	HTTPS  Component = "https"  // the TLS (SNI) proxy
	HTTP   Component = "http"   // the plain-HTTP (Host) proxy
	DNS    Component = "dns"    // the filtering resolver
	Kernel Component = "kernel" // the nftables ruleset, read through nflog
	Policy Component = "policy" // the filter's policy itself: a change of mode
)

// Reason says why a decision was taken, in a few stable words suitable as a
// metric label. Details that vary per connection go in [Event.Detail].
type Reason string

// Reasons used by this module's components. Other sources may add their own.
const (
	ReasonAllowlisted    Reason = "allowlisted"          // a rule allowed it; Event.Rule names it
	ReasonNotAllowlisted Reason = "not allowlisted"      // no rule allowed the name or address
	ReasonDenied         Reason = "denied"               // the denylist holds the name or address; Event.Rule names the entry when known
	ReasonTooLong        Reason = "too long"             // dns: a name deeper or longer under a wildcard, or a TXT answer bigger, than the limits
	ReasonQueryType      Reason = "query type"           // dns: a question of a type that only tunnels use (NULL)
	ReasonRateLimited    Reason = "rate limited"         // dns: a client asked more questions a second than the limit
	ReasonNoName         Reason = "no server name"       // a ClientHello without SNI, a request without Host
	ReasonMalformed      Reason = "malformed"            // not the expected protocol, or broken
	ReasonTimeout        Reason = "timeout"              // the client did not send enough in time
	ReasonWrongAddress   Reason = "address not for name" // the name does not resolve to the destination
	ReasonHostMismatch   Reason = "host mismatch"        // absolute-form target and Host disagree
	ReasonResolve        Reason = "resolve failed"       // the name could not be resolved to check it
	ReasonDial           Reason = "dial failed"          // the upstream could not be reached
	ReasonNoDestination  Reason = "no destination"       // the original destination of a redirected connection could not be read
	ReasonPinned         Reason = "pinned"               // dns mode: the address came from an allowed answer
	ReasonUnsupported    Reason = "unsupported"          // a request the filter cannot follow safely (CONNECT, Upgrade on plain HTTP)
	ReasonForgedMark     Reason = "forged mark"          // the filter's socket mark on a socket outside the filter's cgroup
	ReasonLocalService   Reason = "local service"        // the workload knocked on a local service other than through the redirect
	ReasonRawFrame       Reason = "raw frame"            // frames sent through a packet socket, below the IP stack, dropped at egress
	ReasonLocalName      Reason = "local name"           // dns: a single-label name the local resolver answers; its addresses are not pinned
	ReasonSpoofedSource  Reason = "spoofed source"       // a packet from a raw or transparent socket with a source that is not the namespace's
	ReasonInjected       Reason = "injected"             // a frame written to loopback through a packet socket
	ReasonForgedConn     Reason = "forged conn"          // a packet written into one of the filter's own connections from outside its cgroup
	ReasonAuditMode      Reason = "audit mode"           // policy: the filter audits; nothing is refused, what would be is reported
	ReasonEnforceMode    Reason = "enforce mode"         // policy: the filter enforces the policy again
)

// Bypass reports whether r is that of an attempt to get around the
// filter (a forged mark or connection, a spoofed source, an injected or
// raw frame, a knock on a local service) rather than a destination the
// policy does not allow: what an alert should call out.
func (r Reason) Bypass() bool {
	switch r {
	case ReasonForgedMark, ReasonLocalService, ReasonRawFrame, ReasonSpoofedSource, ReasonInjected, ReasonForgedConn:
		return true
	}
	return false
}

// Refused reports whether a is a decision to refuse the traffic, carried
// out ([Blocked]) or, in audit mode, only reported ([WouldBlock]).
func (a Action) Refused() bool { return a == Blocked || a == WouldBlock }

// Event is one decision. Only Time, Component and Action are always set;
// the rest is filled in where the component knows it.
type Event struct {
	// Time is when the decision was taken.
	Time time.Time
	// Host identifies the filter that decided (its HOSTNAME).
	Host string
	// Component is the part of the filter that decided.
	Component Component
	// Action is the verdict.
	Action Action
	// Protocol is the transport: "tcp" or "udp".
	Protocol string
	// Source is the client's address and port.
	Source netip.AddrPort
	// Destination is the original destination of the connection or packet.
	Destination netip.AddrPort
	// Name is the TLS server name, the HTTP Host or the DNS question name.
	Name string
	// QType is the DNS question type ("A", "AAAA", ...); dns events only.
	QType string
	// Reason says why, in stable words.
	Reason Reason
	// Detail adds what varies per event (an error text, the addresses a name
	// resolved to); empty when Reason says it all.
	Detail string
	// Rule is the policy entry that matched ("*.example.com",
	// "198.18.0.0/15"); empty when none did.
	Rule string
	// Flow identifies the connection or query, so that several events about
	// it (a blocked second request on a kept-alive connection, say) can be
	// tied together. Zero means none.
	Flow uint64
}

// Sink receives events. Emit must return quickly and must not keep e's
// address; implementations that do I/O put a queue in front of it.
type Sink interface {
	Emit(e Event)
}

// SinkFunc adapts a function to a [Sink].
type SinkFunc func(Event)

// Emit calls f(e).
func (f SinkFunc) Emit(e Event) { f(e) }

// Discard is a Sink that drops every event.
var Discard Sink = SinkFunc(func(Event) {})

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
