package dnsfilter_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/g0lab/g0efilter/dnsfilter"
	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/policy"
	"github.com/miekg/dns"
)

// A name the policy does not allow gets NXDOMAIN with an Extended DNS
// Error, and an event; it is never sent upstream.
func ExampleHandler() {
	snap, err := policy.Compile(&policy.Policy{Domains: []string{"example.com", "*.example.org"}})
	if err != nil {
		panic(err)
	}
	var live policy.Holder
	live.Store(snap)

	srv := &dnsfilter.Server{
		Addrs: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")},
		Handler: &dnsfilter.Handler{
			Policy:   &live,
			Upstream: &dnsfilter.Upstream{Servers: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.11:53")}},
			Events: events.SinkFunc(func(e events.Event) {
				fmt.Println(e.Action, e.Component, e.Name, e.QType, e.Reason)
			}),
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe(ctx) }()
	<-srv.Ready()

	m := new(dns.Msg)
	m.SetQuestion("Tracker.Example.NET.", dns.TypeTXT)
	m.SetEdns0(1232, false)
	r, err := dns.Exchange(m, srv.LocalAddrs()[0].String())
	if err != nil {
		panic(err)
	}
	fmt.Println(dns.RcodeToString[r.Rcode])
	for _, o := range r.IsEdns0().Option {
		if e, ok := o.(*dns.EDNS0_EDE); ok {
			fmt.Printf("EDE %d (%s): %s\n", e.InfoCode, dns.ExtendedErrorCodeToString[e.InfoCode], e.ExtraText)
		}
	}

	cancel()
	if err := <-done; err != nil {
		panic(err)
	}
	// Output:
	// blocked dns tracker.example.net TXT not allowlisted
	// NXDOMAIN
	// EDE 15 (Blocked): blocked by g0efilter: not allowlisted
}

// A proxy checks that the name a client sent leads to the address it
// connected to.
func ExampleResolver() {
	// An upstream resolver for the example.
	upstream := &dnsfilter.Server{
		Addrs: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")},
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(r)
			if r.Question[0].Qtype == dns.TypeA {
				rr, _ := dns.NewRR(r.Question[0].Name + " 300 IN A 192.0.2.10")
				m.Answer = append(m.Answer, rr)
			}
			_ = w.WriteMsg(m)
		}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- upstream.ListenAndServe(ctx) }()
	<-upstream.Ready()

	res := &dnsfilter.Resolver{
		Upstream: &dnsfilter.Upstream{Servers: upstream.LocalAddrs()},
	}
	dst := netip.MustParseAddr("192.0.2.10")
	addrs, err := res.LookupNetIP(context.Background(), "www.example.com")
	if err != nil {
		panic(err)
	}
	fmt.Println(addrs)
	for _, a := range addrs {
		if a == dst {
			fmt.Println("www.example.com leads to", dst)
		}
	}

	cancel()
	if err := <-done; err != nil {
		panic(err)
	}
	// Output:
	// [192.0.2.10]
	// www.example.com leads to 192.0.2.10
}

func ExampleAnswerAddrs() {
	var answer []dns.RR
	for _, s := range []string{
		"www.example.com. 300 IN CNAME edge.cdn.example.",
		"edge.cdn.example. 20 IN A 192.0.2.10",
		"edge.cdn.example. 20 IN A 192.0.2.11",
	} {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		answer = append(answer, rr)
	}
	for _, a := range dnsfilter.AnswerAddrs("www.example.com", answer) {
		fmt.Println(a.Addr, a.TTL)
	}
	// Output:
	// 192.0.2.10 20s
	// 192.0.2.11 20s
}
