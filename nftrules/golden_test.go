package nftrules

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fakeCgroup is the cgroup id of the golden rulesets: far above the inode
// numbers of this machine's cgroup files, which nft, reading a ruleset
// back, would print instead of the id (a small id such as 4242 once
// matched a cgroup v1 file).
const fakeCgroup = 0x6700_0000_4242

func goldenConfigs() map[string]Config {
	v4 := []netip.Prefix{
		netip.MustParsePrefix("1.1.1.1/32"),
		netip.MustParsePrefix("10.0.0.0/24"),
		netip.MustParsePrefix("10.0.1.0/24"),
		netip.MustParsePrefix("192.168.0.0/16"),
	}
	v6 := []netip.Prefix{
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("2606:4700:4700::1111/128"),
	}
	services := []Service{
		{TCP, netip.MustParsePrefix("198.51.100.0/24"), PortRange{5432, 5432}},
		{UDP, netip.MustParsePrefix("1.1.1.1/32"), PortRange{53, 53}},
		{TCP, netip.MustParsePrefix("2001:db8::7/128"), PortRange{8000, 8099}},
		{UDP, netip.MustParsePrefix("2001:db8:1::/48"), PortRange{1, 65535}},
	}
	return map[string]Config{
		"https":       {Mode: ModeHTTPS, Allow4: v4, Allow6: v6},
		"https_empty": {},
		"dns": {Mode: ModeDNS, Allow4: v4, Allow6: v6, DNSPort: 5353, BypassMark: 0x1, NflogGroup: 7,
			AllowLogPrefix: "allowed: "},
		"dns_quiet": {Mode: ModeDNS, Allow4: v4, QuietAllowed: true},
		"dns_only":  {Mode: ModeDNS, Allow4: v4, DNSOnly: true},
		"https_dns": {Allow4: v4, Allow6: v6, FilterDNS: true},
		// Every guard against a hostile workload: the own chain by
		// cgroup at every level, egress chains, guarded ports and
		// addresses.
		"https_guarded": {Allow4: v4, FilterDNS: true, BypassMark: 0x5eed1234, OwnCgroup: fakeCgroup,
			Devices: []string{"eth0", "eth1"}, GuardPorts: []uint16{8081, 9090},
			GuardAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.11"), netip.MustParseAddr("::1")}},
		// Every entry form of the policy: services of both families, a
		// single port, a range and every port, extra proxied ports.
		"https_ports": {Allow4: v4, AllowPorts: services, Deny4: []netip.Prefix{netip.MustParsePrefix("10.0.0.7/32")},
			TLSPorts: []PortRange{{8443, 8443}, {9000, 9099}}, HTTPPorts: []PortRange{{8080, 8080}}, FilterDNS: true},
		"dns_ports": {Mode: ModeDNS, Allow6: v6, AllowPorts: services, TLSPorts: []PortRange{{8443, 8443}}},
		"dns_guarded": {Mode: ModeDNS, Allow4: v4, OwnCgroup: fakeCgroup, OwnCgroupLevel: 3,
			Devices: []string{"eth0"}, GuardAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.11")}},
	}
}

func TestRenderGolden(t *testing.T) {
	for name, cfg := range goldenConfigs() {
		t.Run(name, func(t *testing.T) {
			r, err := Build(cfg)
			require.NoError(t, err)
			got := r.String()
			path := filepath.Join("testdata", name+".nft")
			if *update {
				require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run go test -update to create it")
			assert.Equal(t, string(want), got)
		})
	}
}
