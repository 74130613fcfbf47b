package main

import (
	"errors"
	"log/slog"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/dnsfilter"
	"github.com/g0lab/g0efilter/nftrules"
	"github.com/g0lab/g0efilter/policy"
	"github.com/g0lab/g0efilter/sni"
)

// env returns a lookup function over m.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := loadConfig(env(nil))
	require.NoError(t, err)
	assert.Equal(t, config{
		LogLevel:            slog.LevelInfo,
		Mode:                nftrules.ModeHTTPS,
		Enforce:             policy.Enforce,
		HTTPPort:            8080,
		HTTPSPort:           8443,
		DNSPort:             53,
		DNSUpstreams:        []netip.AddrPort{netip.MustParseAddrPort("127.0.0.11:53")},
		DestinationCheck:    sni.VerifyDestination,
		HelloTimeout:        10 * time.Second,
		DialTimeout:         10 * time.Second,
		IdleTimeout:         10 * time.Minute,
		DNSPinning:          true,
		FilterDNS:           true,
		DNSLocalNames:       true,
		DNSPinMinTTL:        time.Minute,
		DNSPinGrace:         10 * time.Second,
		PolicyPath:          "/app/policy.yaml",
		PolicyPathDefault:   true,
		DashboardQueueSize:  1024,
		DashboardStartDelay: 5 * time.Second,
		NflogBufSize:        96,
		NflogQThresh:        50,
		NotificationBackoff: 60 * time.Second,
		UnblockPollInterval: 10 * time.Second,
		RequireGuarantees:   []string{"cgroup"},
		DNSLimits:           dnsfilter.DefaultLimits,
		DNSCacheSize:        10000,
		DNSCacheMaxTTL:      time.Hour,
	}, c)
}

func TestLoadConfigDNSLimits(t *testing.T) {
	c, err := loadConfig(env(map[string]string{"DNS_RATE_LIMIT": "0", "DNS_WILDCARD_MAX_LABELS": "3",
		"DNS_WILDCARD_MAX_BYTES": "40", "DNS_TXT_MAX_BYTES": "0"}))
	require.NoError(t, err)
	assert.Equal(t, dnsfilter.Limits{WildcardLabels: 3, WildcardBytes: 40, RefuseNULL: true}, c.DNSLimits)
	_, err = loadConfig(env(map[string]string{"DNS_RATE_LIMIT": "-1", "DNS_TXT_MAX_BYTES": "lots"}))
	assert.ErrorContains(t, err, "DNS_RATE_LIMIT")
	assert.ErrorContains(t, err, "DNS_TXT_MAX_BYTES")
}

// The cgroup guarantee is required unless REQUIRE_GUARANTEES says
// otherwise; set and empty, it requires nothing.
func TestLoadConfigRequireGuarantees(t *testing.T) {
	for v, want := range map[string][]string{
		"":               nil,
		" ":              nil,
		"egress":         {"egress"},
		"cgroup, EGRESS": {"cgroup", "egress"},
	} {
		c, err := loadConfig(env(map[string]string{"REQUIRE_GUARANTEES": v}))
		require.NoError(t, err, "%q", v)
		assert.Equal(t, want, c.RequireGuarantees, "%q", v)
	}
	_, err := loadConfig(env(map[string]string{"REQUIRE_GUARANTEES": "cgroups"}))
	assert.ErrorContains(t, err, "REQUIRE_GUARANTEES")
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

func TestLoadConfigValid(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c config)
	}{
		{"LOG_LEVEL trace", map[string]string{"LOG_LEVEL": "TRACE"}, func(t *testing.T, c config) { assert.Equal(t, slog.LevelDebug-4, c.LogLevel) }},
		{"LOG_LEVEL debug lower case", map[string]string{"LOG_LEVEL": "debug"}, func(t *testing.T, c config) { assert.Equal(t, slog.LevelDebug, c.LogLevel) }},
		{"LOG_LEVEL warn", map[string]string{"LOG_LEVEL": "WARN"}, func(t *testing.T, c config) { assert.Equal(t, slog.LevelWarn, c.LogLevel) }},
		{"LOG_LEVEL error", map[string]string{"LOG_LEVEL": "ERROR"}, func(t *testing.T, c config) { assert.Equal(t, slog.LevelError, c.LogLevel) }},
		{"HOSTNAME", map[string]string{"HOSTNAME": "box-1"}, func(t *testing.T, c config) { assert.Equal(t, "box-1", c.Hostname) }},
		{"HTTP_PORT", map[string]string{"HTTP_PORT": "1"}, func(t *testing.T, c config) { assert.Equal(t, uint16(1), c.HTTPPort) }},
		{"HTTPS_PORT", map[string]string{"HTTPS_PORT": "65535"}, func(t *testing.T, c config) { assert.Equal(t, uint16(65535), c.HTTPSPort) }},
		{"DNS_PORT", map[string]string{"DNS_PORT": "5353"}, func(t *testing.T, c config) { assert.Equal(t, uint16(5353), c.DNSPort) }},
		{"DNS_PORT may equal HTTP_PORT without FILTER_DNS", map[string]string{"DNS_PORT": "8080", "FILTER_DNS": "false"}, func(t *testing.T, c config) { assert.Equal(t, uint16(8080), c.DNSPort) }},
		{"proxy ports may be equal in dns mode", map[string]string{"FILTER_MODE": "dns", "HTTP_PORT": "9000", "HTTPS_PORT": "9000"}, func(t *testing.T, c config) { assert.Equal(t, nftrules.ModeDNS, c.Mode) }},
		{"POLICY_PATH", map[string]string{"POLICY_PATH": "/etc/p.yaml"}, func(t *testing.T, c config) {
			assert.Equal(t, "/etc/p.yaml", c.PolicyPath)
			assert.False(t, c.PolicyPathDefault)
		}},
		{"ALLOWLIST_IPS", map[string]string{"ALLOWLIST_IPS": "1.1.1.1, 2001:db8::/32"}, func(t *testing.T, c config) {
			assert.Equal(t, &policy.List{Name: "ALLOWLIST_IPS", Value: "1.1.1.1, 2001:db8::/32"}, c.AllowIPs)
		}},
		{"ALLOWLIST_IPS empty is unset", map[string]string{"ALLOWLIST_IPS": ""}, func(t *testing.T, c config) { assert.Nil(t, c.AllowIPs) }},
		{"ALLOWLIST_IPS blank is unset", map[string]string{"ALLOWLIST_IPS": "  "}, func(t *testing.T, c config) { assert.Nil(t, c.AllowIPs) }},
		{"ALLOWLIST_DOMAINS", map[string]string{"ALLOWLIST_DOMAINS": "github.com,*.example.org"}, func(t *testing.T, c config) {
			assert.Equal(t, &policy.List{Name: "ALLOWLIST_DOMAINS", Value: "github.com,*.example.org"}, c.AllowDomains)
		}},
		{"ALLOWLIST_DOMAINS empty is unset", map[string]string{"ALLOWLIST_DOMAINS": ""}, func(t *testing.T, c config) { assert.Nil(t, c.AllowDomains) }},
		{"FILTER_MODE dns", map[string]string{"FILTER_MODE": "dns"}, func(t *testing.T, c config) { assert.Equal(t, nftrules.ModeDNS, c.Mode) }},
		{"FILTER_MODE HTTPS", map[string]string{"FILTER_MODE": "HTTPS"}, func(t *testing.T, c config) { assert.Equal(t, nftrules.ModeHTTPS, c.Mode) }},
		{"ENFORCE unset", map[string]string{}, func(t *testing.T, c config) { assert.Equal(t, policy.Enforce, c.Enforce) }},
		{"ENFORCE audit", map[string]string{"ENFORCE": "Audit"}, func(t *testing.T, c config) { assert.Equal(t, policy.Audit, c.Enforce) }},
		{"DNS_UPSTREAMS", map[string]string{"DNS_UPSTREAMS": "1.1.1.1, 9.9.9.9:5353,::1,[2001:db8::1]:53"}, func(t *testing.T, c config) {
			var want []netip.AddrPort
			for _, s := range []string{"1.1.1.1:53", "9.9.9.9:5353", "[::1]:53", "[2001:db8::1]:53"} {
				want = append(want, netip.MustParseAddrPort(s))
			}
			assert.Equal(t, want, c.DNSUpstreams)
		}},
		{"DESTINATION_CHECK", map[string]string{"DESTINATION_CHECK": "Dial-Name"}, func(t *testing.T, c config) { assert.Equal(t, sni.DialName, c.DestinationCheck) }},
		{"DNS_PINNING off", map[string]string{"DNS_PINNING": "false"}, func(t *testing.T, c config) { assert.False(t, c.DNSPinning) }},
		{"DNS_PIN_MIN_TTL", map[string]string{"DNS_PIN_MIN_TTL": "5s", "DNS_PIN_GRACE": "0s"}, func(t *testing.T, c config) {
			assert.Equal(t, 5*time.Second, c.DNSPinMinTTL)
			assert.Zero(t, c.DNSPinGrace)
		}},
		{"METRICS_ADDR", map[string]string{"METRICS_ADDR": ":9464"}, func(t *testing.T, c config) { assert.Equal(t, ":9464", c.MetricsAddr) }},
		{"FILTER_DNS", map[string]string{"FILTER_DNS": "true"}, func(t *testing.T, c config) { assert.True(t, c.FilterDNS) }},
		{"PROXY_IDLE_TIMEOUT", map[string]string{"PROXY_IDLE_TIMEOUT": "30s"}, func(t *testing.T, c config) { assert.Equal(t, 30*time.Second, c.IdleTimeout) }},
		{"DASHBOARD_HOST", map[string]string{"DASHBOARD_HOST": "http://dashboard:8081"}, func(t *testing.T, c config) {
			assert.Equal(t, mustURL(t, "http://dashboard:8081"), c.DashboardHost)
		}},
		{"DASHBOARD_API_KEY", map[string]string{"DASHBOARD_API_KEY": "k"}, func(t *testing.T, c config) { assert.Equal(t, "k", c.DashboardAPIKey) }},
		{"DASHBOARD_QUEUE_SIZE", map[string]string{"DASHBOARD_QUEUE_SIZE": "10"}, func(t *testing.T, c config) { assert.Equal(t, 10, c.DashboardQueueSize) }},
		{"DASHBOARD_START_DELAY", map[string]string{"DASHBOARD_START_DELAY": "1m"}, func(t *testing.T, c config) { assert.Equal(t, time.Minute, c.DashboardStartDelay) }},
		{"DASHBOARD_START_DELAY zero", map[string]string{"DASHBOARD_START_DELAY": "0s"}, func(t *testing.T, c config) { assert.Zero(t, c.DashboardStartDelay) }},
		{"LOG_FILE", map[string]string{"LOG_FILE": "/var/log/g0e.log"}, func(t *testing.T, c config) { assert.Equal(t, "/var/log/g0e.log", c.LogFile) }},
		{"NFLOG_BUFSIZE", map[string]string{"NFLOG_BUFSIZE": "128"}, func(t *testing.T, c config) { assert.Equal(t, 128, c.NflogBufSize) }},
		{"NFLOG_QTHRESH", map[string]string{"NFLOG_QTHRESH": "1"}, func(t *testing.T, c config) { assert.Equal(t, 1, c.NflogQThresh) }},
		{"NOTIFICATION_HOST and KEY", map[string]string{"NOTIFICATION_HOST": "https://gotify.example", "NOTIFICATION_KEY": "tok"}, func(t *testing.T, c config) {
			assert.Equal(t, mustURL(t, "https://gotify.example"), c.NotificationHost)
			assert.Equal(t, "tok", c.NotificationKey)
		}},
		{"NOTIFICATION_BACKOFF_SECONDS", map[string]string{"NOTIFICATION_BACKOFF_SECONDS": "0"}, func(t *testing.T, c config) { assert.Zero(t, c.NotificationBackoff) }},
		{"NOTIFICATION_IGNORE_DOMAINS", map[string]string{"NOTIFICATION_IGNORE_DOMAINS": "Example.COM., *.ads.example,"}, func(t *testing.T, c config) {
			assert.Equal(t, []string{"example.com", "*.ads.example"}, c.NotificationIgnoreDomains)
		}},
		{"ENABLE_REMOTE_UNBLOCK", map[string]string{"ENABLE_REMOTE_UNBLOCK": "true", "DASHBOARD_HOST": "http://d:8081", "DASHBOARD_API_KEY": "k"}, func(t *testing.T, c config) { assert.True(t, c.EnableRemoteUnblock) }},
		{"ENABLE_REMOTE_UNBLOCK false", map[string]string{"ENABLE_REMOTE_UNBLOCK": "0"}, func(t *testing.T, c config) { assert.False(t, c.EnableRemoteUnblock) }},
		{"UNBLOCK_POLL_INTERVAL", map[string]string{"UNBLOCK_POLL_INTERVAL": "30s"}, func(t *testing.T, c config) { assert.Equal(t, 30*time.Second, c.UnblockPollInterval) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(env(tt.env))
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestLoadConfigInvalid(t *testing.T) {
	tests := []struct {
		name, value string
		extra       map[string]string
		reported    string // variable named in the error, when not name
	}{
		{name: "LOG_LEVEL", value: "verbose"},
		{name: "HTTP_PORT", value: "0"},
		{name: "HTTP_PORT", value: "65536"},
		{name: "HTTP_PORT", value: "http"},
		{name: "HTTPS_PORT", value: "-1"},
		{name: "HTTPS_PORT", value: "8080"}, // same as HTTP_PORT in https mode
		{name: "DNS_PORT", value: "99999"},
		{name: "ALLOWLIST_IPS", value: "1.1.1.1,300.0.0.1"},
		{name: "ALLOWLIST_IPS", value: "10.0.0.1/8"},
		{name: "ALLOWLIST_DOMAINS", value: "github.com,bad domain"},
		{name: "FILTER_MODE", value: "http"},
		{name: "ENFORCE", value: "learn"},
		{name: "DNS_UPSTREAMS", value: "1.1.1.1:0"},
		{name: "DNS_UPSTREAMS", value: "https://dns.example"},
		{name: "DNS_UPSTREAMS", value: "*.example:53"},
		{name: "DNS_UPSTREAMS", value: "dns.example:53"},
		{name: "DESTINATION_CHECK", value: "off"},
		{name: "DNS_PINNING", value: "maybe"},
		{name: "METRICS_ADDR", value: "9464"},
		{name: "METRICS_ADDR", value: "localhost:9464"},
		{name: "METRICS_ADDR", value: ":8443"},
		{name: "FILTER_DNS", value: "sometimes"},
		{name: "DNS_PIN_MIN_TTL", value: "0s"},
		{name: "PROXY_HELLO_TIMEOUT", value: "0s"},
		{name: "DASHBOARD_HOST", value: "dashboard:8081"},
		{name: "DASHBOARD_HOST", value: "ftp://dashboard"},
		{name: "DASHBOARD_QUEUE_SIZE", value: "0"},
		{name: "DASHBOARD_QUEUE_SIZE", value: "many"},
		{name: "DASHBOARD_START_DELAY", value: "5"},
		{name: "DASHBOARD_START_DELAY", value: "-1s"},
		{name: "NFLOG_BUFSIZE", value: "-5"},
		{name: "NFLOG_QTHRESH", value: "x"},
		{name: "NOTIFICATION_HOST", value: "not a url"},
		{name: "NOTIFICATION_HOST", value: "https://gotify.example", reported: "NOTIFICATION_HOST"}, // no key
		{name: "NOTIFICATION_BACKOFF_SECONDS", value: "1m"},
		{name: "NOTIFICATION_BACKOFF_SECONDS", value: "-1"},
		{name: "NOTIFICATION_IGNORE_DOMAINS", value: "ok.example,http://bad.example/"},
		{name: "ENABLE_REMOTE_UNBLOCK", value: "yes please"},
		{name: "ENABLE_REMOTE_UNBLOCK", value: "true"}, // no DASHBOARD_HOST
		{name: "UNBLOCK_POLL_INTERVAL", value: "0s"},
		{name: "UNBLOCK_POLL_INTERVAL", value: "soon"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			m := map[string]string{tt.name: tt.value}
			if tt.name == "NOTIFICATION_HOST" && tt.reported == "" {
				m["NOTIFICATION_KEY"] = "tok"
			}
			_, err := loadConfig(env(m))
			require.Error(t, err)
			var ee *envError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, tt.name, ee.Name)
			assert.Contains(t, err.Error(), tt.name+"=")
		})
	}
}

func TestLoadConfigReportsEveryBadVariable(t *testing.T) {
	_, err := loadConfig(env(map[string]string{
		"LOG_LEVEL":             "loud",
		"HTTP_PORT":             "0",
		"FILTER_MODE":           "tcp",
		"DASHBOARD_START_DELAY": "later",
		"ALLOWLIST_IPS":         "nope",
		"UNBLOCK_POLL_INTERVAL": "1",
		"HOSTNAME":              "fine",
	}))
	require.Error(t, err)
	joined, ok := err.(interface{ Unwrap() []error })
	require.True(t, ok, "errors.Join result")
	var names []string
	for _, e := range joined.Unwrap() {
		var ee *envError
		require.True(t, errors.As(e, &ee))
		names = append(names, ee.Name)
	}
	assert.ElementsMatch(t, []string{"LOG_LEVEL", "HTTP_PORT", "FILTER_MODE", "DASHBOARD_START_DELAY", "ALLOWLIST_IPS", "UNBLOCK_POLL_INTERVAL"}, names)
	for _, want := range []string{`LOG_LEVEL="loud"`, `HTTP_PORT="0"`, `FILTER_MODE="tcp"`, `DASHBOARD_START_DELAY="later"`, `ALLOWLIST_IPS="nope"`, `UNBLOCK_POLL_INTERVAL="1"`} {
		assert.Contains(t, err.Error(), want)
	}
}
