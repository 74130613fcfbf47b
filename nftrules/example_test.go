package nftrules_test

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/g0lab/g0efilter/nftrules"
)

func ExampleBuild() {
	rs, err := nftrules.Build(nftrules.Config{
		Mode:   nftrules.ModeDNS,
		Allow4: []netip.Prefix{netip.MustParsePrefix("1.1.1.1/32")},
	})
	if err != nil {
		panic(err)
	}
	// In dns mode, DNS goes to the local DNS server.
	for line := range strings.Lines(rs.String()) {
		if strings.Contains(line, "redirect") {
			fmt.Println(strings.TrimSpace(line))
		}
	}
	// Output:
	// udp dport 53 redirect to :53
	// tcp dport 53 redirect to :53
}

// Pin lets the addresses of an allowed DNS answer through for the
// answer's TTL. It needs Linux and CAP_NET_ADMIN, so the example is not
// run.
func ExampleConn_Pin() {
	conn, err := nftrules.Open(nftrules.ConnConfig{})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	rs, err := nftrules.Build(nftrules.Config{Mode: nftrules.ModeDNS})
	if err != nil {
		panic(err)
	}
	if err := conn.Apply(rs); err != nil {
		panic(err)
	}
	// From the DNS server's hook, for an allowed answer:
	err = conn.Pin([]nftrules.Pin{
		{Addr: netip.MustParseAddr("192.0.2.7"), Timeout: 5 * time.Minute},
		{Addr: netip.MustParseAddr("2001:db8::7"), Timeout: 5 * time.Minute},
	})
	if err != nil {
		panic(err)
	}
}

func ExampleRuleset_Render() {
	rs, err := nftrules.Build(nftrules.Config{
		Allow4: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
	})
	if err != nil {
		panic(err)
	}
	if err := rs.Render(os.Stdout); err != nil {
		panic(err)
	}
	// Output:
	// table inet g0efilter {
	// 	set allow4 {
	// 		type ipv4_addr
	// 		flags interval
	// 		elements = { 192.0.2.0/24 }
	// 	}
	//
	// 	set allow6 {
	// 		type ipv6_addr
	// 		flags interval
	// 	}
	//
	// 	set deny4 {
	// 		type ipv4_addr
	// 		flags interval
	// 	}
	//
	// 	set deny6 {
	// 		type ipv6_addr
	// 		flags interval
	// 	}
	//
	// 	set allow_ports4 {
	// 		type inet_proto . ipv4_addr . inet_service
	// 		flags interval
	// 	}
	//
	// 	set allow_ports6 {
	// 		type inet_proto . ipv6_addr . inet_service
	// 		flags interval
	// 	}
	//
	// 	set pinned_ports4 {
	// 		type inet_proto . ipv4_addr . inet_service
	// 		flags timeout
	// 	}
	//
	// 	set pinned_ports6 {
	// 		type inet_proto . ipv6_addr . inet_service
	// 		flags timeout
	// 	}
	//
	// 	set tls_ports {
	// 		type inet_service
	// 		flags interval
	// 	}
	//
	// 	set http_ports {
	// 		type inet_service
	// 		flags interval
	// 	}
	//
	// 	chain own {
	// 		meta mark 0x00006700 accept
	// 	}
	//
	// 	chain block {
	// 		meta l4proto tcp log prefix "g0efilter blocked: " group 100 reject with tcp reset
	// 		log prefix "g0efilter blocked: " group 100 reject
	// 	}
	//
	// 	chain deny {
	// 		meta l4proto tcp log prefix "g0efilter denied: " group 100 reject with tcp reset
	// 		log prefix "g0efilter denied: " group 100 reject
	// 	}
	//
	// 	chain nat_output {
	// 		type nat hook output priority -101; policy accept;
	// 		jump own
	// 		ip daddr @deny4 accept
	// 		ip6 daddr @deny6 accept
	// 		ip daddr @allow4 accept
	// 		ip6 daddr @allow6 accept
	// 		meta l4proto . ip daddr . th dport @allow_ports4 accept
	// 		meta l4proto . ip6 daddr . th dport @allow_ports6 accept
	// 		meta l4proto . ip daddr . th dport @pinned_ports4 accept
	// 		meta l4proto . ip6 daddr . th dport @pinned_ports6 accept
	// 		oif "lo" accept
	// 		tcp dport 80 redirect to :8080
	// 		tcp dport 443 redirect to :8443
	// 		tcp dport @http_ports redirect to :8080
	// 		tcp dport @tls_ports redirect to :8443
	// 	}
	//
	// 	chain output {
	// 		type filter hook output priority filter; policy drop;
	// 		meta skuid >= 0 fib saddr type != local log prefix "g0efilter spoofed source: " group 100 drop
	// 		ct state established,related accept
	// 		jump own
	// 		tcp dport 8080 ct status dnat accept
	// 		tcp dport 8443 ct status dnat accept
	// 		tcp dport 8080 fib daddr type local log prefix "g0efilter local service: " group 100 reject with tcp reset
	// 		tcp dport 8443 fib daddr type local log prefix "g0efilter local service: " group 100 reject with tcp reset
	// 		fib daddr type local accept
	// 		icmpv6 type nd-router-solicit meta skuid >= 0 log prefix "g0efilter blocked: " group 100 drop
	// 		icmpv6 type nd-router-solicit accept
	// 		icmpv6 type nd-neighbor-solicit meta skuid >= 0 log prefix "g0efilter blocked: " group 100 drop
	// 		icmpv6 type nd-neighbor-solicit accept
	// 		icmpv6 type nd-neighbor-advert meta skuid >= 0 log prefix "g0efilter blocked: " group 100 drop
	// 		icmpv6 type nd-neighbor-advert accept
	// 		ip daddr @deny4 jump deny
	// 		ip6 daddr @deny6 jump deny
	// 		ip daddr @allow4 ct state new log prefix "g0efilter allowed: " group 100 accept
	// 		ip daddr @allow4 accept
	// 		ip6 daddr @allow6 ct state new log prefix "g0efilter allowed: " group 100 accept
	// 		ip6 daddr @allow6 accept
	// 		meta l4proto . ip daddr . th dport @allow_ports4 ct state new log prefix "g0efilter allowed: " group 100 accept
	// 		meta l4proto . ip daddr . th dport @allow_ports4 accept
	// 		meta l4proto . ip6 daddr . th dport @allow_ports6 ct state new log prefix "g0efilter allowed: " group 100 accept
	// 		meta l4proto . ip6 daddr . th dport @allow_ports6 accept
	// 		meta l4proto . ip daddr . th dport @pinned_ports4 ct state new log prefix "g0efilter pinned: " group 100 accept
	// 		meta l4proto . ip daddr . th dport @pinned_ports4 accept
	// 		meta l4proto . ip6 daddr . th dport @pinned_ports6 ct state new log prefix "g0efilter pinned: " group 100 accept
	// 		meta l4proto . ip6 daddr . th dport @pinned_ports6 accept
	// 		ct state new jump block
	// 	}
	//
	// 	chain input {
	// 		type filter hook input priority filter; policy accept;
	// 		iif != "lo" tcp dport 8080 drop
	// 		iif != "lo" tcp dport 8443 drop
	// 	}
	//
	// 	chain prerouting {
	// 		type filter hook prerouting priority raw; policy accept;
	// 		iif "lo" meta rtclassid != 4294967295 accept
	// 		iif "lo" log prefix "g0efilter injected: " group 100 drop
	// 	}
	//
	// 	chain forward {
	// 		type filter hook forward priority filter; policy drop;
	// 	}
	// }
}
