package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/g0lab/g0efilter/dnsfilter"
	"github.com/g0lab/g0efilter/internal/envconf"
	"github.com/g0lab/g0efilter/nftrules"
	"github.com/g0lab/g0efilter/policy"
	"github.com/g0lab/g0efilter/sni"
)

// Environment variables read by g0efilter (see the "Environment — g0efilter"
// table of the reference).
const (
	envLogLevel                  = "LOG_LEVEL"
	envHostname                  = "HOSTNAME"
	envHTTPPort                  = "HTTP_PORT"
	envHTTPSPort                 = "HTTPS_PORT"
	envPolicyPath                = "POLICY_PATH"
	envAllowlistIPs              = "ALLOWLIST_IPS"
	envAllowlistDomains          = "ALLOWLIST_DOMAINS"
	envDenylistIPs               = "DENYLIST_IPS"
	envDenylistDomains           = "DENYLIST_DOMAINS"
	envFilterMode                = "FILTER_MODE"
	envEnforce                   = "ENFORCE"
	envDNSPort                   = "DNS_PORT"
	envDNSUpstreams              = "DNS_UPSTREAMS"
	envDashboardHost             = "DASHBOARD_HOST"
	envDashboardAPIKey           = "DASHBOARD_API_KEY"
	envDashboardQueueSize        = "DASHBOARD_QUEUE_SIZE"
	envDashboardStartDelay       = "DASHBOARD_START_DELAY"
	envLogFile                   = "LOG_FILE"
	envObservedFile              = "OBSERVED_FILE"
	envNflogBufSize              = "NFLOG_BUFSIZE"
	envNflogQThresh              = "NFLOG_QTHRESH"
	envNotificationHost          = "NOTIFICATION_HOST"
	envNotificationKey           = "NOTIFICATION_KEY"
	envNotificationBackoff       = "NOTIFICATION_BACKOFF_SECONDS"
	envNotificationIgnoreDomains = "NOTIFICATION_IGNORE_DOMAINS"
	envEnableRemoteUnblock       = "ENABLE_REMOTE_UNBLOCK"
	envUnblockPollInterval       = "UNBLOCK_POLL_INTERVAL"

	// Ours: the proxies' options.
	envDestinationCheck = "DESTINATION_CHECK"
	envHelloTimeout     = "PROXY_HELLO_TIMEOUT"
	envDialTimeout      = "PROXY_DIAL_TIMEOUT"
	envIdleTimeout      = "PROXY_IDLE_TIMEOUT"

	// Ours: dns mode's pinning of answered addresses.
	envDNSPinning   = "DNS_PINNING"
	envDNSPinMinTTL = "DNS_PIN_MIN_TTL"
	envDNSPinGrace  = "DNS_PIN_GRACE"

	// Ours: the filtering resolver's bounds against tunnels.
	envDNSRateLimit         = "DNS_RATE_LIMIT"
	envDNSWildcardMaxLabels = "DNS_WILDCARD_MAX_LABELS"
	envDNSWildcardMaxBytes  = "DNS_WILDCARD_MAX_BYTES"
	envDNSTXTMaxBytes       = "DNS_TXT_MAX_BYTES"
	envDNSCacheSize         = "DNS_CACHE_SIZE"
	envDNSCacheMaxTTL       = "DNS_CACHE_MAX_TTL"

	// Ours: Prometheus metrics.
	envMetricsAddr = "METRICS_ADDR"

	// Ours: https mode filters DNS too.
	envFilterDNS = "FILTER_DNS"

	// Ours: the guards against a hostile workload.
	envDNSLocalNames      = "DNS_LOCAL_NAMES"
	envGuardPorts         = "GUARD_PORTS"
	envTLSPorts           = "TLS_PORTS"
	envHTTPPorts          = "HTTP_PORTS"
	envRequireGuarantees  = "REQUIRE_GUARANTEES"
	envAllowHostNamespace = "ALLOW_HOST_NAMESPACE"
)

// Guarantees that REQUIRE_GUARANTEES may ask for.
const (
	guaranteeCgroup = "cgroup"    // the filter's own sockets are told apart by cgroup, not by a mark alone
	guaranteeEgress = "egress"    // frames from packet sockets are dropped at every device's egress hook
	guaranteeNoXDP  = "no_af_xdp" // the kernel has no AF_XDP sockets, which send frames past the egress hook (reported only)
)

// Defaults, as documented in the reference.
const (
	defaultPolicyPath          = "/app/policy.yaml"
	defaultDNSUpstream         = "127.0.0.11:53" // Docker's embedded DNS
	defaultDashboardQueueSize  = 1024
	defaultDashboardStartDelay = 5 * time.Second
	defaultNflogBufSize        = 96
	defaultNflogQThresh        = 50
	defaultNotificationBackoff = 60 * time.Second
	defaultUnblockPollInterval = 10 * time.Second
	defaultDNSPinMinTTL        = time.Minute
	defaultDNSCacheSize        = 10000
	defaultDNSCacheMaxTTL      = time.Hour
	defaultDNSPinGrace         = 10 * time.Second
)

// config is everything g0efilter reads from its environment, validated.
type config struct {
	// LogLevel is the slog level; INFO by default.
	LogLevel slog.Level
	// Hostname identifies this filter in shipped events. Empty means the OS
	// host name.
	Hostname string

	// Mode is the filter mode; https by default.
	Mode nftrules.Mode
	// Enforce is the policy's mode when the policy file states none:
	// policy.Enforce by default, policy.Audit to let everything through
	// and report what would be refused.
	Enforce policy.Mode
	// HTTPPort, HTTPSPort and DNSPort are the local listening ports; 8080,
	// 8443 and 53 by default.
	HTTPPort, HTTPSPort, DNSPort uint16
	// DNSUpstreams are the resolvers the DNS server forwards allowlisted
	// names to and the proxies check names with: DNS_UPSTREAMS, or when it
	// is unset, what [chooseUpstreams] finds in /etc/resolv.conf
	// (127.0.0.11:53 when it finds nothing better).
	DNSUpstreams []netip.AddrPort
	// DNSLocalUpstreams answer local names (DNSLocalNames); nil means
	// DNSUpstreams. Set by [config.useResolvConf] only.
	DNSLocalUpstreams []netip.AddrPort
	// DNSUpstreamsSet is true when DNS_UPSTREAMS was set: then it alone
	// decides.
	DNSUpstreamsSet bool
	// DNSUpstreamsFrom says where the upstreams came from, and
	// DNSUpstreamsWarn a limit of that choice ("" if none), for the
	// start-up log.
	DNSUpstreamsFrom, DNSUpstreamsWarn string

	// DestinationCheck ties an allowed name to the address a proxied
	// connection goes to; verify by default.
	DestinationCheck sni.DestinationCheck
	// HelloTimeout, DialTimeout and IdleTimeout bound proxied connections;
	// the sni.Proxy defaults (10s, 10s, 10m) by default.
	HelloTimeout, DialTimeout, IdleTimeout time.Duration

	// DNSPinning lets dns mode's connections through only to allowlisted
	// and pinned addresses (those from allowed answers); on by default.
	// Off, dns mode filters DNS only.
	DNSPinning bool
	// DNSPinMinTTL and DNSPinGrace set how long a pinned address stays:
	// its record's TTL, at least DNSPinMinTTL (60s by default), plus
	// DNSPinGrace (10s by default).
	DNSPinMinTTL, DNSPinGrace time.Duration
	// DNSLimits bound what a workload can carry through allowed names
	// (dnsfilter.DefaultLimits unless DNS_RATE_LIMIT, DNS_WILDCARD_MAX_*
	// or DNS_TXT_MAX_BYTES say otherwise; 0 lifts a bound).
	DNSLimits dnsfilter.Limits
	// DNSCacheSize is how many answers the filtering resolver keeps (0:
	// none), each at most DNSCacheMaxTTL.
	DNSCacheSize   int
	DNSCacheMaxTTL time.Duration

	// MetricsAddr is where Prometheus metrics are served ("host:port" or
	// ":port"); empty means nowhere.
	MetricsAddr string

	// FilterDNS, in https mode, also sends the workload's DNS through the
	// filtering DNS server; on by default, so that DNS is no way out.
	FilterDNS bool
	// DNSLocalNames lets the filtering DNS server forward single-label
	// names (Compose service and container names) that the policy does not
	// allow, unpinned; on by default.
	DNSLocalNames bool
	// TLSPorts and HTTPPorts are TCP ports, besides 443 and 80, that https
	// mode sends through the TLS and HTTP proxies: every allowed name is
	// allowed on them, decided by SNI or Host as on 443 and 80.
	TLSPorts, HTTPPorts []uint16
	// GuardPorts are local ports that only the filter may reach, besides
	// the proxies', the DNS server's, the metrics port and a dashboard's
	// port on a loopback DASHBOARD_HOST.
	GuardPorts []uint16
	// RequireGuarantees are the guarantees (guaranteeCgroup,
	// guaranteeEgress) without which the filter refuses to start; by
	// default it runs with what the kernel gives and says what is missing.
	RequireGuarantees []string
	// AllowHostNamespace lets run install its rules in the machine's own
	// network namespace; off by default.
	AllowHostNamespace bool
	// BypassMark is the mark of the filter's own sockets, chosen at random
	// by run; zero (dry-run, check) means nftrules' default.
	BypassMark uint32

	// PolicyPath is the policy file; /app/policy.yaml by default.
	PolicyPath string
	// PolicyPathDefault is true when PolicyPath is the default, POLICY_PATH
	// being unset.
	PolicyPathDefault bool
	// AllowIPs and AllowDomains, when not nil, replace the file's lists.
	AllowIPs, AllowDomains *policy.List
	// DenyIPs and DenyDomains, when not nil, replace the file's denylist.
	DenyIPs, DenyDomains *policy.List

	// DashboardHost is the dashboard's base URL; nil means no shipping.
	DashboardHost *url.URL
	// DashboardAPIKey is presented to the dashboard.
	DashboardAPIKey string
	// DashboardQueueSize is how many events are buffered before dropping;
	// 1024 by default.
	DashboardQueueSize int
	// DashboardStartDelay delays shipping; 5s by default.
	DashboardStartDelay time.Duration

	// LogFile is an optional persistent log file; empty means none.
	LogFile string
	// ObservedFile keeps the filter's record of what the workload did,
	// for g0efilter suggest; empty means none.
	ObservedFile string
	// NflogBufSize and NflogQThresh tune the nflog subscription; 96 and 50
	// by default.
	NflogBufSize, NflogQThresh int

	// NotificationHost is the Gotify server URL; nil means no notifications.
	NotificationHost *url.URL
	// NotificationKey is the Gotify application token.
	NotificationKey string
	// NotificationBackoff suppresses repeat alerts for a target; 60s by
	// default.
	NotificationBackoff time.Duration
	// NotificationIgnoreDomains are canonical domain patterns never alerted
	// on.
	NotificationIgnoreDomains []string

	// EnableRemoteUnblock turns on polling the dashboard for unblocks; off
	// by default.
	EnableRemoteUnblock bool
	// UnblockPollInterval is the poll period; 10s by default.
	UnblockPollInterval time.Duration
}

// envError is an invalid environment variable.
type envError = envconf.Error

// loadConfig reads and validates the environment through lookup (os.LookupEnv
// in main). Every invalid variable is reported, joined with errors.Join, each
// naming the variable and its value.
func loadConfig(lookup func(string) (string, bool)) (config, error) {
	p := envParser{envconf.Parser{Lookup: lookup}}
	c := config{
		LogLevel:                  p.Level(envLogLevel),
		Hostname:                  p.String(envHostname),
		Mode:                      p.mode(envFilterMode),
		Enforce:                   p.enforce(envEnforce),
		HTTPPort:                  p.port(envHTTPPort, nftrules.DefaultHTTPPort),
		HTTPSPort:                 p.port(envHTTPSPort, nftrules.DefaultHTTPSPort),
		DNSPort:                   p.port(envDNSPort, nftrules.DefaultDNSPort),
		DNSUpstreams:              p.upstreams(envDNSUpstreams),
		DNSUpstreamsSet:           p.isSet(envDNSUpstreams),
		PolicyPath:                p.String(envPolicyPath),
		AllowIPs:                  p.ipList(envAllowlistIPs),
		AllowDomains:              p.domainList(envAllowlistDomains),
		DenyIPs:                   p.ipList(envDenylistIPs),
		DenyDomains:               p.domainList(envDenylistDomains),
		DashboardHost:             p.url(envDashboardHost),
		DashboardAPIKey:           p.String(envDashboardAPIKey),
		DashboardQueueSize:        p.Positive(envDashboardQueueSize, defaultDashboardQueueSize),
		DashboardStartDelay:       p.duration(envDashboardStartDelay, defaultDashboardStartDelay, true),
		LogFile:                   p.String(envLogFile),
		ObservedFile:              p.String(envObservedFile),
		NflogBufSize:              p.Positive(envNflogBufSize, defaultNflogBufSize),
		NflogQThresh:              p.Positive(envNflogQThresh, defaultNflogQThresh),
		NotificationHost:          p.url(envNotificationHost),
		NotificationKey:           p.String(envNotificationKey),
		NotificationBackoff:       p.seconds(envNotificationBackoff, defaultNotificationBackoff),
		NotificationIgnoreDomains: p.domains(envNotificationIgnoreDomains),
		EnableRemoteUnblock:       p.Bool(envEnableRemoteUnblock, false),
		UnblockPollInterval:       p.duration(envUnblockPollInterval, defaultUnblockPollInterval, false),
		DestinationCheck:          p.destinationCheck(envDestinationCheck),
		HelloTimeout:              p.duration(envHelloTimeout, sni.DefaultHelloTimeout, false),
		DialTimeout:               p.duration(envDialTimeout, sni.DefaultDialTimeout, false),
		IdleTimeout:               p.duration(envIdleTimeout, sni.DefaultIdleTimeout, false),
		DNSPinning:                p.Bool(envDNSPinning, true),
		DNSPinMinTTL:              p.duration(envDNSPinMinTTL, defaultDNSPinMinTTL, false),
		DNSPinGrace:               p.duration(envDNSPinGrace, defaultDNSPinGrace, true),
		DNSCacheSize:              p.count(envDNSCacheSize, defaultDNSCacheSize),
		DNSCacheMaxTTL:            p.duration(envDNSCacheMaxTTL, defaultDNSCacheMaxTTL, false),
		DNSLimits: dnsfilter.Limits{
			Rate:           float64(p.count(envDNSRateLimit, int(dnsfilter.DefaultLimits.Rate))),
			WildcardLabels: p.count(envDNSWildcardMaxLabels, dnsfilter.DefaultLimits.WildcardLabels),
			WildcardBytes:  p.count(envDNSWildcardMaxBytes, dnsfilter.DefaultLimits.WildcardBytes),
			TXTBytes:       p.count(envDNSTXTMaxBytes, dnsfilter.DefaultLimits.TXTBytes),
			RefuseNULL:     dnsfilter.DefaultLimits.RefuseNULL,
		},
		MetricsAddr:        p.listenAddr(envMetricsAddr),
		FilterDNS:          p.Bool(envFilterDNS, true),
		DNSLocalNames:      p.Bool(envDNSLocalNames, true),
		GuardPorts:         p.ports(envGuardPorts),
		TLSPorts:           p.ports(envTLSPorts),
		HTTPPorts:          p.ports(envHTTPPorts),
		RequireGuarantees:  p.guarantees(envRequireGuarantees),
		AllowHostNamespace: p.Bool(envAllowHostNamespace, false),
	}
	if c.PolicyPath == "" {
		c.PolicyPath, c.PolicyPathDefault = defaultPolicyPath, true
	}

	// The proxy ports coexist in https mode only; in dns mode the DNS server
	// listens alone, so DNS_PORT is not compared with them.
	if c.Mode == nftrules.ModeHTTPS && c.HTTPPort != 0 && c.HTTPPort == c.HTTPSPort {
		v, _ := lookup(envHTTPSPort)
		p.Fail(envHTTPSPort, v, fmt.Errorf("same port as %s", envHTTPPort))
	}
	if c.MetricsAddr != "" {
		_, port, _ := net.SplitHostPort(c.MetricsAddr)
		taken := map[string]string{}
		if c.Mode == nftrules.ModeHTTPS {
			taken[strconv.Itoa(int(c.HTTPPort))] = envHTTPPort
			taken[strconv.Itoa(int(c.HTTPSPort))] = envHTTPSPort
		}
		if c.Mode == nftrules.ModeDNS || c.FilterDNS {
			taken[strconv.Itoa(int(c.DNSPort))] = envDNSPort
		}
		if name, ok := taken[port]; ok {
			p.Fail(envMetricsAddr, c.MetricsAddr, fmt.Errorf("same port as %s: metrics never share a proxy's or the DNS server's port", name))
		}
	}
	if c.Mode == nftrules.ModeHTTPS && c.FilterDNS && (c.DNSPort == c.HTTPPort || c.DNSPort == c.HTTPSPort) {
		v, _ := lookup(envDNSPort)
		p.Fail(envDNSPort, v, fmt.Errorf("same port as a proxy (%s with %s)", envFilterDNS, envFilterMode+"=https"))
	}
	web := map[uint16]string{80: "80 (always the HTTP proxy's)", 443: "443 (always the TLS proxy's)"}
	for _, l := range []struct {
		name  string
		ports []uint16
	}{{envHTTPPorts, c.HTTPPorts}, {envTLSPorts, c.TLSPorts}} {
		for _, port := range l.ports {
			if other, ok := web[port]; ok {
				p.Fail(l.name, strconv.Itoa(int(port)), fmt.Errorf("already in %s", other))
				continue
			}
			web[port] = l.name
		}
	}
	if c.EnableRemoteUnblock && (c.DashboardHost == nil || c.DashboardAPIKey == "") {
		v, _ := lookup(envEnableRemoteUnblock)
		p.Fail(envEnableRemoteUnblock, v, fmt.Errorf("needs %s and %s", envDashboardHost, envDashboardAPIKey))
	}
	if c.NotificationHost != nil && c.NotificationKey == "" {
		v, _ := lookup(envNotificationHost)
		p.Fail(envNotificationHost, v, fmt.Errorf("needs %s", envNotificationKey))
	}
	if err := p.Err(); err != nil {
		return config{}, err
	}
	return c, nil
}

// envParser reads the variables; its methods beyond envconf.Parser's are
// this command's own kinds of value.
type envParser struct {
	envconf.Parser
}

func (p *envParser) mode(name string) nftrules.Mode {
	v, ok := p.Get(name)
	if !ok {
		return nftrules.ModeHTTPS
	}
	switch strings.ToLower(v) {
	case "https":
		return nftrules.ModeHTTPS
	case "dns":
		return nftrules.ModeDNS
	}
	p.Fail(name, v, errors.New("want https or dns"))
	return nftrules.ModeHTTPS
}

// enforce parses ENFORCE: enforce (the default) or audit.
func (p *envParser) enforce(name string) policy.Mode {
	v, ok := p.Get(name)
	if !ok {
		return policy.Enforce
	}
	m, err := policy.ParseMode(v)
	if err != nil || m == "" {
		p.Fail(name, v, errors.New("want enforce or audit"))
		return policy.Enforce
	}
	return m
}

func parsePort(v string) (uint16, error) {
	n, err := strconv.ParseUint(v, 10, 16)
	if err != nil || n == 0 {
		return 0, errors.New("want a port number from 1 to 65535")
	}
	return uint16(n), nil
}

func (p *envParser) port(name string, def uint16) uint16 {
	v, ok := p.Get(name)
	if !ok {
		return def
	}
	n, err := parsePort(v)
	if err != nil {
		p.Fail(name, v, err)
		return def
	}
	return n
}

func (p *envParser) duration(name string, def time.Duration, zeroOK bool) time.Duration {
	v, ok := p.Get(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		p.Fail(name, v, errors.New("want a duration such as 5s or 1m"))
	case d < 0 || (d == 0 && !zeroOK):
		p.Fail(name, v, errors.New("want a positive duration"))
	default:
		return d
	}
	return def
}

// count reads a whole number, 0 or more.
func (p *envParser) count(name string, def int) int {
	v, ok := p.Get(name)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 {
		p.Fail(name, v, errors.New("want a whole number, 0 or more (0: no bound)"))
		return def
	}
	return int(n)
}

func (p *envParser) seconds(name string, def time.Duration) time.Duration {
	v, ok := p.Get(name)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 {
		p.Fail(name, v, errors.New("want a whole number of seconds, 0 or more"))
		return def
	}
	return time.Duration(n) * time.Second
}

func (p *envParser) url(name string) *url.URL {
	v, ok := p.Get(name)
	if !ok {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.Fail(name, v, errors.New("want an http:// or https:// URL with a host"))
		return nil
	}
	return u
}

// ipList and domainList treat a variable that is set but empty as unset:
// Compose .env files often carry "ALLOWLIST_IPS=" as a placeholder, and that
// must not replace the policy file's list with an empty one. The lists are
// validated here, so that a mistake is a configuration error (exit 2); the
// policy Loader parses them again when it loads.
func (p *envParser) ipList(name string) *policy.List {
	v, ok := p.Get(name)
	if !ok {
		return nil
	}
	if _, err := policy.ParseIPList(name, v); err != nil {
		p.Fail(name, v, err)
		return nil
	}
	return &policy.List{Name: name, Value: v}
}

func (p *envParser) domainList(name string) *policy.List {
	v, ok := p.Get(name)
	if !ok {
		return nil
	}
	if _, err := policy.ParseDomainList(name, v); err != nil {
		p.Fail(name, v, err)
		return nil
	}
	return &policy.List{Name: name, Value: v}
}

// domains parses a comma-separated list of domain patterns into canonical
// form, reporting each bad item.
func (p *envParser) domains(name string) []string {
	v, ok := p.Get(name)
	if !ok {
		return nil
	}
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		d, err := policy.NormalizeDomain(item)
		if err != nil {
			p.Fail(name, item, err)
			continue
		}
		out = append(out, d)
	}
	return out
}

// upstreams parses a comma-separated list of resolvers, "host:port" or a bare
// IP address, which gets port 53.
func (p *envParser) upstreams(name string) []netip.AddrPort {
	def := []netip.AddrPort{netip.MustParseAddrPort(defaultDNSUpstream)}
	v, ok := p.Get(name)
	if !ok {
		return def
	}
	var out []netip.AddrPort
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		u, err := parseUpstream(item)
		if err != nil {
			p.Fail(name, item, err)
			continue
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return def
	}
	return out
}

// isSet reports whether the variable name has a non-empty value.
func (p *envParser) isSet(name string) bool {
	_, ok := p.Get(name)
	return ok
}

// useResolvConf fills in the upstreams from the container's resolv.conf
// (its text) when DNS_UPSTREAMS is not set; see [chooseUpstreams].
func (c *config) useResolvConf(text string) {
	if c.DNSUpstreamsSet {
		c.DNSUpstreamsFrom = envDNSUpstreams
		return
	}
	ch := chooseUpstreams(text)
	c.DNSUpstreams, c.DNSLocalUpstreams = ch.servers, ch.local
	c.DNSUpstreamsFrom, c.DNSUpstreamsWarn = ch.from, ch.warn
}

// listenAddr parses an address to listen on: "host:port" or ":port".
func (p *envParser) listenAddr(name string) string {
	v, ok := p.Get(name)
	if !ok {
		return ""
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		p.Fail(name, v, errors.New("want host:port or :port"))
		return ""
	}
	if n, err := parsePort(port); err != nil || n == 0 {
		p.Fail(name, v, errors.New("want a port from 1 to 65535"))
		return ""
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			p.Fail(name, v, errors.New("want an IP address to listen on, or none for all"))
			return ""
		}
	}
	return v
}

// destinationCheck parses DESTINATION_CHECK: verify, dial-name or trust.
func (p *envParser) destinationCheck(name string) sni.DestinationCheck {
	v, ok := p.Get(name)
	if !ok {
		return sni.VerifyDestination
	}
	for _, d := range []sni.DestinationCheck{sni.VerifyDestination, sni.DialName, sni.TrustDestination} {
		if strings.EqualFold(v, d.String()) {
			return d
		}
	}
	p.Fail(name, v, errors.New("want verify, dial-name or trust"))
	return sni.VerifyDestination
}

// ports parses a comma-separated list of port numbers.
func (p *envParser) ports(name string) []uint16 {
	v, ok := p.Get(name)
	if !ok {
		return nil
	}
	var out []uint16
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		n, err := parsePort(item)
		if err != nil {
			p.Fail(name, item, err)
			continue
		}
		out = append(out, n)
	}
	return out
}

// guarantees parses REQUIRE_GUARANTEES: a comma-separated list of cgroup
// and egress. Unset means cgroup: the mark alone could be guessed, so the
// filter does not settle for it unless told to (set, but empty).
func (p *envParser) guarantees(name string) []string {
	if _, set := p.Lookup(name); !set {
		return []string{guaranteeCgroup}
	}
	v, ok := p.Get(name)
	if !ok {
		return nil
	}
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		switch item = strings.ToLower(strings.TrimSpace(item)); item {
		case "":
		case guaranteeCgroup, guaranteeEgress:
			out = append(out, item)
		default:
			p.Fail(name, item, errors.New("want cgroup or egress"))
		}
	}
	return out
}

// bypassMark is the mark of the filter's own sockets.
func (c config) bypassMark() uint32 {
	if c.BypassMark == 0 {
		return nftrules.DefaultBypassMark
	}
	return c.BypassMark
}

// parseUpstream parses a resolver's address: an IP address, with port 53
// unless one is given. A host name is refused: finding the resolver would
// take a resolver.
func parseUpstream(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		if a.Zone() != "" {
			return netip.AddrPort{}, errors.New("zones are not supported")
		}
		return netip.AddrPortFrom(a, nftrules.DefaultDNSPort), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, errors.New("want an IP address, with :port if not 53")
	}
	n, err := parsePort(port)
	if err != nil {
		return netip.AddrPort{}, err
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, errors.New("want an IP address, not a host name (finding the resolver would take a resolver)")
	}
	if a.Zone() != "" {
		return netip.AddrPort{}, errors.New("zones are not supported")
	}
	return netip.AddrPortFrom(a, n), nil
}
