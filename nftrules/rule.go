package nftrules

import "net/netip"

// The description that Build produces, Render prints and Conn.Apply
// translates: sets, chains, and rules made of typed matches, an optional
// counter and log statement, and a verdict.

// setType is the key type of a [set].
type setType int

const (
	ipv4Addr    setType = iota // ipv4_addr
	ipv6Addr                   // ipv6_addr
	ipv4Service                // inet_proto . ipv4_addr . inet_service
	ipv6Service                // inet_proto . ipv6_addr . inet_service
	inetService                // inet_service: a port
)

// set is a named set of addresses, of services or of ports, by its type.
type set struct {
	Name     string
	Type     setType
	Interval bool // flags interval: elements are prefixes (and port ranges)
	Timeout  bool // flags timeout: elements may carry their own timeouts
	Elements []netip.Prefix
	Services []Service
	Ports    []PortRange
}

// chainType is "filter" or "nat" for a base chain; a regular chain, which
// only a jump reaches, has no hook.
type chainType int

const (
	chainFilter chainType = iota
	chainNAT
	chainRegular
)

// hook is the netfilter hook a base chain is attached to.
type hook int

const (
	hookOutput     hook = iota // locally generated packets
	hookInput                  // packets addressed to this host
	hookEgress                 // netdev family: frames leaving chain.Device
	hookPrerouting             // packets arriving, before routing
	hookForward                // packets routed through this host
)

// chain is a base chain on a hook, or a regular chain that only a jump
// reaches. The rules are evaluated in order; the first verdict ends
// evaluation, else Policy applies (a regular chain returns).
type chain struct {
	Name     string
	Type     chainType
	Hook     hook
	Device   string  // hookEgress only
	Priority int32   // natPriority for nat, 0 or rawPriority for filter
	Policy   verdict // accept or drop
	Rules    []rule
}

// rule is a list of matches, all of which must hold, then an optional
// named counter, an optional log statement and a verdict.
type rule struct {
	Match   []match
	Counter string   // the named counter to add to; empty means none
	Log     *logStmt // nil means no log statement
	Verdict verdict  // verdictNone means continue with the next rule

	connMark uint32 // "ct mark set" this value before the verdict; zero means none
}

// logStmt is a log statement that sends the packet to an nflog group.
type logStmt struct {
	Prefix string
	Group  uint16
}

// verdictKind is what a [verdict] does.
type verdictKind int

const (
	verdictNone           verdictKind = iota // no verdict: continue
	verdictAccept                            // accept
	verdictDrop                              // drop
	verdictReject                            // reject (ICMP/ICMPv6 port unreachable)
	verdictRedirect                          // redirect to :Port (nat chains only)
	verdictRejectTCPReset                    // reject with a TCP reset (TCP packets only)
	verdictJump                              // jump to the regular chain verdict.Chain
	verdictReturn                            // return to the chain that jumped here
)

// verdict ends the evaluation of a chain.
type verdict struct {
	Kind  verdictKind
	Port  uint16 // for verdictRedirect
	Chain string // for verdictJump
}

// Verdicts without arguments.
var (
	accept = verdict{Kind: verdictAccept}
	drop   = verdict{Kind: verdictDrop}
	reject = verdict{Kind: verdictReject}
	// rejectTCPReset answers a TCP packet with a reset, so the client's
	// connect fails at once with "connection refused"; for IPv6 that is the
	// only answer a locally generated, rejected packet gets.
	rejectTCPReset = verdict{Kind: verdictRejectTCPReset}
	ret            = verdict{Kind: verdictReturn} // "return"
)

// redirectTo returns a verdict that redirects to a local port.
func redirectTo(port uint16) verdict { return verdict{Kind: verdictRedirect, Port: port} }

// match is one condition of a [rule]: one of the types below, each of
// which renders as one nft expression (see matchString) and translates to
// the netlink expressions nft would send for it (see matchExprs).
type match interface{ isMatch() }

// destInSet matches a destination address in a named set ("ip daddr @allow4").
type destInSet struct {
	Family setType
	Set    string
}

// ctStateBit is a conntrack state bit, as nft names them.
type ctStateBit uint32

// Conntrack states (values as in the kernel's ct state bitmask).
const (
	ctInvalid     ctStateBit = 1
	ctEstablished ctStateBit = 2
	ctRelated     ctStateBit = 4
	ctNew         ctStateBit = 8
)

// ctState matches a packet whose conntrack state is any of the bits in
// State ("ct state established,related").
type ctState struct{ State ctStateBit }

// destLocal matches a packet to an address of this host, loopback or not
// ("fib daddr type local").
type destLocal struct{}

// markEq matches a packet whose mark equals Mark ("meta mark 0x00006700").
type markEq struct{ Mark uint32 }

// oifLoopback matches a packet routed out of the loopback interface
// ("oif "lo"").
type oifLoopback struct{}

// iifNotLoopback matches a packet that came in through an interface other
// than loopback ("iif != "lo"").
type iifNotLoopback struct{}

// dport matches a transport protocol and destination port ("tcp dport 443").
type dport struct {
	Proto Proto
	Port  uint16
}

// icmpv6Type matches an ICMPv6 message type ("icmpv6 type nd-neighbor-solicit").
type icmpv6Type struct{ Type uint8 }

// l4Proto matches the transport protocol: "meta l4proto tcp".
type l4Proto struct{ Proto Proto }

// Neighbour discovery messages that the output chain must let through for
// IPv6 to work at all; conntrack does not track them.
const (
	icmpv6RouterSolicit   uint8 = 133
	icmpv6NeighborSolicit uint8 = 135
	icmpv6NeighborAdvert  uint8 = 136
)

// markNe matches a packet whose mark is not Mark ("meta mark != 0x6700").
type markNe struct{ Mark uint32 }

// socketCgroup matches a packet whose socket's cgroup (version 2) at
// Level is ID ("socket cgroupv2 level 2 1234").
type socketCgroup struct {
	Level int
	ID    uint64
}

// ctStatusDNAT matches a connection whose destination was rewritten, as
// the nat chain's redirects do ("ct status dnat").
type ctStatusDNAT struct{}

// destAddr matches one destination address ("ip daddr 127.0.0.11").
type destAddr struct{ Addr netip.Addr }

// srcAddr matches one source address ("ip saddr 127.0.0.11").
type srcAddr struct{ Addr netip.Addr }

// routed matches a packet that has a route attached, which only the IP
// stack's output path gives it: a frame from a packet socket has none
// ("meta rtclassid != 4294967295", which holds for every route but one
// with both realms 65535).
type routed struct{}

// userSocket matches a packet sent from a user's socket, one with a file:
// not the kernel's own ARP or neighbour discovery ("meta skuid >= 0").
type userSocket struct{}

// srcNotLocal matches a packet whose source address is not one of this
// namespace's ("fib saddr type != local").
type srcNotLocal struct{}

// iifLoopback matches a packet that arrived on loopback.
type iifLoopback struct{}

// ctOriginal matches a packet in the original direction of its
// connection, the direction of its first packet.
type ctOriginal struct{}

// ctMarkEq matches a connection's conntrack mark.
type ctMarkEq struct{ Mark uint32 }

// protoARP matches an ARP frame by its skb protocol ("meta protocol arp").
type protoARP struct{}

// serviceInSet matches the protocol, destination address and port of a
// packet against a service set ("meta l4proto . ip daddr . th dport @set").
type serviceInSet struct {
	Family setType // ipv4Service or ipv6Service
	Set    string
}

// dportInSet matches a transport protocol and a destination port in a
// set of ports ("tcp dport @tls_ports").
type dportInSet struct {
	Proto Proto
	Set   string
}

func (serviceInSet) isMatch()   {}
func (dportInSet) isMatch()     {}
func (markNe) isMatch()         {}
func (socketCgroup) isMatch()   {}
func (ctStatusDNAT) isMatch()   {}
func (destAddr) isMatch()       {}
func (routed) isMatch()         {}
func (userSocket) isMatch()     {}
func (protoARP) isMatch()       {}
func (srcNotLocal) isMatch()    {}
func (iifLoopback) isMatch()    {}
func (ctOriginal) isMatch()     {}
func (ctMarkEq) isMatch()       {}
func (srcAddr) isMatch()        {}
func (destInSet) isMatch()      {}
func (ctState) isMatch()        {}
func (destLocal) isMatch()      {}
func (markEq) isMatch()         {}
func (oifLoopback) isMatch()    {}
func (iifNotLoopback) isMatch() {}
func (dport) isMatch()          {}
func (icmpv6Type) isMatch()     {}
func (l4Proto) isMatch()        {}
