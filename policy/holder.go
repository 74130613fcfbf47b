package policy

import (
	"net/netip"
	"sync/atomic"
)

// empty allows nothing; a Holder that was never given a Snapshot serves it,
// so readers fail closed.
var empty = func() *Snapshot {
	names, _, _ := compileNames(nil)
	return &Snapshot{names: names}
}()

// Holder holds the live Snapshot. Readers call its methods or [Holder.Load]
// without locks; a reload calls [Holder.Store], and each reader sees either
// the old Snapshot or the new one, never a mix. The zero value is ready to
// use and allows nothing until the first Store.
type Holder struct {
	current atomic.Pointer[Snapshot]
}

// Load returns the current Snapshot, never nil.
func (h *Holder) Load() *Snapshot {
	if s := h.current.Load(); s != nil {
		return s
	}
	return empty
}

// Store makes s the current Snapshot. Storing nil is ignored: a policy is
// replaced, never removed.
func (h *Holder) Store(s *Snapshot) {
	if s != nil {
		h.current.Store(s)
	}
}

// MatchHost is [Snapshot.MatchHost] on the current Snapshot.
func (h *Holder) MatchHost(name string) (string, bool) { return h.Load().MatchHost(name) }

// DenyHost is [Snapshot.DenyHost] on the current Snapshot.
func (h *Holder) DenyHost(name string) (string, bool) { return h.Load().DenyHost(name) }

// DenyAddr is [Snapshot.DenyAddr] on the current Snapshot.
func (h *Holder) DenyAddr(a netip.Addr) (netip.Prefix, bool) { return h.Load().DenyAddr(a) }

// MatchAddr is [Snapshot.MatchAddr] on the current Snapshot.
func (h *Holder) MatchAddr(a netip.Addr) (netip.Prefix, bool) { return h.Load().MatchAddr(a) }

// Audit is [Snapshot.Audit] on the current Snapshot.
func (h *Holder) Audit() bool { return h.Load().Audit() }

// MatchHostPort is [Snapshot.MatchHostPort] on the current Snapshot.
func (h *Holder) MatchHostPort(name string, proto Proto, port uint16) (string, bool) {
	return h.Load().MatchHostPort(name, proto, port)
}

// MatchNamePorts is [Snapshot.MatchNamePorts] on the current Snapshot.
func (h *Holder) MatchNamePorts(name string) []NameRule { return h.Load().MatchNamePorts(name) }

// Names is the live policy as a resolver asks it: MatchHost allows a name
// that an entry allows with a port or without, so that a name allowed on
// some ports only still resolves (the addresses it resolves to are then
// allowed on those ports only). Its denylist is the Holder's.
type Names struct{ *Holder }

// MatchHost returns the entry without a port that allows name, else the
// first entry with a port that does ([Snapshot.MatchNamePorts]).
func (n Names) MatchHost(name string) (string, bool) {
	s := n.Load()
	if rule, ok := s.MatchHost(name); ok {
		return rule, true
	}
	if rules := s.MatchNamePorts(name); len(rules) > 0 {
		return rules[0].String(), true
	}
	return "", false
}
