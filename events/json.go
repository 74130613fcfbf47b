package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// ErrInvalid is wrapped by the errors of [Event.UnmarshalJSON],
// [Event.MarshalJSON] and [Action.UnmarshalText]. The error text names the
// offending field.
var ErrInvalid = errors.New("events: invalid event")

// MarshalText returns the action's name: "allowed", "blocked", "error",
// "would-block" or "changed".
// An invalid action is an error wrapping [ErrInvalid].
func (a Action) MarshalText() ([]byte, error) {
	switch a {
	case Allowed, Blocked, Error, WouldBlock, Changed:
		return []byte(a.String()), nil
	}
	return nil, fmt.Errorf("%w: action: unknown value %d", ErrInvalid, uint8(a))
}

// UnmarshalText accepts exactly the names MarshalText returns. Anything else
// is an error wrapping [ErrInvalid].
func (a *Action) UnmarshalText(text []byte) error {
	switch string(text) {
	case "allowed":
		*a = Allowed
	case "blocked":
		*a = Blocked
	case "error":
		*a = Error
	case "would-block":
		*a = WouldBlock
	case "changed":
		*a = Changed
	default:
		return fmt.Errorf("%w: action: unknown value %q", ErrInvalid, text)
	}
	return nil
}

// wireEvent is the JSON form of an Event; the field order here is the order
// on the wire.
type wireEvent struct {
	Time      string `json:"time"`
	Host      string `json:"host,omitempty"`
	Component string `json:"component"`
	Action    string `json:"action"`
	Protocol  string `json:"protocol,omitempty"`
	SrcIP     string `json:"src_ip,omitempty"`
	SrcPort   uint16 `json:"src_port,omitempty"`
	DstIP     string `json:"dst_ip,omitempty"`
	DstPort   uint16 `json:"dst_port,omitempty"`
	Name      string `json:"name,omitempty"`
	QType     string `json:"qtype,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Detail    string `json:"detail,omitempty"`
	Rule      string `json:"rule,omitempty"`
	Flow      string `json:"flow,omitempty"`
}

// MarshalJSON encodes e in the wire format described in the package
// documentation. It fails, with an error wrapping [ErrInvalid], for an event
// that [Event.UnmarshalJSON] would refuse: an invalid Action, an empty
// Component, or a Time outside the years 0 to 9999.
func (e Event) MarshalJSON() ([]byte, error) {
	action, err := e.Action.MarshalText()
	if err != nil {
		return nil, err
	}
	if e.Component == "" {
		return nil, fmt.Errorf("%w: component: missing", ErrInvalid)
	}
	t, err := e.Time.UTC().MarshalText()
	if err != nil {
		return nil, fmt.Errorf("%w: time: %v", ErrInvalid, err)
	}
	w := wireEvent{
		Time:      string(t),
		Host:      e.Host,
		Component: string(e.Component),
		Action:    string(action),
		Protocol:  e.Protocol,
		Name:      e.Name,
		QType:     e.QType,
		Reason:    string(e.Reason),
		Detail:    e.Detail,
		Rule:      e.Rule,
	}
	if e.Flow != 0 {
		w.Flow = itoa(e.Flow)
	}
	w.SrcIP, w.SrcPort = splitAddrPort(e.Source)
	w.DstIP, w.DstPort = splitAddrPort(e.Destination)
	return json.Marshal(w)
}

// UnmarshalJSON decodes the wire format described in the package
// documentation and checks it: time, component and action must be present
// and valid, addresses must parse, a port needs its address. Unknown keys
// are ignored. On error, which wraps [ErrInvalid] and names the field, *e is
// left unchanged.
func (e *Event) UnmarshalJSON(data []byte) error {
	var w wireEvent
	if err := json.Unmarshal(data, &w); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fmt.Errorf("%w: %s: %v", ErrInvalid, te.Field, err)
		}
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var out Event
	if w.Time == "" {
		return fmt.Errorf("%w: time: missing", ErrInvalid)
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return fmt.Errorf("%w: time: %v", ErrInvalid, err)
	}
	out.Time = t.UTC()
	if y := out.Time.Year(); y < 0 || y > 9999 {
		return fmt.Errorf("%w: time: %q is outside the years 0 to 9999 in UTC", ErrInvalid, w.Time)
	}
	if w.Component == "" {
		return fmt.Errorf("%w: component: missing", ErrInvalid)
	}
	out.Component = Component(w.Component)
	if w.Action == "" {
		return fmt.Errorf("%w: action: missing", ErrInvalid)
	}
	if err := out.Action.UnmarshalText([]byte(w.Action)); err != nil {
		return err
	}
	if out.Source, err = joinAddrPort("src", w.SrcIP, w.SrcPort); err != nil {
		return err
	}
	if out.Destination, err = joinAddrPort("dst", w.DstIP, w.DstPort); err != nil {
		return err
	}
	out.Host = w.Host
	out.Protocol = w.Protocol
	out.Name = w.Name
	out.QType = w.QType
	out.Reason = Reason(w.Reason)
	out.Detail = w.Detail
	out.Rule = w.Rule
	if w.Flow != "" {
		if out.Flow, err = strconv.ParseUint(w.Flow, 10, 64); err != nil {
			return fmt.Errorf("%w: flow: want a decimal uint64 in a string, have %q", ErrInvalid, w.Flow)
		}
	}
	*e = out
	return nil
}

func splitAddrPort(ap netip.AddrPort) (string, uint16) {
	if !ap.Addr().IsValid() {
		return "", 0
	}
	return ap.Addr().String(), ap.Port()
}

func joinAddrPort(prefix, ip string, port uint16) (netip.AddrPort, error) {
	if ip == "" {
		if port != 0 {
			return netip.AddrPort{}, fmt.Errorf("%w: %s_port: given without %s_ip", ErrInvalid, prefix, prefix)
		}
		return netip.AddrPort{}, nil
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %s_ip: %v", ErrInvalid, prefix, err)
	}
	return netip.AddrPortFrom(addr, port), nil
}
