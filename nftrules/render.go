package nftrules

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Render writes r in nft syntax, as "nft list table inet g0efilter" prints
// it once installed: the dry-run view of exactly what [Conn.Apply] sends.
// The output can also be loaded with "nft -f".
func (r *Ruleset) Render(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "table inet %s {\n", r.table)
	first := true
	sep := func() {
		if !first {
			bw.WriteString("\n")
		}
		first = false
	}
	for _, s := range r.sets {
		sep()
		renderSet(bw, &s)
	}
	for _, c := range r.chains {
		sep()
		renderChain(bw, &c)
	}
	bw.WriteString("}\n")
	if len(r.egress) > 0 {
		fmt.Fprintf(bw, "table netdev %s {\n", r.table)
		// nft lists the named counters before the chains.
		for _, c := range r.egress {
			fmt.Fprintf(bw, "\tcounter %s%s {\n\t\tpackets 0 bytes 0\n\t}\n\n", rawFrameCounterPrefix, c.Device)
		}
		for i, c := range r.egress {
			if i > 0 {
				bw.WriteString("\n")
			}
			renderChain(bw, &c)
		}
		bw.WriteString("}\n")
	}
	return bw.Flush()
}

func renderChain(w *bufio.Writer, c *chain) {
	fmt.Fprintf(w, "\tchain %s {\n", c.Name)
	switch {
	case c.Type == chainRegular:
	case c.Hook == hookEgress:
		fmt.Fprintf(w, "\t\ttype %s hook egress device %q priority %s; policy %s;\n",
			c.Type, c.Device, priorityName(c.Type, c.Priority), c.Policy)
	default:
		fmt.Fprintf(w, "\t\ttype %s hook %s priority %s; policy %s;\n",
			c.Type, c.Hook, priorityName(c.Type, c.Priority), c.Policy)
	}
	for _, rule := range c.Rules {
		fmt.Fprintf(w, "\t\t%s\n", rule)
	}
	w.WriteString("\t}\n")
}

// String returns the rendering of r (see [Ruleset.Render]).
func (r *Ruleset) String() string {
	var b strings.Builder
	_ = r.Render(&b)
	return b.String()
}

func renderSet(w *bufio.Writer, s *set) {
	fmt.Fprintf(w, "\tset %s {\n\t\ttype %s\n", s.Name, s.Type)
	var flags []string
	if s.Interval {
		flags = append(flags, "interval")
	}
	if s.Timeout {
		flags = append(flags, "timeout")
	}
	if len(flags) > 0 {
		fmt.Fprintf(w, "\t\tflags %s\n", strings.Join(flags, ","))
	}
	elems := make([]string, 0, len(s.Elements)+len(s.Services))
	for _, p := range s.Elements {
		elems = append(elems, prefixString(p))
	}
	for _, pr := range s.Ports {
		elems = append(elems, pr.String())
	}
	for _, sv := range s.Services {
		elems = append(elems, fmt.Sprintf("%s . %s . %s", sv.Proto, prefixString(sv.Prefix), sv.Ports))
	}
	if len(elems) > 0 {
		fmt.Fprintf(w, "\t\telements = { %s }\n", strings.Join(elems, ",\n\t\t\t     "))
	}
	w.WriteString("\t}\n")
}

// prefixString spells a prefix as nft lists it: a single address alone.
func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// String returns "8443" or "8000-8099".
func (r PortRange) String() string {
	if r.First == r.Last {
		return strconv.Itoa(int(r.First))
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// priorityName spells a priority as nft lists it: by its standard name
// where nft has one for the hook, else as a number.
func priorityName(t chainType, p int32) string {
	switch {
	case t == chainFilter && p == 0:
		return "filter"
	case t == chainFilter && p == rawPriority:
		return "raw"
	}
	return strconv.Itoa(int(p))
}

// String returns the hook's name in nft syntax ("output").
func (h hook) String() string {
	switch h {
	case hookInput:
		return "input"
	case hookEgress:
		return "egress"
	case hookPrerouting:
		return "prerouting"
	case hookForward:
		return "forward"
	}
	return "output"
}

// String returns the set's key type in nft syntax ("ipv4_addr",
// "inet_proto . ipv4_addr . inet_service").
func (t setType) String() string {
	switch t {
	case ipv6Addr:
		return "ipv6_addr"
	case ipv4Service:
		return "inet_proto . ipv4_addr . inet_service"
	case ipv6Service:
		return "inet_proto . ipv6_addr . inet_service"
	case inetService:
		return "inet_service"
	}
	return "ipv4_addr"
}

// String returns "filter", "nat" or "regular".
func (t chainType) String() string {
	switch t {
	case chainNAT:
		return "nat"
	case chainRegular:
		return "regular"
	}
	return "filter"
}

// String returns the rule in nft syntax.
func (r rule) String() string {
	var parts []string
	for _, m := range r.Match {
		parts = append(parts, matchString(m))
	}
	if r.Counter != "" {
		parts = append(parts, fmt.Sprintf("counter name %q", r.Counter))
	}
	if r.Log != nil {
		parts = append(parts, fmt.Sprintf("log prefix %q group %d", r.Log.Prefix, r.Log.Group))
	}
	if r.connMark != 0 {
		parts = append(parts, fmt.Sprintf("ct mark set 0x%08x", r.connMark))
	}
	if r.Verdict.Kind != verdictNone {
		parts = append(parts, r.Verdict.String())
	}
	return strings.Join(parts, " ")
}

// String returns the verdict in nft syntax ("accept", "redirect to :8080").
func (v verdict) String() string {
	switch v.Kind {
	case verdictNone:
		return ""
	case verdictAccept:
		return "accept"
	case verdictDrop:
		return "drop"
	case verdictReject:
		return "reject"
	case verdictRejectTCPReset:
		return "reject with tcp reset"
	case verdictRedirect:
		return fmt.Sprintf("redirect to :%d", v.Port)
	case verdictJump:
		return "jump " + v.Chain
	case verdictReturn:
		return "return"
	}
	return fmt.Sprintf("verdict(%d)", int(v.Kind))
}

// String returns "tcp", "udp" or the protocol's number.
func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return strconv.Itoa(int(p))
}

var icmpv6Names = map[uint8]string{
	icmpv6RouterSolicit:   "nd-router-solicit",
	icmpv6NeighborSolicit: "nd-neighbor-solicit",
	icmpv6NeighborAdvert:  "nd-neighbor-advert",
}

func matchString(m match) string {
	switch m := m.(type) {
	case destInSet:
		if m.Family == ipv6Addr {
			return "ip6 daddr @" + m.Set
		}
		return "ip daddr @" + m.Set
	case ctState:
		var names []string
		for _, b := range []struct {
			bit  ctStateBit
			name string
		}{{ctInvalid, "invalid"}, {ctEstablished, "established"}, {ctRelated, "related"}, {ctNew, "new"}} {
			if m.State&b.bit != 0 {
				names = append(names, b.name)
			}
		}
		return "ct state " + strings.Join(names, ",")
	case destLocal:
		return "fib daddr type local"
	case markEq:
		return fmt.Sprintf("meta mark 0x%08x", m.Mark)
	case markNe:
		return fmt.Sprintf("meta mark != 0x%08x", m.Mark)
	case socketCgroup:
		return fmt.Sprintf("socket cgroupv2 level %d %d", m.Level, m.ID)
	case ctStatusDNAT:
		return "ct status dnat"
	case destAddr:
		if m.Addr.Is4() {
			return "ip daddr " + m.Addr.String()
		}
		return "ip6 daddr " + m.Addr.String()
	case srcAddr:
		if m.Addr.Is4() {
			return "ip saddr " + m.Addr.String()
		}
		return "ip6 saddr " + m.Addr.String()
	case routed:
		return "meta rtclassid != 4294967295"
	case userSocket:
		return "meta skuid >= 0"
	case protoARP:
		return "meta protocol arp"
	case srcNotLocal:
		return "fib saddr type != local"
	case iifLoopback:
		return `iif "lo"`
	case ctOriginal:
		return "ct direction original"
	case ctMarkEq:
		return fmt.Sprintf("ct mark 0x%08x", m.Mark)
	case oifLoopback:
		return `oif "lo"`
	case iifNotLoopback:
		return `iif != "lo"`
	case dport:
		return fmt.Sprintf("%s dport %d", m.Proto, m.Port)
	case dportInSet:
		return fmt.Sprintf("%s dport @%s", m.Proto, m.Set)
	case serviceInSet:
		if m.Family == ipv6Service {
			return "meta l4proto . ip6 daddr . th dport @" + m.Set
		}
		return "meta l4proto . ip daddr . th dport @" + m.Set
	case l4Proto:
		return fmt.Sprintf("meta l4proto %s", m.Proto)
	case icmpv6Type:
		if n, ok := icmpv6Names[m.Type]; ok {
			return "icmpv6 type " + n
		}
		return fmt.Sprintf("icmpv6 type %d", m.Type)
	}
	return fmt.Sprintf("?%T", m)
}
