// Package policytest builds policies for the benchmarks that compare a
// plain policy with one that uses every entry form.
package policytest

import (
	"fmt"
	"net/netip"

	"github.com/g0lab/g0efilter/policy"
)

// AddEveryForm adds to p 1000 entries of every form but plain names and
// plain wildcards' partners: prefixes (10.x.y.0/24), addresses with a
// protocol and a port range (100.64.x.y), exact names (host*.example.net),
// wildcards (*.zone*.example.org), names with a protocol and a port
// (tcp/ssh*.example.com:22), names with a port (*.tls*.example.com:8444),
// denied addresses (172.16.x.y) and denied names. None of them matches a
// name or an address outside those ranges and domains.
func AddEveryForm(p *policy.Policy) {
	for i := range 1000 {
		hi, lo := byte(i>>8), byte(i)
		p.IPs = append(p.IPs, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, hi, lo, 0}), 24))
		p.AddrPorts = append(p.AddrPorts, policy.AddrRule{Proto: policy.Proto(1 + i%2),
			Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64, hi, lo}), 32), Ports: policy.Ports{First: 1000, Last: 1999}})
		p.DenyIPs = append(p.DenyIPs, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, hi, lo}), 32))
		p.Domains = append(p.Domains, fmt.Sprintf("host%d.example.net", i), fmt.Sprintf("*.zone%d.example.org", i))
		p.NamePorts = append(p.NamePorts,
			policy.NameRule{Proto: policy.TCP, Pattern: fmt.Sprintf("ssh%d.example.com", i), Ports: policy.Ports{First: 22, Last: 22}},
			policy.NameRule{Pattern: fmt.Sprintf("*.tls%d.example.com", i), Ports: policy.Ports{First: 8444, Last: 8444}})
		p.DenyDomains = append(p.DenyDomains, fmt.Sprintf("bad%d.zone%d.example.org", i, i))
	}
}
