package policy_test

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/g0lab/g0efilter/policy"
)

func ExampleParse() {
	p, err := policy.Parse("policy.yaml", []byte(`
allowlist:
  ips:
    - "192.0.2.1"
    - "2001:db8::/32"
  domains:
    - "GitHub.com."
    - "*.alpinelinux.org"
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.IPs)
	fmt.Println(p.Domains)
	// Output:
	// [192.0.2.1/32 2001:db8::/32]
	// [github.com *.alpinelinux.org]
}

func ExampleParse_errors() {
	_, err := policy.Parse("policy.yaml", []byte(`
allowlist:
  ips:
    - "tcp/192.0.2.1:0"
  domains:
    - "*.*.example.com"
  domian: []
`))
	fmt.Println(err)
	fmt.Println(errors.Is(err, policy.ErrIP), errors.Is(err, policy.ErrDomain))
	// Output:
	// policy.yaml:4: allowlist.ips[0] "tcp/192.0.2.1:0": invalid IP or CIDR: port "0" is not a number from 1 to 65535
	// policy.yaml:6: allowlist.domains[0] "*.*.example.com": invalid domain: '*' is allowed only as the whole first label, as in *.example.com
	// policy.yaml:7: allowlist.domian: unknown key: expected "ips" or "domains"
	// true true
}

func ExampleCompile() {
	snap, err := policy.Compile(&policy.Policy{
		IPs:     []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		Domains: []string{"github.com", "*.alpinelinux.org"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, host := range []string{"github.com", "API.GitHub.com", "dl-cdn.alpinelinux.org.", "alpinelinux.org"} {
		rule, ok := snap.MatchHost(host)
		fmt.Printf("%s: %v %q\n", host, ok, rule)
	}
	fmt.Println(snap.MatchAddr(netip.MustParseAddr("10.1.2.3")))
	// Output:
	// github.com: true "github.com"
	// API.GitHub.com: false ""
	// dl-cdn.alpinelinux.org.: true "*.alpinelinux.org"
	// alpinelinux.org: false ""
	// 10.0.0.0/8 true
}

func ExampleLoader() {
	// The environment wins: ALLOWLIST_DOMAINS, when set, replaces the
	// file's domains. The caller reads the environment, not the package.
	l := policy.Loader{
		Domains: &policy.List{Name: "ALLOWLIST_DOMAINS", Value: "github.com, *.example.org"},
		IPs:     &policy.List{Name: "ALLOWLIST_IPS", Value: "192.0.2.0/24"},
	}
	p, err := l.Load()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Domains, p.IPs)
	// Output:
	// [github.com *.example.org] [192.0.2.0/24]
}

func ExampleHolder() {
	var live policy.Holder // allows nothing until the first Store
	rule, ok := live.MatchHost("github.com")
	fmt.Printf("%v %q\n", ok, rule)

	snap, _ := policy.Compile(&policy.Policy{Domains: []string{"github.com"}})
	live.Store(snap)
	rule, ok = live.MatchHost("github.com")
	fmt.Printf("%v %q\n", ok, rule)
	// Output:
	// false ""
	// true "github.com"
}

func ExampleNormalizeDomain() {
	for _, d := range []string{"Example.COM.", "*.Bücher.example", "example.com:443"} {
		n, err := policy.NormalizeDomain(d)
		fmt.Printf("%q %v\n", n, err)
	}
	// Output:
	// "example.com" <nil>
	// "*.xn--bcher-kva.example" <nil>
	// "" policy: invalid domain: ports are not allowed in domains
}
