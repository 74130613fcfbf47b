package dnsfilter

import (
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// maxChain bounds the CNAME chain followed within one answer.
const maxChain = 16

// Answer is what an allowed response told a client: the addresses its
// question name resolves to. [Handler.OnAnswer] receives one.
type Answer struct {
	// Name is the question name, normalised: lower case, no trailing dot.
	Name string
	// QType is the question type, such as [dns.TypeA].
	QType uint16
	// Rule is the policy rule that allowed Name; for an Audited answer,
	// the rule that matched it, if any ("" when none did).
	Rule string
	// Audited reports an answer given only because the policy is audited
	// (see [Auditor]): enforce mode would have refused it. Its addresses
	// are to be let through as those of a name allowed without a port
	// are, on every port, whatever Rule says, so that the connections
	// that follow are not reported as refused a second time.
	Audited bool
	// Addrs are the A and AAAA records of Name in the answer section,
	// reached directly or through a chain of CNAME records within the
	// answer, in the order of the answer. IPv4-mapped IPv6 addresses are
	// unmapped.
	Addrs []AddrTTL
}

// AddrTTL is an address from an answer and how long the client may use
// it: the record's TTL.
type AddrTTL struct {
	Addr netip.Addr
	TTL  time.Duration
}

// AnswerAddrs returns the A and AAAA records of name in rrs, an answer
// section: those owned by name and those owned by the targets of a chain
// of CNAME records that starts at name, up to 16 links long, in any order.
// Names are compared without regard to case or a trailing dot. Records of
// other owners are ignored: an answer cannot vouch for a name it was not
// asked about.
func AnswerAddrs(name string, rrs []dns.RR) []AddrTTL {
	chain := []string{canonicalFqdn(name)}
	for grew := true; grew; {
		grew = false
		for _, rr := range rrs {
			c, ok := rr.(*dns.CNAME)
			if !ok || len(chain) > maxChain || !inChain(chain, c.Hdr.Name) {
				continue
			}
			if t := canonicalFqdn(c.Target); !inChain(chain, t) {
				chain = append(chain, t)
				grew = true
			}
		}
	}
	var out []AddrTTL
	for _, rr := range rrs {
		var a netip.Addr
		switch rr := rr.(type) {
		case *dns.A:
			a, _ = netip.AddrFromSlice(rr.A)
		case *dns.AAAA:
			a, _ = netip.AddrFromSlice(rr.AAAA)
		default:
			continue
		}
		if !a.IsValid() || !inChain(chain, rr.Header().Name) {
			continue
		}
		out = append(out, AddrTTL{Addr: a.Unmap(), TTL: time.Duration(rr.Header().Ttl) * time.Second})
	}
	return out
}

func inChain(chain []string, name string) bool {
	for _, c := range chain {
		if strings.EqualFold(c, name) {
			return true
		}
	}
	return false
}

// canonicalFqdn returns name in lower case with one trailing dot.
func canonicalFqdn(name string) string { return dns.Fqdn(strings.ToLower(name)) }

// normalize returns name in lower case without its trailing dot, as
// events and the policy show names.
func normalize(name string) string {
	name = strings.ToLower(name)
	if len(name) > 1 {
		name = strings.TrimSuffix(name, ".")
	}
	return name
}
