package nftrules

import (
	"errors"
	"net/netip"
)

// ErrNotApplied is returned by [Conn.UpdateSets] before a successful
// [Conn.Apply] on the same Conn.
var ErrNotApplied = errors.New("nftrules: no ruleset applied on this connection")

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

// ElementsPerMessage is how many set elements (an interval takes two) go
// in one netlink message; larger messages overflow the 16-bit attribute
// length.
const ElementsPerMessage = 1024

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
