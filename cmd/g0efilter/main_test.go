package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/nftrules"
	"github.com/g0lab/g0efilter/policy"
)

const goodPolicy = `# test policy
allowlist:
  ips:
    - "198.18.0.1"
    - "198.18.1.0/24"
    - "2001:db8::/32"
  domains:
    - "github.com"
    - "*.example.org"
`

const brokenPolicy = `allowlist:
  ips:
    - "300.1.1.1"
    - "198.18.0.1"
  domains:
    - "bad domain"
    - "github.com"
  extra: true
`

// writePolicy writes text to a policy file in a temporary directory.
func writePolicy(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

// runCmd runs the program with args and environment m.
func runCmd(t *testing.T, m map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, env(m), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestDryRun(t *testing.T) {
	// As Docker 20.10 writes it on a user-defined network: the upstreams
	// stay 127.0.0.11, which the guard rules keep for the filter.
	saved := readResolvConf
	readResolvConf = func() string { return resolvDocker2010 }
	t.Cleanup(func() { readResolvConf = saved })
	path := writePolicy(t, goodPolicy)
	snap, err := policy.Compile(mustRead(t, path))
	require.NoError(t, err)
	v4, v6 := snap.Prefixes()

	tests := []struct {
		mode string
		env  map[string]string
		cfg  nftrules.Config
	}{
		{"https", map[string]string{}, nftrules.Config{Mode: nftrules.ModeHTTPS, HTTPPort: 8080, HTTPSPort: 8443, DNSPort: 53,
			FilterDNS: true, GuardAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.11")}}},
		{"https ports", map[string]string{"HTTP_PORT": "3128", "HTTPS_PORT": "3129", "FILTER_DNS": "false"},
			nftrules.Config{Mode: nftrules.ModeHTTPS, HTTPPort: 3128, HTTPSPort: 3129}},
		{"dns", map[string]string{"FILTER_MODE": "dns", "DNS_PORT": "5353", "METRICS_ADDR": ":9464"},
			nftrules.Config{Mode: nftrules.ModeDNS, DNSPort: 5353, GuardPorts: []uint16{9464}, GuardAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.11")}}},
	}
	// Dry-run shows the rules for where it runs: this process's cgroup and
	// devices.
	g := findGuards()
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			tt.env["POLICY_PATH"] = path
			tt.cfg.Allow4, tt.cfg.Allow6 = v4, v6
			tt.cfg.OwnCgroup, tt.cfg.OwnCgroupLevel, tt.cfg.Devices = g.cgroupID, g.cgroupLevel, g.devices
			want, err := nftrules.Build(tt.cfg)
			require.NoError(t, err)

			code, out, errOut := runCmd(t, tt.env, "dry-run")
			require.Equal(t, 0, code, errOut)
			assert.Equal(t, want.String(), out)
			assert.Contains(t, out, "198.18.0.1")
			assert.Contains(t, out, "2001:db8::/32")
		})
	}
}

func mustRead(t *testing.T, path string) *policy.Policy {
	t.Helper()
	p, err := policy.ReadFile(path)
	require.NoError(t, err)
	return p
}

func TestDryRunEnvListsWin(t *testing.T) {
	path := writePolicy(t, goodPolicy)
	code, out, errOut := runCmd(t, map[string]string{"POLICY_PATH": path, "ALLOWLIST_IPS": "203.0.113.7"}, "dry-run")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "203.0.113.7")
	assert.NotContains(t, out, "198.18.0.1")
}

func TestDryRunBadPolicy(t *testing.T) {
	path := writePolicy(t, brokenPolicy)
	code, out, errOut := runCmd(t, map[string]string{"POLICY_PATH": path}, "dry-run")
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "g0efilter: "+path+":3:")
}

func TestValidate(t *testing.T) {
	good := writePolicy(t, goodPolicy)
	anyDomain := writePolicy(t, "allowlist:\n  domains:\n    - \"*\"\n")
	broken := writePolicy(t, brokenPolicy)

	t.Run("good file from POLICY_PATH", func(t *testing.T) {
		code, out, errOut := runCmd(t, map[string]string{"POLICY_PATH": good}, "validate")
		require.Equal(t, 0, code, errOut)
		assert.Equal(t, good+": ok\n"+
			"  mode:       enforce (ENFORCE)\n"+
			"  ips:        3 (2 IPv4, 1 IPv6)\n"+
			"  domains:    2\n"+
			"  any domain: no\n", out)
	})
	t.Run("mode", func(t *testing.T) {
		_, out, _ := runCmd(t, map[string]string{"ENFORCE": "audit"}, "validate", good)
		assert.Contains(t, out, "  mode:       audit (ENFORCE): NOTHING IS BLOCKED")
		audited := writePolicy(t, "mode: audit\n"+goodPolicy)
		_, out, _ = runCmd(t, map[string]string{"ENFORCE": "enforce"}, "validate", audited)
		assert.Contains(t, out, "  mode:       audit (the file's mode): NOTHING IS BLOCKED")
		_, _, errOut := runCmd(t, map[string]string{"POLICY_PATH": good}, "check", "example.invalid")
		assert.NotContains(t, errOut, "audit mode")
		code, out, errOut := runCmd(t, map[string]string{"POLICY_PATH": audited}, "dry-run")
		require.Equal(t, 0, code, errOut)
		assert.Contains(t, out, `log prefix "g0efilter would block: " group 100 accept`)
		_, _, errOut = runCmd(t, map[string]string{"POLICY_PATH": audited}, "check", "example.invalid")
		assert.Contains(t, errOut, "audit mode")
	})
	t.Run("any domain from argument", func(t *testing.T) {
		code, out, errOut := runCmd(t, nil, "validate", anyDomain)
		require.Equal(t, 0, code, errOut)
		assert.Contains(t, out, "any domain: yes")
	})
	t.Run("broken file", func(t *testing.T) {
		code, out, errOut := runCmd(t, nil, "validate", broken)
		assert.Equal(t, 1, code)
		assert.Empty(t, out)
		lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
		require.Len(t, lines, 3, errOut)
		for i, want := range []string{broken + ":3:", broken + ":6:", broken + ":8:"} {
			assert.True(t, strings.HasPrefix(lines[i], "g0efilter: "+want), "line %d: %s", i, lines[i])
		}
		assert.Contains(t, lines[0], `"300.1.1.1"`)
		assert.Contains(t, lines[1], `"bad domain"`)
		assert.Contains(t, lines[2], "extra")
	})
	t.Run("missing file", func(t *testing.T) {
		code, _, errOut := runCmd(t, nil, "validate", filepath.Join(t.TempDir(), "none.yaml"))
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, "g0efilter: ")
	})
	t.Run("too many arguments", func(t *testing.T) {
		code, _, errOut := runCmd(t, nil, "validate", good, good)
		assert.Equal(t, 2, code)
		assert.Contains(t, errOut, "usage:")
	})
}

func TestCheck(t *testing.T) {
	path := writePolicy(t, goodPolicy)
	tests := []struct {
		target string
		code   int
		out    string
	}{
		{"github.com", 0, "github.com: allowed by github.com\n"},
		{"GitHub.com.", 0, "GitHub.com.: allowed by github.com\n"},
		{"a.b.example.org", 0, "a.b.example.org: allowed by *.example.org\n"},
		{"example.org", 1, "example.org: blocked (no rule matches)\n"},
		{"evil.example", 1, "evil.example: blocked (no rule matches)\n"},
		{"198.18.0.1", 0, "198.18.0.1: allowed by 198.18.0.1/32\n"},
		{"198.18.1.200", 0, "198.18.1.200: allowed by 198.18.1.0/24\n"},
		{"198.18.2.1", 1, "198.18.2.1: blocked (no rule matches)\n"},
		{"2001:db8::5", 0, "2001:db8::5: allowed by 2001:db8::/32\n"},
		{"::ffff:198.18.0.1", 0, "::ffff:198.18.0.1: allowed by 198.18.0.1/32\n"},
		{"2001:db9::1", 1, "2001:db9::1: blocked (no rule matches)\n"},
		{"[2001:db8::5]", 0, "[2001:db8::5]: allowed by 2001:db8::/32\n"},
		// A U-label is matched as the policy's names are, in punycode.
		{"bücher.example.org", 0, "bücher.example.org (xn--bcher-kva.example.org): allowed by *.example.org\n"},
		{"bücher.example", 1, "bücher.example (xn--bcher-kva.example): blocked (no rule matches)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			code, out, errOut := runCmd(t, map[string]string{"POLICY_PATH": path}, "check", tt.target)
			assert.Equal(t, tt.code, code, errOut)
			assert.Equal(t, tt.out, out)
		})
	}

	t.Run("several, one blocked", func(t *testing.T) {
		code, out, _ := runCmd(t, map[string]string{"POLICY_PATH": path}, "check", "github.com", "10.0.0.1")
		assert.Equal(t, 1, code)
		assert.Equal(t, "github.com: allowed by github.com\n10.0.0.1: blocked (no rule matches)\n", out)
	})
	t.Run("no argument", func(t *testing.T) {
		code, _, errOut := runCmd(t, map[string]string{"POLICY_PATH": path}, "check")
		assert.Equal(t, 2, code)
		assert.Contains(t, errOut, "usage:")
	})
}

// TestCheckPorts: check takes name:port and tcp/ or udp/ before an
// address or name with a port, and says which entry decided, and how.
func TestCheckPorts(t *testing.T) {
	path := writePolicy(t, `allowlist:
  ips: ["198.18.0.1", "udp/198.18.0.53:53", "tcp/[2001:db8::7]:8000-8099"]
  domains: ["github.com", "tcp/github.com:22", "*.example.org:8443", "udp/voip.example:5060"]
denylist:
  ips: ["198.18.0.54"]
`)
	tests := []struct {
		target string
		env    map[string]string
		code   int
		out    string
	}{
		{"198.18.0.1:22", nil, 0, "198.18.0.1:22: allowed by 198.18.0.1/32\n"},
		{"udp/198.18.0.53:53", nil, 0, "udp/198.18.0.53:53: allowed by udp/198.18.0.53:53\n"},
		{"198.18.0.53:53", nil, 1, "198.18.0.53:53: blocked (no rule matches)\n"}, // TCP
		{"198.18.0.53", nil, 1, "198.18.0.53: blocked (no rule matches)\n"},
		{"[2001:db8::7]:8080", nil, 0, "[2001:db8::7]:8080: allowed by tcp/[2001:db8::7]:8000-8099\n"},
		{"tcp/[2001:db8::7]:8100", nil, 1, "tcp/[2001:db8::7]:8100: blocked (no rule matches)\n"},
		{"github.com:443", nil, 0, "github.com:443: allowed by github.com\n"},
		{"github.com:22", nil, 0, "github.com:22: allowed by tcp/github.com:22, at the addresses the filter's resolver answers for it\n"},
		{"udp/github.com:22", nil, 1, "udp/github.com:22: blocked: github.com allows ports 80 and 443 only (and TLS_PORTS, HTTP_PORTS)\n"},
		{"github.com:8443", nil, 1, "github.com:8443: blocked: github.com allows ports 80 and 443 only (and TLS_PORTS, HTTP_PORTS)\n"},
		{"github.com:8443", map[string]string{"TLS_PORTS": "8443"}, 0, "github.com:8443: allowed by github.com\n"},
		{"github.com:8443", map[string]string{"FILTER_MODE": "dns"}, 0, "github.com:8443: allowed by github.com\n"},
		{"www.example.org:8443", nil, 0, "www.example.org:8443: allowed by *.example.org:8443, decided by the name the client sends (TLS server name or HTTP Host)\n"},
		{"www.example.org:8443", map[string]string{"FILTER_MODE": "dns"}, 0, "www.example.org:8443: allowed by *.example.org:8443, at the addresses the filter's resolver answers for it\n"},
		{"www.example.org", nil, 1, "www.example.org: blocked without a port; allowed on the ports of *.example.org:8443\n"},
		{"udp/voip.example:5060", nil, 0, "udp/voip.example:5060: allowed by udp/voip.example:5060, at the addresses the filter's resolver answers for it\n"},
		{"198.18.0.54:53", nil, 1, "198.18.0.54:53: blocked, denied by 198.18.0.54/32\n"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			env := map[string]string{"POLICY_PATH": path}
			for k, v := range tt.env {
				env[k] = v
			}
			code, out, errOut := runCmd(t, env, "check", tt.target)
			assert.Equal(t, tt.code, code, errOut)
			assert.Equal(t, tt.out, out)
		})
	}
}

// TestCheckDenylist: check names the denylist entry that wins over an
// allowing one, from the file and from DENYLIST_* (which replace the
// file's denylist).
func TestCheckDenylist(t *testing.T) {
	path := writePolicy(t, goodPolicy+"denylist:\n  ips: [\"198.18.1.128/25\"]\n  domains: [\"*.bad.example.org\"]\n")
	for target, out := range map[string]string{
		"198.18.1.200":      "198.18.1.200: blocked, denied by 198.18.1.128/25\n",
		"198.18.1.1":        "198.18.1.1: allowed by 198.18.1.0/24\n",
		"x.bad.example.org": "x.bad.example.org: blocked, denied by *.bad.example.org\n",
		"bad.example.org":   "bad.example.org: allowed by *.example.org\n",
	} {
		code, got, errOut := runCmd(t, map[string]string{"POLICY_PATH": path}, "check", target)
		assert.Equal(t, map[bool]int{true: 1, false: 0}[strings.Contains(out, "denied")], code, errOut)
		assert.Equal(t, out, got)
	}
	code, got, _ := runCmd(t, map[string]string{"POLICY_PATH": path, "DENYLIST_DOMAINS": "github.com", "DENYLIST_IPS": "198.18.9.9"},
		"check", "github.com", "198.18.1.200")
	assert.Equal(t, 1, code)
	assert.Equal(t, "github.com: blocked, denied by github.com\n198.18.1.200: allowed by 198.18.1.0/24\n", got)
}

// TestCheckRefusesWhatIsNoHost: a URL, a port or a pattern is not checked
// as if it were a host name, which nothing would match: check says what
// to give instead.
func TestCheckRefusesWhatIsNoHost(t *testing.T) {
	path := writePolicy(t, goodPolicy)
	tests := []struct {
		target string
		want   string
	}{
		{"https://github.com", `g0efilter: "https://github.com" is a URL: give its host alone, as in g0efilter check github.com` + "\n"},
		{"http://198.18.0.1:8080/x", `g0efilter: "http://198.18.0.1:8080/x" is a URL: give its host alone, as in g0efilter check 198.18.0.1` + "\n"},
		{"github.com:http", `g0efilter: "github.com:http": port "http" is not a number from 1 to 65535` + "\n"},
		{"udp/198.18.0.1", `g0efilter: "udp/198.18.0.1" has a protocol but no port: give one, as in g0efilter check udp/198.18.0.1:53` + "\n"},
		{"*.example.org", `g0efilter: "*.example.org" is a pattern: give a host name that it should match` + "\n"},
		{"github.com/x", `g0efilter: "github.com/x" is not a host name or an IP address: a domain is a bare host name, not a URL` + "\n"},
		{"bad..name", `g0efilter: "bad..name" is not a host name or an IP address: empty label` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			code, out, errOut := runCmd(t, map[string]string{"POLICY_PATH": path}, "check", tt.target)
			assert.Equal(t, 2, code)
			assert.Empty(t, out)
			assert.Equal(t, tt.want, errOut)
		})
	}

	t.Run("among others", func(t *testing.T) {
		code, out, errOut := runCmd(t, map[string]string{"POLICY_PATH": path}, "check", "github.com", "https://github.com", "evil.example")
		assert.Equal(t, 2, code)
		assert.Equal(t, "github.com: allowed by github.com\nevil.example: blocked (no rule matches)\n", out)
		assert.Contains(t, errOut, "is a URL")
	})
}

// TestDefaultPolicyMissing: without POLICY_PATH, a missing
// /app/policy.yaml says how to name the policy file.
func TestDefaultPolicyMissing(t *testing.T) {
	if _, err := os.Stat(defaultPolicyPath); err == nil {
		t.Skip("this machine has a policy file at " + defaultPolicyPath)
	}
	tests := []struct {
		args []string
		hint string
	}{
		{[]string{"dry-run"}, "set it to your policy file, as in POLICY_PATH=./policy.yaml g0efilter dry-run"},
		{[]string{"check", "github.com"}, "set it to your policy file, as in POLICY_PATH=./policy.yaml g0efilter check HOST"},
		{[]string{"validate"}, "give the file to check, as in g0efilter validate ./policy.yaml, or set POLICY_PATH"},
	}
	for _, tt := range tests {
		t.Run(tt.args[0], func(t *testing.T) {
			code, out, errOut := runCmd(t, nil, tt.args...)
			assert.Equal(t, 1, code)
			assert.Empty(t, out)
			assert.Equal(t, "g0efilter: policy: open /app/policy.yaml: no such file or directory\n"+
				"g0efilter: POLICY_PATH is not set, and there is no policy file at its default, /app/policy.yaml: "+tt.hint+"\n", errOut)
		})
	}

	t.Run("not when POLICY_PATH names it", func(t *testing.T) {
		code, _, errOut := runCmd(t, map[string]string{"POLICY_PATH": defaultPolicyPath}, "dry-run")
		assert.Equal(t, 1, code)
		assert.Equal(t, "g0efilter: policy: open /app/policy.yaml: no such file or directory\n", errOut)
	})
	t.Run("not when validate is given a path", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "none.yaml")
		code, _, errOut := runCmd(t, nil, "validate", missing)
		assert.Equal(t, 1, code)
		assert.Equal(t, "g0efilter: policy: open "+missing+": no such file or directory\n", errOut)
	})
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := runCmd(t, nil, args...)
			assert.Equal(t, 0, code)
			assert.Equal(t, "g0efilter dev\n", out)
			assert.Empty(t, errOut)
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown command", nil, []string{"frobnicate"}, `g0efilter: unknown command "frobnicate"`},
		{"unknown flag", nil, []string{"--nope"}, "g0efilter: flag provided but not defined: -nope"},
		{"dry-run argument", nil, []string{"dry-run", "x"}, "g0efilter: dry-run takes no arguments"},
		{"run argument", nil, []string{"run", "x"}, "g0efilter: run takes no arguments"},
		{"bad config", map[string]string{"FILTER_MODE": "nope", "HTTP_PORT": "x"}, []string{"dry-run"}, "g0efilter: FILTER_MODE=\"nope\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tt.env, tt.args...)
			assert.Equal(t, 2, code)
			assert.Empty(t, out)
			assert.Contains(t, errOut, tt.want)
		})
	}
}

func TestRunBadPolicyInstallsNothing(t *testing.T) {
	// The policy fails to load before any netlink call, so this needs no
	// privileges and touches no rules. The test may run in the machine's
	// own namespace, which run refuses before anything else unless told.
	path := writePolicy(t, brokenPolicy)
	code, _, errOut := runCmd(t, map[string]string{"POLICY_PATH": path, "ALLOW_HOST_NAMESPACE": "true"}, "run")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "policy does not load")
}

func TestDiff(t *testing.T) {
	p := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range s {
			out = append(out, netip.MustParsePrefix(x))
		}
		return out
	}
	added, removed := diff(p("10.0.0.0/8", "192.0.2.1/32"), p("10.0.0.0/8", "198.18.0.1/32", "198.18.0.2/32"))
	assert.Equal(t, 2, added)
	assert.Equal(t, 1, removed)
}

// Loopback resolvers are the filter's alone: 127.0.0.11 by its address,
// one on 127.0.0.1 or ::1 by its port (their addresses are the
// workload's loopback and the redirect's target, which must stay open).
func TestGuardsOfLoopbackResolvers(t *testing.T) {
	cfg := config{FilterDNS: true, MetricsAddr: ":9464", DNSUpstreams: []netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.11:53"), netip.MustParseAddrPort("127.0.0.1:5353"),
		netip.MustParseAddrPort("[::1]:5300"), netip.MustParseAddrPort("198.18.0.53:53"),
		netip.MustParseAddrPort("[::ffff:127.0.0.11]:53"),
	}}
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("127.0.0.11")}, guardAddrs(cfg))
	assert.Equal(t, []uint16{5300, 5353, 9464}, guardPorts(cfg))

	cfg.FilterDNS = false // https mode without DNS filtering: the workload asks them anyway
	assert.Empty(t, guardAddrs(cfg))
	assert.Equal(t, []uint16{9464}, guardPorts(cfg))
}

// A DASHBOARD_API_KEY the dashboard would refuse is named at start-up;
// a strong one is not.
func TestOpenSinksWarnsOfWeakDashboardKey(t *testing.T) {
	for key, warned := range map[string]bool{
		"change-me-to-a-long-random-secret": true,
		"short":                             true,
		strings.Repeat("0123456789abcdef", 2) + "fedcba9876543210aabbccddeeff0011": false,
	} {
		var logs bytes.Buffer
		cfg, err := loadConfig(env(map[string]string{"DASHBOARD_HOST": "http://dashboard:8081", "DASHBOARD_API_KEY": key}))
		require.NoError(t, err)
		s, err := openSinks(cfg, newLogger(&logs, slog.LevelInfo), "test")
		require.NoError(t, err)
		s.close(context.Background(), newLogger(io.Discard, slog.LevelInfo))
		assert.Equal(t, warned, strings.Contains(logs.String(), "DASHBOARD_API_KEY is a key the dashboard refuses"), "%q: %s", key, logs.String())
	}
}
