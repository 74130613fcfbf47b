package nftrules

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Defaults for the zero fields of a [Config].
const (
	DefaultHTTPPort        uint16 = 8080
	DefaultHTTPSPort       uint16 = 8443
	DefaultDNSPort         uint16 = 53
	DefaultBypassMark      uint32 = 0x6700
	DefaultNflogGroup      uint16 = 100
	DefaultLogPrefix              = "g0efilter blocked: "
	DefaultAllowLogPrefix         = "g0efilter allowed: "
	DefaultPinnedLogPrefix        = "g0efilter pinned: "
)

// Log prefixes of the attempts to get around the filter. They are fixed,
// so that events/nflog tells them apart whatever the configuration.
const (
	// ForgedMarkLogPrefix logs a packet that carries the filter's mark
	// from a socket outside the filter's cgroup.
	ForgedMarkLogPrefix = "g0efilter forged mark: "
	// LocalServiceLogPrefix logs a connection from the workload to one of
	// the filter's local services other than through the redirect.
	LocalServiceLogPrefix = "g0efilter local service: "
	// DeniedLogPrefix logs a connection to a denied address
	// ([Config.Deny4], [Config.Deny6]).
	DeniedLogPrefix = "g0efilter denied: "
	// SpoofedSourceLogPrefix logs a packet from a user's socket whose
	// source address is not one of this namespace's: a raw socket
	// (IP_HDRINCL) or a transparent one (IP_TRANSPARENT), both open to
	// CAP_NET_RAW. Let through, such a packet would make conntrack expect
	// a reply from the workload to the forged source, and that reply
	// would pass as established.
	SpoofedSourceLogPrefix = "g0efilter spoofed source: "
	// InjectedLogPrefix logs a packet that arrived on loopback without
	// having been routed out through it: a frame written to "lo" by a
	// packet socket, which would reach local services, or conntrack, as if
	// from any address.
	InjectedLogPrefix = "g0efilter injected: "
	// ForgedConnLogPrefix logs a packet that belongs, by its addresses and
	// ports, to one of the filter's own connections but comes from a
	// socket outside the filter's cgroup: a raw socket writing into the
	// filter's connection to reach its peer.
	ForgedConnLogPrefix = "g0efilter forged conn: "
)

// Log prefixes of audit mode ([Config.Audit]): a new connection that
// enforce mode would refuse is logged with one of them and accepted.
const (
	// WouldBlockLogPrefix logs a new connection that is not allowlisted.
	WouldBlockLogPrefix = "g0efilter would block: "
	// WouldDenyLogPrefix logs a new connection to a denied address.
	WouldDenyLogPrefix = "g0efilter would deny: "
)

// ownConnMark is the conntrack mark that the own chain sets on the
// filter's own connections when [Config.OwnCgroup] is set. A workload
// cannot set a conntrack mark: that takes CAP_NET_ADMIN.
const ownConnMark uint32 = 0x67000001

// rawFrameCounterPrefix starts the name of the netdev table's counter of
// a device ("raw_eth0"): the frames dropped at its egress hook because they
// did not come through the IP stack. They are counted, not logged: nflog
// readers do not decode the netdev family's messages.
const rawFrameCounterPrefix = "raw_"

// maxCgroupLevel is the deepest cgroup level at which [Config.OwnCgroup]
// is looked for when [Config.OwnCgroupLevel] is zero.
const maxCgroupLevel = 16

// Names of the table and of the allowlist sets in a [Ruleset]. The table
// is of family inet, so one ruleset covers IPv4 and IPv6.
const (
	TableName = "g0efilter"
	SetAllow4 = "allow4" // allowlisted IPv4 prefixes (interval set)
	SetAllow6 = "allow6" // allowlisted IPv6 prefixes (interval set)
)

// Names of the other chains and sets.
const (
	chainOutput     = "output"        // filter hook output priority 0, policy drop
	chainNATOut     = "nat_output"    // nat hook output priority -101, policy accept
	chainInput      = "input"         // filter hook input priority 0, policy accept: guards the local service ports
	chainOwn        = "own"           // regular chain: accepts the filter's own sockets, drops a forged mark
	chainOwnConn    = "own_conn"      // regular chain: later packets of the filter's connections, from its cgroup only
	chainPrerouting = "prerouting"    // filter hook prerouting priority raw, policy accept: drops frames injected on loopback
	chainForward    = "forward"       // filter hook forward priority 0, policy drop: the namespace routes nothing
	chainBlock      = "block"         // regular chain: the verdict on a new connection that nothing allows, by mode
	chainDeny       = "deny"          // regular chain: the verdict on a packet to a denied address, by mode
	egressPrefix    = "egress_"       // netdev table: "egress_DEVICE", filter hook egress, policy drop
	setPinned4      = "pinned4"       // dns mode: IPv4 addresses from allowed answers, with per-element timeouts
	setPinned6      = "pinned6"       // dns mode: IPv6 addresses from allowed answers, with per-element timeouts
	setDeny4        = "deny4"         // denied IPv4 prefixes (interval set): refused whatever allows them
	setDeny6        = "deny6"         // denied IPv6 prefixes (interval set)
	setAllowPorts4  = "allow_ports4"  // allowlisted protocol . IPv4 prefix . port range (interval set)
	setAllowPorts6  = "allow_ports6"  // allowlisted protocol . IPv6 prefix . port range (interval set)
	setPinnedPorts4 = "pinned_ports4" // protocol . IPv4 address . port from allowed answers, with timeouts
	setPinnedPorts6 = "pinned_ports6" // protocol . IPv6 address . port from allowed answers, with timeouts
	setTLSPorts     = "tls_ports"     // https mode: TCP ports besides 443 redirected to the TLS proxy (interval set)
	setHTTPPorts    = "http_ports"    // https mode: TCP ports besides 80 redirected to the HTTP proxy (interval set)
)

const (
	maxLogPrefix  = 127 // the longest log prefix the kernel keeps whole
	loopbackIndex = 1   // the loopback interface's index in every network namespace

	// natPriority is one before the usual NAT priority (-100), so that
	// the redirect wins over other NAT chains at the output hook: Docker
	// DNATs the queries to its resolver at 127.0.0.11 in the container's
	// namespace, and the first chain to NAT a connection decides it.
	natPriority = -101
	// rawPriority ("raw") runs before conntrack (-200).
	rawPriority = -300
)

// ErrConfig is wrapped by every error that [Build] returns.
var ErrConfig = errors.New("nftrules: invalid config")

// Mode selects how traffic that is not allowlisted by address is handled.
type Mode int

const (
	// ModeHTTPS redirects TCP 80 and 443 to the local HTTP and HTTPS (SNI)
	// proxies and blocks everything else that is not allowlisted. It is the
	// zero value.
	ModeHTTPS Mode = iota
	// ModeDNS redirects DNS (UDP and TCP 53) to the local DNS server, blocks
	// DoT (853) and blocks destinations that are neither allowlisted nor
	// pinned from an allowed DNS answer.
	ModeDNS
)

// String returns "https" or "dns".
func (m Mode) String() string {
	switch m {
	case ModeHTTPS:
		return "https"
	case ModeDNS:
		return "dns"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Config describes the ruleset to build. Its zero value is a valid https
// mode configuration that allows nothing by address.
type Config struct {
	// Mode is ModeHTTPS (the zero value) or ModeDNS.
	Mode Mode
	// HTTPPort is the local port that TCP 80 is redirected to in https mode.
	// Zero means 8080.
	HTTPPort uint16
	// HTTPSPort is the local port that TCP 443 is redirected to in https
	// mode. Zero means 8443.
	HTTPSPort uint16
	// DNSPort is the local port that UDP and TCP 53 are redirected to in dns
	// mode. Zero means 53.
	DNSPort uint16
	// BypassMark is the socket mark (SO_MARK) that the filter sets on its own
	// upstream sockets; packets carrying it (from the filter's cgroup, with
	// OwnCgroup) are neither redirected nor blocked. Zero means 0x6700.
	BypassMark uint32
	// NflogGroup is the nflog group that new connections are logged to,
	// blocked and allowed alike (the log prefix tells them apart). Zero
	// means 100.
	NflogGroup uint16
	// LogPrefix is the prefix of the log statement for blocked connections.
	// Empty means "g0efilter blocked: ".
	LogPrefix string
	// AllowLogPrefix is the prefix of the log statement for new
	// connections that the output chain accepts because their destination
	// is allowlisted. Empty means "g0efilter allowed: ".
	AllowLogPrefix string
	// PinnedLogPrefix is the prefix of the log statement for new
	// connections that the output chain accepts in dns mode because their
	// destination is pinned (see [Conn.Pin]). Empty means
	// "g0efilter pinned: ".
	PinnedLogPrefix string
	// QuietAllowed leaves allowed connections out of the log: only blocked
	// ones are logged. The zero value logs every new connection that the
	// output chain accepts by destination, so that each decision becomes
	// an event; connections redirected to the local proxies or DNS server,
	// and the filter's own, are not logged by the kernel.
	QuietAllowed bool
	// DNSOnly, in dns mode, filters DNS alone, as the original product
	// did: every other destination is let through, so a client that skips
	// DNS and connects to an address is not stopped. There are no pinned
	// sets then. Ignored in https mode.
	DNSOnly bool
	// FilterDNS, in https mode, also redirects DNS (UDP and TCP 53, to any
	// resolver, one on loopback included) to the local DNS server on
	// DNSPort, as dns mode does: without it, a workload can send anything
	// in DNS questions to a resolver on loopback (Docker's 127.0.0.11).
	// Ignored in dns mode, which always does.
	FilterDNS bool
	// Allow4 and Allow6 are the allowlisted destination prefixes, sorted and
	// non-overlapping as policy.Snapshot.Prefixes returns them.
	Allow4, Allow6 []netip.Prefix
	// AllowPorts are allowlisted destinations limited to a protocol and
	// a port range, IPv4 and IPv6 together. They must be disjoint, as
	// policy.Snapshot.Services returns them: the kernel refuses elements
	// that overlap.
	AllowPorts []Service
	// TLSPorts and HTTPPorts are TCP ports, besides 443 and 80, that
	// https mode redirects to the HTTPS (SNI) and HTTP proxies, for names
	// allowed on other ports (policy entries such as
	// "*.example.com:8443"): the first elements of the sets tls_ports and
	// http_ports. They must be disjoint, from each other too. Ignored in
	// dns mode.
	TLSPorts, HTTPPorts []PortRange
	// Deny4 and Deny6 are the denied destination prefixes, in the same
	// form (policy.Snapshot.DenyPrefixes). They win over the allowlist and
	// the pinned sets: a connection to one is logged with DeniedLogPrefix
	// and refused, and is never redirected to a proxy.
	Deny4, Deny6 []netip.Prefix

	// Audit lets through, and logs with WouldBlockLogPrefix or
	// WouldDenyLogPrefix, the new connections that the policy would
	// refuse: those that nothing allows and those to denied addresses.
	// The guards against getting around the filter (forged marks and
	// connections, spoofed sources, injected and raw frames, the local
	// services, DoT in dns mode) hold all the same. The verdicts are in
	// two regular chains of their own, so that [Conn.UpdateLists] can
	// switch modes in the batch that changes the lists.
	Audit bool

	// OwnCgroup is the id of the filter's cgroup (version 2), the inode
	// number of its directory. When it is set, a packet is the filter's
	// own only if its socket carries BypassMark and was made in that
	// cgroup or one below it ("socket cgroupv2"); a packet that carries
	// the mark from any other socket is logged with ForgedMarkLogPrefix
	// and dropped. A workload with CAP_NET_RAW can set any mark (Linux
	// 5.17 and later) but cannot move its sockets into another cgroup.
	// The own chain then also sets the conntrack mark of the filter's
	// connections, which the filter owns in its namespace. Zero means the
	// mark alone, which is then as strong as it is hard to guess: choose
	// it at random.
	OwnCgroup uint64
	// OwnCgroupLevel is the level of OwnCgroup in the cgroup hierarchy, 1
	// for a child of the root. Zero means unknown, as in a container with
	// a cgroup namespace: the id is then compared at every level from 1 to
	// 16, which is sound because cgroup ids are unique.
	OwnCgroupLevel int

	// Devices are the network devices whose egress hook gets a chain, in a
	// netdev table of the same name, that lets out only what came through
	// the IP stack (and so through the output chain) and the kernel's ARP:
	// frames sent through packet sockets, which the inet hooks never see,
	// are counted (see [Conn.RawFrames]) and dropped. A chain may name a
	// device that does not exist yet; it applies once the device appears.
	// Empty means no netdev table.
	Devices []string

	// GuardPorts are local TCP and UDP ports, besides those of the proxies
	// (always guarded), that only the filter's own
	// sockets may reach on this namespace's addresses: a metrics or
	// dashboard port. Connections from anything else are logged with
	// LocalServiceLogPrefix and refused.
	GuardPorts []uint16
	// GuardAddrs are local addresses, such as a resolver on loopback
	// (Docker's 127.0.0.11), that only the filter's own sockets may reach,
	// on any port; the DNS that the rules redirect to the filter never
	// gets there. Nothing but the filter may send from them either,
	// except in answer: a workload could otherwise bind one and pose as
	// the service there.
	GuardAddrs []netip.Addr
}

func (c Config) withDefaults() Config {
	if c.HTTPPort == 0 {
		c.HTTPPort = DefaultHTTPPort
	}
	if c.HTTPSPort == 0 {
		c.HTTPSPort = DefaultHTTPSPort
	}
	if c.DNSPort == 0 {
		c.DNSPort = DefaultDNSPort
	}
	if c.BypassMark == 0 {
		c.BypassMark = DefaultBypassMark
	}
	if c.NflogGroup == 0 {
		c.NflogGroup = DefaultNflogGroup
	}
	if c.LogPrefix == "" {
		c.LogPrefix = DefaultLogPrefix
	}
	if c.AllowLogPrefix == "" {
		c.AllowLogPrefix = DefaultAllowLogPrefix
	}
	if c.PinnedLogPrefix == "" {
		c.PinnedLogPrefix = DefaultPinnedLogPrefix
	}
	return c
}

// Ruleset is the description of the tables that g0efilter installs, made
// by [Build]: the single source from which both the netlink messages
// ([Conn.Apply]) and the nft syntax rendering ([Ruleset.Render]) are
// produced.
type Ruleset struct {
	table  string // always TableName; the family is inet
	sets   []set
	chains []chain
	// egress are the chains of the netdev table of the same name, one per
	// guarded device; none means no netdev table.
	egress []chain
	// audit is the mode of the block and deny chains; verdicts holds what
	// their rules are built from, to switch modes (see [Conn.UpdateLists]).
	audit    bool
	verdicts Config
}

// Service is a destination limited to a transport protocol and a port
// range: an element of a service set.
type Service struct {
	Proto  Proto // TCP or UDP
	Prefix netip.Prefix
	Ports  PortRange
}

// PortRange is an inclusive range of ports, First no greater than Last.
type PortRange struct{ First, Last uint16 }

// Proto is a transport protocol.
type Proto uint8

// Transport protocols.
const (
	TCP Proto = 6
	UDP Proto = 17
)

// Build returns the ruleset for cfg: the list sets, the nat and output
// chains of its mode, and the chains that guard against the workload in
// both modes. It is a pure function: it needs no privileges and runs on
// any OS.
func Build(cfg Config) (*Ruleset, error) {
	cfg = cfg.withDefaults()
	l, err := cfg.check()
	if err != nil {
		return nil, err
	}
	r := &Ruleset{table: TableName, sets: l.sets(), audit: cfg.Audit,
		verdicts: Config{LogPrefix: cfg.LogPrefix, NflogGroup: cfg.NflogGroup}}
	var sets []set
	var nat, output []rule
	switch cfg.Mode {
	case ModeHTTPS:
		sets, nat, output = cfg.httpsRules()
	case ModeDNS:
		sets, nat, output = cfg.dnsRules()
	}
	r.sets = append(r.sets, sets...)
	r.chains = cfg.chains(nat, output)
	for _, d := range cfg.Devices {
		r.egress = append(r.egress, egressChain(d))
	}
	return r, nil
}

// checkedLists are the elements of the allowlist and denylist sets of a
// [Config], checked and masked.
type checkedLists struct {
	allow4, allow6, deny4, deny6 []netip.Prefix
	ports4, ports6               []Service
}

// check refuses an invalid cfg, its defaults applied, and returns the
// elements of its sets.
func (cfg Config) check() (checkedLists, error) {
	var l checkedLists
	if cfg.Mode != ModeHTTPS && cfg.Mode != ModeDNS {
		return l, fmt.Errorf("%w: unknown mode %d", ErrConfig, int(cfg.Mode))
	}
	if err := cfg.checkLogPrefixes(); err != nil {
		return l, err
	}
	var err error
	if l.allow4, err = checkPrefixes(cfg.Allow4, true); err != nil {
		return l, err
	}
	if l.allow6, err = checkPrefixes(cfg.Allow6, false); err != nil {
		return l, err
	}
	if cfg.OwnCgroupLevel < 0 || cfg.OwnCgroupLevel > maxCgroupLevel {
		return l, fmt.Errorf("%w: OwnCgroupLevel %d not in 0..%d", ErrConfig, cfg.OwnCgroupLevel, maxCgroupLevel)
	}
	for _, a := range cfg.GuardAddrs {
		if !a.IsValid() || a.Zone() != "" {
			return l, fmt.Errorf("%w: guarded address %v", ErrConfig, a)
		}
	}
	for _, d := range cfg.Devices {
		if d == "" || len(d) > maxDeviceName {
			return l, fmt.Errorf("%w: device name %q", ErrConfig, d)
		}
	}
	if l.deny4, err = checkPrefixes(cfg.Deny4, true); err != nil {
		return l, err
	}
	if l.deny6, err = checkPrefixes(cfg.Deny6, false); err != nil {
		return l, err
	}
	if l.ports4, l.ports6, err = checkServices(cfg.AllowPorts); err != nil {
		return l, err
	}
	return l, checkPorts(cfg.TLSPorts, cfg.HTTPPorts)
}

// sets returns the allowlist and denylist sets, which both modes have.
func (l checkedLists) sets() []set {
	return []set{
		{Name: SetAllow4, Type: ipv4Addr, Interval: true, Elements: l.allow4},
		{Name: SetAllow6, Type: ipv6Addr, Interval: true, Elements: l.allow6},
		{Name: setDeny4, Type: ipv4Addr, Interval: true, Elements: l.deny4},
		{Name: setDeny6, Type: ipv6Addr, Interval: true, Elements: l.deny6},
		{Name: setAllowPorts4, Type: ipv4Service, Interval: true, Services: l.ports4},
		{Name: setAllowPorts6, Type: ipv6Service, Interval: true, Services: l.ports6},
	}
}

// pinnedPortSets are the sets of services pinned from allowed DNS
// answers, which both modes have.
func pinnedPortSets() []set {
	return []set{
		{Name: setPinnedPorts4, Type: ipv4Service, Timeout: true},
		{Name: setPinnedPorts6, Type: ipv6Service, Timeout: true},
	}
}

// httpsRules returns the sets that only https mode has, and the rules of
// its nat and output chains: the filter's own packets, denied,
// allowlisted and pinned destinations and loopback traffic pass the nat
// chain untouched, and TCP to the web ports goes to the proxies; the
// output chain accepts what is allowed and refuses the rest.
func (cfg Config) httpsRules() (sets []set, nat, output []rule) {
	sets = append(pinnedPortSets(),
		set{Name: setTLSPorts, Type: inetService, Interval: true, Ports: slices.Clone(cfg.TLSPorts)},
		set{Name: setHTTPPorts, Type: inetService, Interval: true, Ports: slices.Clone(cfg.HTTPPorts)},
	)
	nat = []rule{jumpOwn}
	if cfg.FilterDNS {
		// Ahead of the allowlist and loopback accepts: queries to an
		// allowlisted or loopback resolver are redirected too.
		nat = append(nat, dnsRedirect(cfg.DNSPort)...)
	}
	// Not redirected: a denied address is refused in the output chain,
	// whatever name a client would send the proxy. The nat chain's
	// accepts are not logged: the output chain sees the same connections
	// and logs them once.
	nat = append(nat,
		rule{Match: []match{destInSet{ipv4Addr, setDeny4}}, Verdict: accept},
		rule{Match: []match{destInSet{ipv6Addr, setDeny6}}, Verdict: accept})
	nat = slices.Concat(nat, allowRules(nil), pinnedPortRules(nil))
	nat = append(nat,
		rule{Match: []match{oifLoopback{}}, Verdict: accept},
		rule{Match: []match{dport{TCP, 80}}, Verdict: redirectTo(cfg.HTTPPort)},
		rule{Match: []match{dport{TCP, 443}}, Verdict: redirectTo(cfg.HTTPSPort)},
		rule{Match: []match{dportInSet{TCP, setHTTPPorts}}, Verdict: redirectTo(cfg.HTTPPort)},
		rule{Match: []match{dportInSet{TCP, setTLSPorts}}, Verdict: redirectTo(cfg.HTTPSPort)},
	)
	allowed, pinned := cfg.allowLogs()
	output = slices.Concat(cfg.outputHead(), allowRules(allowed), pinnedPortRules(pinned), cfg.rejectNew())
	return sets, nat, output
}

// dnsRules returns the sets that only dns mode has, and the rules of its
// nat and output chains: the nat chain sends DNS to the local server but
// for the filter's own queries; the output chain drops DoT, accepts
// allowlisted and pinned destinations and refuses the rest, or, with
// DNSOnly, accepts everything else.
func (cfg Config) dnsRules() (sets []set, nat, output []rule) {
	// No "oif lo" accept here: queries to a loopback resolver (Docker's
	// 127.0.0.11) must reach the filter's DNS server too.
	nat = append([]rule{jumpOwn}, dnsRedirect(cfg.DNSPort)...)
	output = append(cfg.outputHead(),
		rule{Match: []match{dport{TCP, 853}}, Verdict: drop},
		rule{Match: []match{dport{UDP, 853}}, Verdict: drop},
	)
	if cfg.DNSOnly {
		return nil, nat, append(output, rule{Verdict: accept})
	}
	sets = append([]set{
		{Name: setPinned4, Type: ipv4Addr, Timeout: true},
		{Name: setPinned6, Type: ipv6Addr, Timeout: true},
	}, pinnedPortSets()...)
	allowed, pinned := cfg.allowLogs()
	output = slices.Concat(output, allowRules(allowed),
		acceptTo(destInSet{ipv4Addr, setPinned4}, pinned), acceptTo(destInSet{ipv6Addr, setPinned6}, pinned),
		pinnedPortRules(pinned), cfg.rejectNew())
	return sets, nat, output
}

// jumpOwn sends a packet through the own chain, first in the nat chain
// (so that the filter's own packets are not redirected) and early in the
// output chain.
var jumpOwn = rule{Verdict: verdict{Kind: verdictJump, Chain: chainOwn}}

// outputHead returns the rules that start the output chain in both modes:
// forged packets and the filter's own first, then the local services and
// addresses, neighbour discovery and the denylist.
func (cfg Config) outputHead() []rule {
	// Ahead of everything, the established accept included: a packet
	// forged from a raw socket can match a connection that conntrack
	// already tracks.
	out := []rule{{Match: []match{userSocket{}, srcNotLocal{}}, Log: cfg.log(SpoofedSourceLogPrefix), Verdict: drop}}
	if cfg.OwnCgroup != 0 {
		out = append(out, rule{
			Match:   []match{userSocket{}, ctOriginal{}, ctMarkEq{ownConnMark}},
			Verdict: verdict{Kind: verdictJump, Chain: chainOwnConn},
		})
	}
	out = append(out, rule{Match: []match{ctState{ctEstablished | ctRelated}}, Verdict: accept}, jumpOwn)
	out = append(out, cfg.guardRules()...)
	// To an address of this host, the redirected connections included:
	// this chain still sees their original output interface, so "oif lo"
	// would not match them (see docs/DESIGN-NOTES.md).
	out = append(out, rule{Match: []match{destLocal{}}, Verdict: accept})
	// Neighbour discovery is the kernel's: its own sockets have no file.
	// The same messages from a user's raw ICMPv6 socket (CAP_NET_RAW) to
	// any address would otherwise be a way out.
	logNew := cfg.log(cfg.LogPrefix)
	for _, t := range []uint8{icmpv6RouterSolicit, icmpv6NeighborSolicit, icmpv6NeighborAdvert} {
		out = append(out,
			rule{Match: []match{icmpv6Type{t}, userSocket{}}, Log: logNew, Verdict: drop},
			rule{Match: []match{icmpv6Type{t}}, Verdict: accept})
	}
	// The denylist wins over every accept below: the allowlist and the
	// pinned sets. (The kernel's neighbour discovery above is not a
	// connection to anything.)
	for _, in := range []destInSet{{ipv4Addr, setDeny4}, {ipv6Addr, setDeny6}} {
		out = append(out, rule{Match: []match{in}, Verdict: verdict{Kind: verdictJump, Chain: chainDeny}})
	}
	return out
}

// rejectNew ends the output chain: any other new connection goes to the
// block chain.
func (cfg Config) rejectNew() []rule {
	return []rule{{Match: []match{ctState{ctNew}}, Verdict: verdict{Kind: verdictJump, Chain: chainBlock}}}
}

// blockRules are the rules of the block chain. Enforcing, a new
// connection that nothing allows is logged and fails at once, TCP with a
// reset, the rest with an ICMP port-unreachable (which a local UDP sender
// sees as EPERM); auditing, it is logged and accepted.
func (cfg Config) blockRules(audit bool) []rule {
	if audit {
		return []rule{{Log: cfg.log(WouldBlockLogPrefix), Verdict: accept}}
	}
	log := cfg.log(cfg.LogPrefix)
	return []rule{
		{Match: []match{l4Proto{TCP}}, Log: log, Verdict: rejectTCPReset},
		{Log: log, Verdict: reject},
	}
}

// denyRules are the rules of the deny chain, for a packet to a denied
// address that is not part of an established connection. Enforcing, it
// is logged and refused; auditing, a new connection is logged and
// accepted, as is any other such packet, unlogged.
func (cfg Config) denyRules(audit bool) []rule {
	if audit {
		return []rule{
			{Match: []match{ctState{ctNew}}, Log: cfg.log(WouldDenyLogPrefix), Verdict: accept},
			{Verdict: accept},
		}
	}
	log := cfg.log(DeniedLogPrefix)
	return []rule{
		{Match: []match{l4Proto{TCP}}, Log: log, Verdict: rejectTCPReset},
		{Log: log, Verdict: reject},
	}
}

// allowRules accept the allowlisted destinations, by address and by
// service.
func allowRules(log *logStmt) []rule {
	return slices.Concat(
		acceptTo(destInSet{ipv4Addr, SetAllow4}, log), acceptTo(destInSet{ipv6Addr, SetAllow6}, log),
		acceptTo(serviceInSet{ipv4Service, setAllowPorts4}, log), acceptTo(serviceInSet{ipv6Service, setAllowPorts6}, log))
}

// pinnedPortRules accept the services pinned from allowed DNS answers.
func pinnedPortRules(log *logStmt) []rule {
	return slices.Concat(
		acceptTo(serviceInSet{ipv4Service, setPinnedPorts4}, log), acceptTo(serviceInSet{ipv6Service, setPinnedPorts6}, log))
}

// log returns a log statement with prefix to cfg's nflog group.
func (cfg Config) log(prefix string) *logStmt {
	return &logStmt{Prefix: prefix, Group: cfg.NflogGroup}
}

// allowLogs returns the log statements of connections accepted because
// their destination is allowlisted or pinned: none with QuietAllowed.
func (cfg Config) allowLogs() (allowed, pinned *logStmt) {
	if cfg.QuietAllowed {
		return nil, nil
	}
	return cfg.log(cfg.AllowLogPrefix), cfg.log(cfg.PinnedLogPrefix)
}

// chains returns the chains of the inet table, with the rules of the nat
// and output chains of cfg's mode.
func (cfg Config) chains(nat, output []rule) []chain {
	// The own chain first: a chain must exist before a rule can jump to
	// it, and nft lists chains in the order they were made.
	chains := []chain{{Name: chainOwn, Type: chainRegular, Rules: cfg.ownRules()}}
	if cfg.OwnCgroup != 0 {
		chains = append(chains, chain{Name: chainOwnConn, Type: chainRegular, Rules: cfg.ownConnRules()})
	}
	return append(chains,
		chain{Name: chainBlock, Type: chainRegular, Rules: cfg.blockRules(cfg.Audit)},
		chain{Name: chainDeny, Type: chainRegular, Rules: cfg.denyRules(cfg.Audit)},
		chain{Name: chainNATOut, Type: chainNAT, Priority: natPriority, Policy: accept, Rules: nat},
		chain{Name: chainOutput, Type: chainFilter, Priority: 0, Policy: drop, Rules: output},
		chain{Name: chainInput, Type: chainFilter, Hook: hookInput, Priority: 0, Policy: accept, Rules: cfg.inputRules()},
		// A packet that arrives on loopback was routed out through it,
		// and keeps its route; a frame that a packet socket wrote to "lo"
		// has none. Before conntrack (priority raw), so that it leaves no
		// trace there either.
		chain{Name: chainPrerouting, Type: chainFilter, Hook: hookPrerouting, Priority: rawPriority, Policy: accept,
			Rules: []rule{
				{Match: []match{iifLoopback{}, routed{}}, Verdict: accept},
				{Match: []match{iifLoopback{}}, Log: cfg.log(InjectedLogPrefix), Verdict: drop},
			}},
		// The namespace is a workload's, not a router: whatever would be
		// forwarded (a frame injected with another host's destination,
		// should forwarding be on) is dropped.
		chain{Name: chainForward, Type: chainFilter, Hook: hookForward, Priority: 0, Policy: drop},
	)
}

// inputRules guard the local services (the proxies, the DNS server): they
// are for this namespace's own redirected connections, which arrive
// through loopback. Whatever address they listen on, a neighbour on the
// container network must not reach them and use them as an open proxy.
func (cfg Config) inputRules() []rule {
	var rules []rule
	for _, p := range cfg.servicePorts() {
		rules = append(rules, rule{Match: []match{iifNotLoopback{}, p}, Verdict: drop})
	}
	return rules
}

// maxDeviceName is the longest network device name (IFNAMSIZ less the NUL).
const maxDeviceName = 15

// ownRules are the rules of the own chain: with a cgroup, the mark and
// the cgroup together accept, and the mark alone is a forgery; without,
// the mark accepts.
func (cfg Config) ownRules() []rule {
	if cfg.OwnCgroup == 0 {
		return []rule{{Match: []match{markEq{cfg.BypassMark}}, Verdict: accept}}
	}
	rules := []rule{{Match: []match{markNe{cfg.BypassMark}}, Verdict: ret}}
	for _, m := range cfg.ownCgroupMatches() {
		rules = append(rules, rule{Match: []match{m}, connMark: ownConnMark, Verdict: accept})
	}
	forged := &logStmt{Prefix: ForgedMarkLogPrefix, Group: cfg.NflogGroup}
	return append(rules, rule{Log: forged, Verdict: drop})
}

// ownConnRules are the rules of the own_conn chain, for the packets from
// user sockets that belong to the filter's own connections: they must
// come from the filter's cgroup.
func (cfg Config) ownConnRules() []rule {
	var rules []rule
	for _, m := range cfg.ownCgroupMatches() {
		rules = append(rules, rule{Match: []match{m}, Verdict: accept})
	}
	forged := &logStmt{Prefix: ForgedConnLogPrefix, Group: cfg.NflogGroup}
	return append(rules, rule{Log: forged, Verdict: drop})
}

// ownCgroupMatches match a socket of OwnCgroup or below it: at its level
// when known, else at every level.
func (cfg Config) ownCgroupMatches() []match {
	first, last := 1, maxCgroupLevel
	if cfg.OwnCgroupLevel != 0 {
		first, last = cfg.OwnCgroupLevel, cfg.OwnCgroupLevel
	}
	var ms []match
	for l := first; l <= last; l++ {
		ms = append(ms, socketCgroup{l, cfg.OwnCgroup})
	}
	return ms
}

// guardRules keep the local services to the filter and the redirect: a
// connection that the nat chain redirected to a proxy is let through, and
// any other one to a proxy port, a guarded port or a guarded address on
// this namespace is logged and refused. They follow the own chain's jump,
// so the filter's own sockets reach everything. The DNS server is not
// guarded here: it answers by the policy however it is asked (a client
// that asks 127.0.0.1:53 directly is not redirected, so its connection
// carries no NAT to tell it by).
func (cfg Config) guardRules() []rule {
	var ports []dport
	if cfg.Mode == ModeHTTPS {
		ports = []dport{{TCP, cfg.HTTPPort}, {TCP, cfg.HTTPSPort}}
	}
	var rules []rule
	for _, p := range ports {
		rules = append(rules, rule{Match: []match{p, ctStatusDNAT{}}, Verdict: accept})
	}
	log := &logStmt{Prefix: LocalServiceLogPrefix, Group: cfg.NflogGroup}
	for _, p := range cfg.GuardPorts {
		for _, proto := range []Proto{TCP, UDP} {
			if d := (dport{proto, p}); !slices.Contains(ports, d) {
				ports = append(ports, d)
			}
		}
	}
	for _, p := range ports {
		v := reject
		if p.Proto == TCP {
			v = rejectTCPReset
		}
		// The port first: it rules out most packets without a route lookup.
		rules = append(rules, rule{Match: []match{p, destLocal{}}, Log: log, Verdict: v})
	}
	for _, a := range cfg.GuardAddrs {
		rules = append(rules,
			rule{Match: []match{destAddr{a.Unmap()}, l4Proto{TCP}}, Log: log, Verdict: rejectTCPReset},
			rule{Match: []match{destAddr{a.Unmap()}}, Log: log, Verdict: reject},
			// The service there only answers: a packet from its address
			// that starts a conversation is the workload's, posing as it
			// (forged answers to the filter's questions, say).
			rule{Match: []match{srcAddr{a.Unmap()}, ctOriginal{}}, Log: log, Verdict: drop})
	}
	return rules
}

// egressChain returns the chain of the netdev table that guards device
// (see [Config.Devices] and [Conn.AddEgress]). Frames that the IP stack routed pass; a frame from a
// user's packet socket is counted and dropped; the kernel's ARP passes;
// anything else is counted and dropped.
func egressChain(device string) chain {
	raw := rawFrameCounterPrefix + device
	return chain{
		Name: egressPrefix + device, Type: chainFilter, Hook: hookEgress, Device: device,
		Policy: drop,
		Rules: []rule{
			{Match: []match{routed{}}, Verdict: accept},
			{Match: []match{userSocket{}}, Counter: raw, Verdict: drop},
			{Match: []match{protoARP{}}, Verdict: accept},
			{Counter: raw, Verdict: drop},
		},
	}
}

// dnsRedirect returns the rules that redirect DNS to the local port.
func dnsRedirect(port uint16) []rule {
	return []rule{
		{Match: []match{dport{UDP, 53}}, Verdict: redirectTo(port)},
		{Match: []match{dport{TCP, 53}}, Verdict: redirectTo(port)},
	}
}

// acceptTo returns the rules that accept packets to the destinations in a
// set. With a log statement, new connections are logged and accepted by a
// rule of their own, and a second rule accepts, unlogged, the other
// packets that get this far: established and related ones are accepted
// at the top of the chain, so these are only those that conntrack calls
// invalid or untracked, which an allowlisted destination has always let
// through.
func acceptTo(in match, log *logStmt) []rule {
	if log == nil {
		return []rule{{Match: []match{in}, Verdict: accept}}
	}
	return []rule{
		{Match: []match{in, ctState{ctNew}}, Log: log, Verdict: accept},
		{Match: []match{in}, Verdict: accept},
	}
}

// checkLogPrefixes refuses log prefixes that the kernel would cut short
// and allowed prefixes that a reader could not tell from the blocked one.
func (cfg Config) checkLogPrefixes() error {
	for _, p := range []struct{ field, prefix string }{
		{"LogPrefix", cfg.LogPrefix},
		{"AllowLogPrefix", cfg.AllowLogPrefix},
		{"PinnedLogPrefix", cfg.PinnedLogPrefix},
	} {
		if len(p.prefix) > maxLogPrefix {
			return fmt.Errorf("%w: %s longer than %d bytes", ErrConfig, p.field, maxLogPrefix)
		}
	}
	if cfg.QuietAllowed {
		return nil
	}
	if cfg.AllowLogPrefix == cfg.LogPrefix {
		return fmt.Errorf("%w: AllowLogPrefix equals LogPrefix %q", ErrConfig, cfg.LogPrefix)
	}
	if cfg.Mode == ModeDNS && cfg.PinnedLogPrefix == cfg.LogPrefix {
		return fmt.Errorf("%w: PinnedLogPrefix equals LogPrefix %q", ErrConfig, cfg.LogPrefix)
	}
	return nil
}

// servicePorts returns the local ports that redirected connections go to in
// cfg's mode.
func (cfg Config) servicePorts() []dport {
	dns := []dport{{UDP, cfg.DNSPort}, {TCP, cfg.DNSPort}}
	if cfg.Mode == ModeDNS {
		return dns
	}
	web := []dport{{TCP, cfg.HTTPPort}, {TCP, cfg.HTTPSPort}}
	if cfg.FilterDNS {
		return append(web, dns...)
	}
	return web
}

// checkPrefixes returns the prefixes of one family, masked, and refuses
// those of the other family or overlapping ones (an interval set cannot
// hold overlapping intervals).
func checkPrefixes(ps []netip.Prefix, v4 bool) ([]netip.Prefix, error) {
	family := "IPv6"
	if v4 {
		family = "IPv4"
	}
	out := make([]netip.Prefix, 0, len(ps))
	for i, p := range ps {
		if !p.IsValid() || p.Addr().Is4() != v4 || p.Addr().Is4In6() {
			return nil, fmt.Errorf("%w: %v is not an %s prefix", ErrConfig, p, family)
		}
		p = p.Masked()
		if i > 0 {
			prev := out[len(out)-1]
			if p.Addr().Less(prev.Addr()) || prev.Overlaps(p) {
				return nil, fmt.Errorf("%w: %v and %v are not sorted and disjoint", ErrConfig, prev, p)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// checkServices returns the services of each family, masked, and refuses
// invalid ones.
func checkServices(svcs []Service) (v4, v6 []Service, err error) {
	for _, sv := range svcs {
		if !sv.Prefix.IsValid() || sv.Prefix.Addr().Is4In6() || sv.Prefix.Addr().Zone() != "" ||
			sv.Proto != TCP && sv.Proto != UDP || sv.Ports.First == 0 || sv.Ports.First > sv.Ports.Last {
			return nil, nil, fmt.Errorf("%w: service %s/%v:%d-%d", ErrConfig, sv.Proto, sv.Prefix, sv.Ports.First, sv.Ports.Last)
		}
		sv.Prefix = sv.Prefix.Masked()
		if sv.Prefix.Addr().Is4() {
			v4 = append(v4, sv)
		} else {
			v6 = append(v6, sv)
		}
	}
	return v4, v6, nil
}

// checkPorts refuses port ranges that are empty or that overlap.
func checkPorts(lists ...[]PortRange) error {
	var all []PortRange
	for _, l := range lists {
		all = append(all, l...)
	}
	for i, pr := range all {
		if pr.First == 0 || pr.First > pr.Last {
			return fmt.Errorf("%w: port range %d-%d", ErrConfig, pr.First, pr.Last)
		}
		for _, o := range all[:i] {
			if pr.First <= o.Last && o.First <= pr.Last {
				return fmt.Errorf("%w: port ranges %s and %s overlap", ErrConfig, o, pr)
			}
		}
	}
	return nil
}

// chain returns the chain of the inet table named name, or nil.
func (r *Ruleset) chain(name string) *chain {
	for i := range r.chains {
		if r.chains[i].Name == name {
			return &r.chains[i]
		}
	}
	return nil
}

// set returns the set named name, or nil.
func (r *Ruleset) set(name string) *set {
	for i := range r.sets {
		if r.sets[i].Name == name {
			return &r.sets[i]
		}
	}
	return nil
}
