// Command g0efilter is the reference egress filter. It reads its
// configuration from the environment, opens the transparent proxies (https
// mode) or the filtering DNS server (dns mode), installs the nftables
// ruleset in its network namespace, and then follows the policy file: each
// valid edit updates the kernel's sets and the live policy together. Every
// decision goes to the log and, when configured, to LOG_FILE, Gotify, the
// dashboard and Prometheus metrics. On SIGTERM it exits and leaves the rules
// installed, so nothing new gets out until it is back.
//
// Usage:
//
//	g0efilter [run]           filter, until SIGTERM
//	g0efilter dry-run         print the ruleset that run would install
//	g0efilter validate [PATH] check a policy file (default $POLICY_PATH)
//	g0efilter check HOST|IP…  say whether the policy allows each target
//	g0efilter suggest [FILE…] print a policy from what the workload did
//	g0efilter health          exit 0 if the ruleset is installed here
//	g0efilter version         print the version
//
// The variables are listed in the README; an invalid one stops the filter
// at start-up with an error naming it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/nftrules"
	"github.com/g0lab/g0efilter/policy"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // policy refused, check refused, or runtime failure
	exitUsage   = 2 // bad command line or configuration
)

// Log attribute keys.
const (
	logKeyErr       = "err"
	logKeyMode      = "mode"
	logKeyPolicy    = "policy"
	logKeyVersion   = "version"
	logKeyHostname  = "hostname"
	logKeyIPv4      = "ipv4"
	logKeyIPv6      = "ipv6"
	logKeyDomains   = "domains"
	logKeyDenied    = "denied"
	logKeyAnyDomain = "any_domain"
	logKeyAdded     = "added"   // prefixes
	logKeyRemoved   = "removed" // prefixes
	logKeyHTTPPort  = "http_port"
	logKeyHTTPSPort = "https_port"
	logKeyDNSPort   = "dns_port"
	logKeyRules     = "rules"
	logKeyWithPorts = "with_ports"

	logKeyDomainsAdded     = "domains_added"
	logKeyDomainsRemoved   = "domains_removed"
	logKeyDestinationCheck = "destination_check"
	logKeyDropped          = "dropped"
	logKeyUpstreams        = "upstreams"
	logKeyName             = "name"
	logKeySink             = "sink"
	logKeyPath             = "path"
	logKeyAddr             = "addr"
	logKeyInterval         = "interval"
	logKeyCgroup           = "cgroup"
	logKeyLevel            = "level"
	logKeyDevices          = "devices"
)

const usage = `usage: g0efilter [command] [arguments]

commands:
  run              install the nftables rules and follow the policy file (default)
  dry-run          print the ruleset that run would install
  validate [PATH]  check a policy file (default $POLICY_PATH)
  check TARGET...  report whether the policy allows each host name or address
                   (with :PORT, tcp/ or udp/ as the policy writes them)
  suggest [--diff POLICY] [FILE...]
                   print a policy that allows what the workload did, from the filter's
                   record (OBSERVED_FILE) or events (LOG_FILE), those by default;
                   with --diff, only what POLICY lacks, as a diff
  health           exit 0 if this namespace has the filter's ruleset installed
  version          print the version (also --version)

Configuration comes from the environment (LOG_LEVEL, POLICY_PATH, FILTER_MODE, ...).
`

func main() {
	ctx, stop := signalContext()
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
}

// run is the whole program but for the process: it returns the exit code.
func run(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("g0efilter", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	showVersion := fs.Bool("version", false, "print the version")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		fmt.Fprintf(stderr, "g0efilter: %v\n%s", err, usage)
		return exitUsage
	}
	if *showVersion {
		fmt.Fprintf(stdout, "g0efilter %s\n", version)
		return exitOK
	}
	args = fs.Args()
	cmd := "run"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}

	switch cmd {
	case "version":
		fmt.Fprintf(stdout, "g0efilter %s\n", version)
		return exitOK
	case "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "run", "dry-run", "validate", "check", "health", "suggest":
	default:
		fmt.Fprintf(stderr, "g0efilter: unknown command %q\n%s", cmd, usage)
		return exitUsage
	}

	cfg, err := loadConfig(lookup)
	if err != nil {
		printErr(stderr, err)
		return exitUsage
	}
	cfg.useResolvConf(readResolvConf())

	switch cmd {
	case "run":
		if len(args) > 0 {
			return usageErr(stderr, "run takes no arguments")
		}
		return cmdRun(ctx, cfg, stderr)
	case "dry-run":
		if len(args) > 0 {
			return usageErr(stderr, "dry-run takes no arguments")
		}
		return cmdDryRun(cfg, stdout, stderr)
	case "validate":
		if len(args) > 1 {
			return usageErr(stderr, "validate takes at most one path")
		}
		if len(args) == 1 {
			cfg.PolicyPath, cfg.PolicyPathDefault = args[0], false
		}
		return cmdValidate(cfg, stdout, stderr)
	case "health":
		if len(args) > 0 {
			return usageErr(stderr, "health takes no arguments")
		}
		return cmdHealth(stdout, stderr)
	case "suggest":
		return cmdSuggest(cfg, args, stdout, stderr)
	default: // check
		if len(args) == 0 {
			return usageErr(stderr, "check needs at least one host name or IP address")
		}
		return cmdCheck(cfg, args, stdout, stderr)
	}
}

// printErr writes err to w, one "g0efilter: " line per line of its message.
func printErr(w io.Writer, err error) {
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(w, "g0efilter: %s\n", line)
	}
}

func usageErr(w io.Writer, msg string) int {
	fmt.Fprintf(w, "g0efilter: %s\n%s", msg, usage)
	return exitUsage
}

// loader is the policy loader for cfg: the file, with the environment's
// lists taking precedence.
func loader(cfg config) policy.Loader {
	return policy.Loader{Path: cfg.PolicyPath, IPs: cfg.AllowIPs, Domains: cfg.AllowDomains,
		DenyIPs: cfg.DenyIPs, DenyDomains: cfg.DenyDomains, Mode: cfg.Enforce}
}

// loadSnapshot loads and compiles the policy of cfg.
func loadSnapshot(cfg config) (*policy.Snapshot, error) {
	p, err := loader(cfg).Load()
	if err != nil {
		return nil, err
	}
	return policy.Compile(p)
}

// ruleConfig is the nftrules configuration for cfg, the guards g and the
// allowlist.
func ruleConfig(cfg config, g guards, l nftrules.Lists) nftrules.Config {
	return nftrules.Config{
		Mode:           cfg.Mode,
		HTTPPort:       cfg.HTTPPort,
		HTTPSPort:      cfg.HTTPSPort,
		DNSPort:        cfg.DNSPort,
		BypassMark:     cfg.BypassMark,
		Allow4:         l.Allow4,
		Allow6:         l.Allow6,
		Deny4:          l.Deny4,
		Deny6:          l.Deny6,
		AllowPorts:     l.AllowPorts,
		TLSPorts:       l.TLSPorts,
		HTTPPorts:      l.HTTPPorts,
		Audit:          l.Audit,
		DNSOnly:        !cfg.DNSPinning,
		FilterDNS:      cfg.FilterDNS,
		OwnCgroup:      g.cgroupID,
		OwnCgroupLevel: g.cgroupLevel,
		Devices:        g.devices,
		GuardPorts:     guardPorts(cfg),
		GuardAddrs:     guardAddrs(cfg),
	}
}

// setLists are the contents of the kernel's allowlist, denylist and port
// sets for snap.
func setLists(cfg config, snap *policy.Snapshot) nftrules.Lists {
	l := nftrules.Lists{Audit: snap.Audit()}
	l.Allow4, l.Allow6 = snap.Prefixes()
	l.Deny4, l.Deny6 = snap.DenyPrefixes()
	for _, sv := range snap.Services() {
		proto := nftrules.TCP
		if sv.Proto == policy.UDP {
			proto = nftrules.UDP
		}
		l.AllowPorts = append(l.AllowPorts, nftrules.Service{Proto: proto, Prefix: sv.Prefix,
			Ports: nftrules.PortRange{First: sv.Ports.First, Last: sv.Ports.Last}})
	}
	if cfg.Mode == nftrules.ModeHTTPS {
		l.TLSPorts, l.HTTPPorts = proxiedPorts(cfg, snap)
	}
	return l
}

// proxiedPorts are the TCP ports, besides 80 and 443, that https mode
// sends to the proxies: HTTP_PORTS to the HTTP proxy; TLS_PORTS and the
// ports of the policy's names with a port but no protocol, but for the
// HTTP ones, to the TLS proxy. Both are sorted and disjoint.
func proxiedPorts(cfg config, snap *policy.Snapshot) (tls, http []nftrules.PortRange) {
	web := map[int]bool{80: true, 443: true}
	for _, p := range cfg.HTTPPorts {
		web[int(p)] = true
	}
	ranges := make([]policy.Ports, 0, len(cfg.TLSPorts))
	for _, p := range cfg.TLSPorts {
		ranges = append(ranges, policy.Ports{First: p, Last: p})
	}
	ranges = append(ranges, snap.ProxiedPorts()...)
	slices.SortFunc(ranges, func(a, b policy.Ports) int { return int(a.First) - int(b.First) })
	// Merge the ranges and cut the HTTP ports out of them.
	next := 1
	for _, r := range ranges {
		for p := max(int(r.First), next); p <= int(r.Last); p++ {
			if web[p] {
				continue
			}
			if n := len(tls); n > 0 && int(tls[n-1].Last) == p-1 {
				tls[n-1].Last = uint16(p)
			} else {
				tls = append(tls, nftrules.PortRange{First: uint16(p), Last: uint16(p)})
			}
		}
		next = max(next, int(r.Last)+1)
	}
	http = make([]nftrules.PortRange, 0, len(cfg.HTTPPorts))
	for _, p := range slices.Sorted(slices.Values(cfg.HTTPPorts)) {
		http = append(http, nftrules.PortRange{First: p, Last: p})
	}
	return tls, http
}

// guardPorts are the local ports that only the filter may reach, besides
// the proxies' and the DNS server's: GUARD_PORTS, the metrics port and the
// port of a dashboard on this namespace's loopback.
func guardPorts(cfg config) []uint16 {
	ports := slices.Clone(cfg.GuardPorts)
	if _, p, err := net.SplitHostPort(cfg.MetricsAddr); err == nil {
		if n, err := parsePort(p); err == nil {
			ports = append(ports, n)
		}
	}
	if u := cfg.DashboardHost; u != nil {
		a, err := netip.ParseAddr(u.Hostname())
		if u.Hostname() == "localhost" || (err == nil && a.IsLoopback()) {
			port := u.Port()
			if port == "" {
				port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
			}
			if n, err := parsePort(port); err == nil {
				ports = append(ports, n)
			}
		}
	}
	for _, u := range loopbackUpstreams(cfg) {
		if primaryLoopback(u.Addr()) {
			ports = append(ports, u.Port())
		}
	}
	slices.Sort(ports)
	return slices.Compact(ports)
}

// loopbackUpstreams are the resolvers on loopback when the workload's DNS
// goes through the filter: only the filter may reach them, or a workload
// could ask them anything on their real port.
func loopbackUpstreams(cfg config) []netip.AddrPort {
	if cfg.Mode != nftrules.ModeDNS && !cfg.FilterDNS {
		return nil
	}
	var out []netip.AddrPort
	for _, u := range slices.Concat(cfg.DNSUpstreams, cfg.DNSLocalUpstreams) {
		if u.Addr().Unmap().IsLoopback() {
			out = append(out, netip.AddrPortFrom(u.Addr().Unmap(), u.Port()))
		}
	}
	return out
}

// primaryLoopback reports whether a is 127.0.0.1 or ::1, where the
// workload's own loopback services and the filter's redirect targets
// live: a resolver there is guarded by its port, not by its address.
func primaryLoopback(a netip.Addr) bool {
	return a == netip.IPv6Loopback() || a == netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// guardAddrs are the addresses of the resolvers on loopback (Docker's
// 127.0.0.11) but 127.0.0.1 and ::1 (see guardPorts).
func guardAddrs(cfg config) []netip.Addr {
	var out []netip.Addr
	for _, u := range loopbackUpstreams(cfg) {
		if a := u.Addr(); !primaryLoopback(a) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// guards are what tell the filter's own sockets and the devices to guard,
// as found at start-up.
type guards struct {
	cgroupID    uint64 // zero: none, the mark alone
	cgroupLevel int
	cgroupWhy   string // why there is no cgroup
	devices     []string
	egressWhy   string // why there are no egress chains
	afXDP       bool   // the kernel has AF_XDP sockets
}

// alone gives up the cgroup when other processes share it, as far as the
// filter can see: their sockets would pass for the filter's once they had
// its mark, so a workload started in the filter's cgroup would not be
// told apart from it. For run, which must be alone; dry-run and health
// may run beside it.
func (g guards) alone() guards {
	if others := cgroupPeers(); g.cgroupID != 0 && len(others) > 0 {
		g.cgroupID, g.cgroupLevel = 0, 0
		g.cgroupWhy = fmt.Sprintf("the filter's cgroup also holds the processes %v: run the filter alone in its cgroup", others)
	}
	return g
}

// findGuards looks for what this process and namespace offer: its
// cgroup and the network devices.
func findGuards() guards {
	var g guards
	var err error
	if g.cgroupID, g.cgroupLevel, err = nftrules.SelfCgroup(); err != nil {
		g.cgroupWhy = err.Error()
	}
	if g.devices, err = devices(); err != nil {
		g.egressWhy = err.Error()
	}
	g.afXDP = hasAFXDP()
	return g
}

// defaultPolicyHint adds to err, when it says that the default policy file
// is missing, how to name another: example, for the command that failed.
func defaultPolicyHint(cfg config, err error, example string) error {
	if !cfg.PolicyPathDefault || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return fmt.Errorf("%w\n%s is not set, and there is no policy file at its default, %s: %s",
		err, envPolicyPath, cfg.PolicyPath, example)
}

func cmdDryRun(cfg config, stdout, stderr io.Writer) int {
	snap, err := loadSnapshot(cfg)
	if err != nil {
		printErr(stderr, defaultPolicyHint(cfg, err, "set it to your policy file, as in "+envPolicyPath+"=./policy.yaml g0efilter dry-run"))
		return exitFailure
	}
	if snap.AllowsAnyDomain() {
		fmt.Fprintln(stderr, `g0efilter: warning: the policy allows any domain ("*")`)
	}
	rs, err := nftrules.Build(ruleConfig(cfg, findGuards(), setLists(cfg, snap)))
	if err != nil {
		printErr(stderr, err)
		return exitFailure
	}
	fmt.Fprintf(stderr, "g0efilter: note: run chooses the bypass mark at random; %#08x stands for it here\n",
		nftrules.DefaultBypassMark)
	if err := rs.Render(stdout); err != nil {
		printErr(stderr, err)
		return exitFailure
	}
	return exitOK
}

func cmdValidate(cfg config, stdout, stderr io.Writer) int {
	path := cfg.PolicyPath
	p, err := policy.ReadFile(path)
	if err != nil {
		printErr(stderr, defaultPolicyHint(cfg, err, "give the file to check, as in g0efilter validate ./policy.yaml, or set "+envPolicyPath))
		return exitFailure
	}
	var v4, v6 int
	for _, pfx := range p.IPs {
		if pfx.Addr().Is4() {
			v4++
		} else {
			v6++
		}
	}
	anyDomain := "no"
	if p.AllowsAnyDomain() {
		anyDomain = `yes ("*" disables name filtering)`
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	fmt.Fprintf(stdout, "  mode:       %s\n", modeLine(p.Mode, cfg.Enforce))
	fmt.Fprintf(stdout, "  ips:        %d (%d IPv4, %d IPv6)\n", len(p.IPs), v4, v6)
	fmt.Fprintf(stdout, "  domains:    %d\n", len(p.Domains))
	fmt.Fprintf(stdout, "  any domain: %s\n", anyDomain)
	if n := len(p.AddrPorts) + len(p.NamePorts); n > 0 {
		fmt.Fprintf(stdout, "  with ports: %d (%d ips, %d domains; g0efilter dry-run shows the kernel's sets)\n", n, len(p.AddrPorts), len(p.NamePorts))
	}
	if n := len(p.DenyIPs) + len(p.DenyDomains); n > 0 {
		fmt.Fprintf(stdout, "  denied:     %d (%d ips, %d domains)\n", n, len(p.DenyIPs), len(p.DenyDomains))
	}
	for _, l := range []*policy.List{cfg.AllowIPs, cfg.AllowDomains, cfg.DenyIPs, cfg.DenyDomains} {
		if l != nil {
			fmt.Fprintf(stdout, "  note: %s is set and replaces the file's list\n", l.Name)
		}
	}
	return exitOK
}

// modeLine says which mode a policy file puts the filter in: its own, or
// ENFORCE's.
func modeLine(file, env policy.Mode) string {
	m, from := file, "the file's mode"
	if m == "" {
		m, from = env, envEnforce
	}
	line := m.String() + " (" + from + ")"
	if m == policy.Audit {
		line += ": NOTHING IS BLOCKED; what would be is reported as would-block"
	}
	return line
}

// cmdHealth reports whether the ruleset is installed in this namespace:
// the container health check. It does not look at the policy file, since a
// filter whose last edit was refused still enforces the previous policy.
func cmdHealth(stdout, stderr io.Writer) int {
	conn, err := nftrules.Open(nftrules.ConnConfig{})
	if err != nil {
		printErr(stderr, err)
		return exitFailure
	}
	defer conn.Close()
	if err := conn.Installed(); err != nil {
		printErr(stderr, err)
		return exitFailure
	}
	byCgroup, egress, err := conn.Guards()
	if err != nil {
		printErr(stderr, err)
		return exitFailure
	}
	devs, err := devices()
	if err != nil {
		printErr(stderr, err)
		return exitFailure
	}
	var unguarded []string
	for _, d := range devs {
		if !slices.Contains(egress, d) {
			unguarded = append(unguarded, d)
		}
	}
	auditing, err := conn.Auditing()
	if err != nil {
		printErr(stderr, err)
		return exitFailure
	}
	fmt.Fprintln(stdout, "ok: ruleset installed")
	if auditing {
		fmt.Fprintln(stdout, "mode: AUDIT: NOTHING IS BLOCKED; what the policy refuses is let through and reported as would-block")
	} else {
		fmt.Fprintln(stdout, "mode: enforce")
	}
	own := "mark and cgroup"
	if !byCgroup {
		own = "mark only (no cgroup: a workload that guesses the mark gets out)"
	}
	fmt.Fprintf(stdout, "own sockets: %s\n", own)
	fmt.Fprintf(stdout, "egress guard: %s\n", orNone(egress))
	if hasAFXDP() {
		fmt.Fprintf(stdout, "AF_XDP: %s\n", afXDPWarning)
	}
	if len(unguarded) > 0 {
		fmt.Fprintf(stdout, "unguarded devices: %s (frames from packet sockets leave through them)\n", strings.Join(unguarded, ", "))
		return exitFailure
	}
	return exitOK
}

// orNone joins names, or says "none".
func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func cmdCheck(cfg config, targets []string, stdout, stderr io.Writer) int {
	snap, err := loadSnapshot(cfg)
	if err != nil {
		printErr(stderr, defaultPolicyHint(cfg, err, "set it to your policy file, as in "+envPolicyPath+"=./policy.yaml g0efilter check HOST"))
		return exitFailure
	}
	if snap.Audit() {
		fmt.Fprintln(stderr, "g0efilter: note: the policy is in audit mode: what is blocked here is let through, and reported as would-block")
	}
	code := exitOK
	for _, t := range targets {
		tg, err := checkTarget(t)
		if err != nil {
			printErr(stderr, err)
			code = exitUsage
			continue
		}
		// A name that normalising changed beyond case and a trailing dot
		// (a U-label) is shown as it was matched.
		shown := t
		if tg.name != "" && tg.name != strings.ToLower(strings.TrimSuffix(tg.host, ".")) {
			shown = t + " (" + tg.name + ")"
		}
		verdict, allowed := checkOne(cfg, snap, tg)
		fmt.Fprintf(stdout, "%s: %s\n", shown, verdict)
		if !allowed && code == exitOK {
			code = exitFailure
		}
	}
	return code
}

// checkOne decides a target of check as the filter would, and says which
// entry decided.
func checkOne(cfg config, snap *policy.Snapshot, tg checked) (verdict string, allowed bool) {
	if tg.addr.IsValid() {
		if deny, denied := snap.DenyAddr(tg.addr); denied {
			return "blocked, denied by " + deny.String(), false
		}
		if pfx, ok := snap.MatchAddr(tg.addr); ok {
			return "allowed by " + pfx.String(), true
		}
		if tg.port != 0 {
			if rule, ok := snap.MatchAddrPort(tg.addr, tg.proto, tg.port); ok {
				return "allowed by " + rule, true
			}
		}
		return "blocked (no rule matches)", false
	}
	if deny, denied := snap.DenyHost(tg.name); denied {
		return "blocked, denied by " + deny, false
	}
	rule, ok := snap.MatchHost(tg.name)
	dns := cfg.Mode == nftrules.ModeDNS
	web := tg.proto == policy.TCP && slices.Contains(slices.Concat([]uint16{80, 443}, cfg.HTTPPorts, cfg.TLSPorts), tg.port)
	if ok && (tg.port == 0 || dns || web) {
		return "allowed by " + rule, true
	}
	if tg.port != 0 {
		if r, ok := snap.MatchHostPort(tg.name, tg.proto, tg.port); ok {
			how := "at the addresses the filter's resolver answers for it"
			if !dns && !strings.Contains(r, "/") {
				how = "decided by the name the client sends (TLS server name or HTTP Host)"
			}
			return "allowed by " + r + ", " + how, true
		}
	}
	if ok {
		return "blocked: " + rule + " allows ports 80 and 443 only (and " + envTLSPorts + ", " + envHTTPPorts + ")", false
	}
	if rules := snap.MatchNamePorts(tg.name); len(rules) > 0 {
		names := make([]string, len(rules))
		for i, r := range rules {
			names[i] = r.String()
		}
		return "blocked without a port; allowed on the ports of " + strings.Join(names, ", "), false
	}
	return "blocked (no rule matches)", false
}

// checked is what check is asked about: a host name or an address, and a
// protocol and port or neither.
type checked struct {
	host  string // as given, without protocol and port
	name  string // normalised, when host is a name
	addr  netip.Addr
	proto policy.Proto // TCP when a port is given without a protocol
	port  uint16
}

// checkTarget reads a target of check: an IP address or a host name, with
// ":PORT" after it ("[v6]:PORT" for an IPv6 address) and "tcp/" or "udp/"
// before it when a port is given (TCP when neither). It returns a name
// normalised as the policy's names are (lower case, no trailing dot, a
// U-label in punycode). A URL or a pattern is refused with what to give
// instead.
func checkTarget(t string) (tg checked, err error) {
	if u, err := url.Parse(t); err == nil && u.Scheme != "" && u.Host != "" {
		return checked{}, fmt.Errorf("%q is a URL: give its host alone, as in g0efilter check %s", t, u.Hostname())
	}
	rest := t
	if p, after, ok := strings.Cut(t, "/"); ok && (strings.EqualFold(p, "tcp") || strings.EqualFold(p, "udp")) {
		tg.proto, rest = policy.TCP, after
		if strings.EqualFold(p, "udp") {
			tg.proto = policy.UDP
		}
	}
	tg.host = rest
	if host, port, err := net.SplitHostPort(rest); err == nil && host != "" {
		n, err := parsePort(port)
		if err != nil {
			return checked{}, fmt.Errorf("%q: port %q is not a number from 1 to 65535", t, port)
		}
		tg.host, tg.port = host, n
		if tg.proto == policy.AnyProto {
			tg.proto = policy.TCP
		}
	}
	if tg.proto != policy.AnyProto && tg.port == 0 {
		return checked{}, fmt.Errorf("%q has a protocol but no port: give one, as in g0efilter check %s:53", t, t)
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(tg.host, "["), "]")); err == nil {
		tg.addr = a
		return tg, nil
	}
	if strings.Contains(tg.host, "*") {
		return checked{}, fmt.Errorf("%q is a pattern: give a host name that it should match", t)
	}
	if tg.name, err = policy.NormalizeDomain(tg.host); err != nil {
		return checked{}, fmt.Errorf("%q is not a host name or an IP address: %s",
			t, strings.TrimPrefix(err.Error(), policy.ErrDomain.Error()+": "))
	}
	return tg, nil
}

// newLogger returns a text logger on w at level, which names the TRACE level.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level:       level,
		ReplaceAttr: events.ReplaceLevelNames,
	}))
}

// diff counts the entries (prefixes, domains) of next that are not in prev
// (added) and those of prev not in next (removed).
func diff[T comparable](prev, next []T) (added, removed int) {
	old := make(map[T]struct{}, len(prev))
	for _, p := range prev {
		old[p] = struct{}{}
	}
	for _, p := range next {
		if _, ok := old[p]; ok {
			delete(old, p)
		} else {
			added++
		}
	}
	return added, len(old)
}
