package nftrules

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// ErrNotApplied is returned by the methods of a [Conn] that change an
// applied ruleset (UpdateLists, UpdateSets, Pin, AddEgress) before a
// successful [Conn.Apply] on the same Conn.
var ErrNotApplied = errors.New("nftrules: no ruleset applied on this connection")

// ErrNoPinnedSets is returned by [Conn.Pin] when the applied ruleset has
// no pinned sets for a pin: only a [ModeDNS] ruleset has them for
// addresses on every port, and a dns-only one has none.
var ErrNoPinnedSets = errors.New("nftrules: the applied ruleset has no pinned sets for this pin")

// ErrUnsupported is returned on operating systems other than Linux.
var ErrUnsupported = errors.New("nftrules: nftables is only available on Linux")

// ConnConfig configures [Open]. Its zero value talks to the calling
// process's network namespace.
type ConnConfig struct {
	// NetNS is an open file descriptor of the network namespace to manage
	// (for example from /run/netns/NAME or /proc/PID/ns/net). Zero means the
	// namespace of the calling process.
	NetNS int
	// SocketBuffer is the size in bytes of the netlink socket's send and
	// receive buffers. A whole batch is sent in one message, so it bounds
	// the size of an update. Zero means 16 MiB, enough for about 200k
	// prefixes.
	SocketBuffer int
}

// elementsPerMessage is how many set elements (an interval takes two) go
// in one netlink message; larger messages overflow the 16-bit attribute
// length.
const elementsPerMessage = 1024

const defaultSocketBuffer = 16 << 20

// diffPrefixes returns the prefixes of old not in cur and those of cur not
// in old. Both lists are sorted by address and disjoint.
func diffPrefixes(old, cur []netip.Prefix) (removed, added []netip.Prefix) {
	i, j := 0, 0
	for i < len(old) && j < len(cur) {
		switch {
		case old[i] == cur[j]:
			i++
			j++
		case old[i].Addr().Less(cur[j].Addr()) ||
			old[i].Addr() == cur[j].Addr() && old[i].Bits() < cur[j].Bits():
			removed = append(removed, old[i])
			i++
		default:
			added = append(added, cur[j])
			j++
		}
	}
	removed = append(removed, old[i:]...)
	added = append(added, cur[j:]...)
	return removed, added
}

// Pin is an address that a ruleset lets new connections go to until
// Timeout has passed (see [Conn.Pin]): on every port (dns mode only), or
// on one protocol and port.
type Pin struct {
	// Addr is an IPv4 or IPv6 address; an IPv4-mapped IPv6 address counts
	// as IPv4.
	Addr netip.Addr
	// Proto and Port, when Port is not zero, limit the pin to that
	// protocol (TCP or UDP) and port, in the pinned_ports sets. Zero pins
	// the address on every port, in the pinned sets.
	Proto Proto
	Port  uint16
	// Timeout is how long the address stays pinned. It is raised to
	// MinPinTimeout (zero and negative values included: the kernel would
	// read zero as "forever") and lowered to MaxPinTimeout.
	Timeout time.Duration
	// Need is how long, at least, the address must stay pinned from now:
	// an address that this Conn pinned until then or later is left as it
	// is, and costs no netlink message. Zero means Timeout. A caller that
	// pins a record for its TTL plus a margin passes the TTL and the
	// margin here, and in Timeout a longer time, so that the same answer
	// given again (from a cache, with its TTL counted down) finds the
	// address pinned already. A Need longer than Timeout pins for Need.
	Need time.Duration
}

// Bounds of a [Pin]'s timeout.
const (
	MinPinTimeout = time.Second
	MaxPinTimeout = 24 * time.Hour
)

// pinKey is what a pin pins: an address, and a protocol and port or
// neither.
type pinKey struct {
	addr  netip.Addr // unmapped
	proto Proto      // zero with port
	port  uint16     // zero for the address on every port
}

// pinned is one element to (re)add to a pinned set.
type pinned struct {
	pinKey
	timeout time.Duration
}

// pinPlan is the elements to send, by set: addresses and services, IPv4
// and IPv6.
type pinPlan struct {
	v4, v6, ports4, ports6 []pinned
}

func (p *pinPlan) len() int { return len(p.v4) + len(p.v6) + len(p.ports4) + len(p.ports6) }

// planPins turns pins into the elements to send at time now, one per
// address (and protocol and port), by set, in the order of their first
// appearance. Timeouts are clamped and rounded up to the kernel's
// millisecond; a pin listed twice gets the longer timeout, and one whose
// deadline is known (from earlier pins) is later keeps what remains of it.
func planPins(pins []Pin, now time.Time, known map[pinKey]time.Time) (plan pinPlan, err error) {
	index := make(map[pinKey]int, len(pins))
	for _, p := range pins {
		if !p.Addr.IsValid() {
			return pinPlan{}, fmt.Errorf("%w: pin of an invalid address", ErrConfig)
		}
		if p.Port != 0 && p.Proto != TCP && p.Proto != UDP {
			return pinPlan{}, fmt.Errorf("%w: pin of protocol %d", ErrConfig, p.Proto)
		}
		k := pinKey{addr: p.Addr.Unmap().WithZone(""), port: p.Port}
		if p.Port != 0 {
			k.proto = p.Proto
		}
		t := min(max(p.Timeout, MinPinTimeout), MaxPinTimeout)
		need := t
		if p.Need > 0 {
			need = min(p.Need, MaxPinTimeout)
			t = max(t, need)
		}
		if d, ok := known[k]; ok {
			if !d.Before(now.Add(need)) {
				continue // pinned long enough already
			}
			t = max(t, d.Sub(now))
		}
		t = (t + time.Millisecond - 1).Truncate(time.Millisecond)
		var list *[]pinned
		switch {
		case k.port == 0 && k.addr.Is4():
			list = &plan.v4
		case k.port == 0:
			list = &plan.v6
		case k.addr.Is4():
			list = &plan.ports4
		default:
			list = &plan.ports6
		}
		if i, ok := index[k]; ok {
			(*list)[i].timeout = max((*list)[i].timeout, t)
			continue
		}
		index[k] = len(*list)
		*list = append(*list, pinned{k, t})
	}
	return plan, nil
}

// Lists are the contents of the allowlist and denylist sets for
// [Conn.UpdateLists], each sorted and disjoint, as policy.Snapshot's
// Prefixes and DenyPrefixes return them.
type Lists struct {
	Allow4, Allow6, Deny4, Deny6 []netip.Prefix
	// AllowPorts are the services of [Config.AllowPorts].
	AllowPorts []Service
	// TLSPorts and HTTPPorts are the extra proxied ports of
	// [Config.TLSPorts] and [Config.HTTPPorts]; ignored when the applied
	// ruleset has no sets for them (dns mode).
	TLSPorts, HTTPPorts []PortRange
	// Audit is the mode of [Config.Audit]. A change of mode replaces the
	// rules of the chains that hold the verdicts, in the batch that
	// updates the sets. Going from audit to enforce also empties the
	// pinned sets: addresses pinned while auditing (for names that the
	// policy refuses) must not outlive the switch; the names the policy
	// allows are pinned again when next asked for.
	Audit bool
}
