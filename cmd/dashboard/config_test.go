package main

import (
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/dashboardapi"
)

// testKey is a filter key strong enough to be taken.
const testKey = "3c5e1b7f9a2d4c6e8f0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e"

// env is an environment of kv, with AUTH=none unless kv says otherwise
// (AUTH="" is unset): most tests are not about sign-in.
func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := kv[k]
		if k == envAuth && !ok {
			return "none", true
		}
		return v, ok
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := loadConfig(env(nil))
	require.NoError(t, err)
	assert.Equal(t, config{
		Addr:          ":8081",
		LogLevel:      slog.LevelInfo,
		BufferSize:    5000,
		ReadLimit:     500,
		SSERetry:      2 * time.Second,
		RateRPS:       50,
		RateBurst:     100,
		DBMaxEvents:   1_000_000,
		UnblockExpiry: 24 * time.Hour,
		Auth: authConfig{
			Mode: dashboardapi.AuthNone, NoneRole: dashboardapi.RoleOperator,
			SessionTTL: dashboardapi.DefaultSessionTTL,
		},
	}, c)
}

func TestLoadConfigAll(t *testing.T) {
	c, err := loadConfig(env(map[string]string{
		"PORT":            "127.0.0.1:9000",
		"API_KEY":         " " + testKey + " ",
		"API_KEYS":        "web-1:" + testKey[1:] + "f, " + testKey[2:] + "ab",
		"AUTH":            "forward",
		"TRUSTED_PROXIES": "172.18.0.2, fd00::/64",
		"AUTH_OPERATORS":  "alice,bob",
		"SESSION_TTL":     "1h",
		"LOG_LEVEL":       "trace",
		"BUFFER_SIZE":     "100",
		"READ_LIMIT":      "50",
		"SSE_RETRY_MS":    "500",
		"WRITE_TIMEOUT":   "30",
		"RATE_RPS":        "2.5",
		"RATE_BURST":      "7",
		"DB_PATH":         "/data/events.db",
		"DB_MAX_EVENTS":   "1000",
		"DB_MAX_AGE":      "30d",
		"ENABLE_UNBLOCKS": "true",
		"UNBLOCK_EXPIRY":  "90m",
	}))
	require.NoError(t, err)
	assert.Equal(t, config{
		Addr:   "127.0.0.1:9000",
		APIKey: testKey,
		Keys:   []dashboardapi.FilterKey{{Hostname: "web-1", Key: testKey[1:] + "f"}, {Key: testKey[2:] + "ab"}},
		Auth: authConfig{
			Mode:           dashboardapi.AuthForward,
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("172.18.0.2/32"), netip.MustParsePrefix("fd00::/64")},
			Operators:      []string{"alice", "bob"},
			Viewers:        []string{"*"},
			SessionTTL:     time.Hour,
		},
		LogLevel:       slog.LevelDebug - 4,
		BufferSize:     100,
		ReadLimit:      50,
		SSERetry:       500 * time.Millisecond,
		WriteTimeout:   30 * time.Second,
		RateRPS:        2.5,
		RateBurst:      7,
		DBPath:         "/data/events.db",
		DBMaxEvents:    1000,
		DBMaxAge:       30 * 24 * time.Hour,
		EnableUnblocks: true,
		UnblockExpiry:  90 * time.Minute,
	}, c)
}

func TestLoadConfigValues(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		get         func(config) any
		want        any
	}{
		{"PORT", "8081", func(c config) any { return c.Addr }, ":8081"},
		{"PORT", ":8082", func(c config) any { return c.Addr }, ":8082"},
		{"PORT", "0.0.0.0:8083", func(c config) any { return c.Addr }, "0.0.0.0:8083"},
		{"PORT", "[::1]:8084", func(c config) any { return c.Addr }, "[::1]:8084"},
		{"PORT", "localhost:8085", func(c config) any { return c.Addr }, "localhost:8085"},
		{"PORT", "127.0.0.1:0", func(c config) any { return c.Addr }, "127.0.0.1:0"},
		{"PORT", "  ", func(c config) any { return c.Addr }, ":8081"},
		{"RATE_RPS", "0", func(c config) any { return c.RateRPS }, -1.0},
		{"WRITE_TIMEOUT", "0", func(c config) any { return c.WriteTimeout }, time.Duration(0)},
		{"DB_MAX_AGE", "36h", func(c config) any { return c.DBMaxAge }, 36 * time.Hour},
		{"DB_MAX_AGE", "0", func(c config) any { return c.DBMaxAge }, time.Duration(0)},
		{"LOG_LEVEL", "WARN", func(c config) any { return c.LogLevel }, slog.LevelWarn},
		{"ENABLE_UNBLOCKS", "1", func(c config) any { return c.EnableUnblocks }, true},
		{"ENABLE_UNBLOCKS", "false", func(c config) any { return c.EnableUnblocks }, false},
		{"UNBLOCK_EXPIRY", "2d", func(c config) any { return c.UnblockExpiry }, 48 * time.Hour},
		{"UNBLOCK_EXPIRY", "30s", func(c config) any { return c.UnblockExpiry }, 30 * time.Second},
		{"METRICS_ADDR", ":9465", func(c config) any { return c.MetricsAddr }, ":9465"},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			c, err := loadConfig(env(map[string]string{tc.name: tc.value}))
			require.NoError(t, err)
			assert.Equal(t, tc.want, tc.get(c))
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, value, text string }{
		{"PORT", "0", "want a port"},
		{"PORT", "65536", "want a port"},
		{"PORT", "http://x:80", "want a port"},
		{"PORT", "127.0.0.1", "want a port"},
		{"PORT", "host:http", "want a port"},
		{"LOG_LEVEL", "LOUD", "want TRACE"},
		{"BUFFER_SIZE", "0", "positive"},
		{"BUFFER_SIZE", "many", "positive"},
		{"READ_LIMIT", "-1", "positive"},
		{"SSE_RETRY_MS", "2s", "positive"},
		{"WRITE_TIMEOUT", "-5", "seconds"},
		{"WRITE_TIMEOUT", "5s", "seconds"},
		{"RATE_RPS", "fast", "requests per second"},
		{"RATE_RPS", "-1", "requests per second"},
		{"RATE_RPS", "NaN", "requests per second"},
		{"RATE_BURST", "0", "positive"},
		{"DB_MAX_EVENTS", "lots", "positive"},
		{"DB_MAX_AGE", "-1h", "duration"},
		{"DB_MAX_AGE", "month", "duration"},
		{"ENABLE_UNBLOCKS", "yes", "want true or false"},
		{"UNBLOCK_EXPIRY", "0", "more than zero"},
		{"UNBLOCK_EXPIRY", "-1h", "more than zero"},
		{"UNBLOCK_EXPIRY", "0d", "more than zero"},
		{"UNBLOCK_EXPIRY", "soon", "more than zero"},
		{"METRICS_ADDR", "9465", "want :port"},
		{"METRICS_ADDR", ":0", "want :port"},
		{"AUTH", "", "choose how people sign in"},
		{"AUTH", "ldap", "want local, forward, oidc or none"},
		{"API_KEY", "change-me-to-a-long-random-secret", "placeholder"},
		{"API_KEY", testKey[:40], "at least 256 needed"},
		{"API_KEYS", testKey + ",web-1:short", "key 2"},
		{"TRUSTED_PROXIES", "127.0.0.1", "loopback"},
		{"TRUSTED_PROXIES", "0.0.0.0/0", "trusts every address"},
		{"TRUSTED_PROXIES", "::1", "loopback"},
		{"TRUSTED_PROXIES", "proxy", "want an address"},
		{"SESSION_TTL", "0", "more than zero"},
		{"SECURE_COOKIES", "maybe", "want auto"},
		{"AUTH_NONE_ROLE", "admin", "want viewer or operator"},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			_, err := loadConfig(env(map[string]string{tc.name: tc.value}))
			require.Error(t, err)
			var ee *envError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, tc.name, ee.Name)
			assert.Contains(t, err.Error(), tc.name+"=")
			assert.Contains(t, err.Error(), tc.text)
			assert.NotContains(t, err.Error(), testKey[:40], "keys are not printed")
		})
	}
}

func TestLoadConfigJoinsErrors(t *testing.T) {
	_, err := loadConfig(env(map[string]string{"PORT": "x", "BUFFER_SIZE": "0", "RATE_BURST": "y"}))
	require.Error(t, err)
	parts := unjoin(err)
	require.Len(t, parts, 3)
	for i, name := range []string{"PORT", "BUFFER_SIZE", "RATE_BURST"} {
		assert.Contains(t, parts[i].Error(), name+"=")
	}
}

func TestLoadConfigAuthModes(t *testing.T) {
	for _, tc := range []struct {
		name string
		kv   map[string]string
		err  []string // the variables it must complain about
	}{
		{"local", map[string]string{"AUTH": "local", "USERS_FILE": "/data/users"}, nil},
		{"local without a users file", map[string]string{"AUTH": "local"}, []string{"USERS_FILE"}},
		{"forward without proxies", map[string]string{"AUTH": "forward"}, []string{"TRUSTED_PROXIES"}},
		{"oidc", map[string]string{"AUTH": "oidc", "OIDC_ISSUER": "https://id.example", "OIDC_CLIENT_ID": "c",
			"OIDC_REDIRECT_URL": "https://dash.example/auth/oidc/callback", "AUTH_VIEWERS": "*"}, nil},
		{"oidc with nothing", map[string]string{"AUTH": "oidc"}, []string{"OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_REDIRECT_URL", "AUTH_OPERATORS"}},
		{"oidc with a bad URL", map[string]string{"AUTH": "oidc", "OIDC_ISSUER": "id.example", "OIDC_CLIENT_ID": "c",
			"OIDC_REDIRECT_URL": "https://dash.example/auth/oidc/callback", "AUTH_OPERATORS": "a"}, []string{"OIDC_ISSUER"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(env(tc.kv))
			if tc.err == nil {
				assert.NoError(t, err)
				return
			}
			var names []string
			for _, e := range unjoin(err) {
				var ee *envError
				require.ErrorAs(t, e, &ee)
				names = append(names, ee.Name)
			}
			assert.ElementsMatch(t, tc.err, names)
		})
	}
}

// TestExampleEnvFile loads examples/.env.dashboard as Compose would: its
// placeholder key is refused, and with a real key it starts with local
// accounts.
func TestExampleEnvFile(t *testing.T) {
	data, err := os.ReadFile("../../examples/.env.dashboard")
	require.NoError(t, err)
	kv := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			kv[k] = v
		}
	}
	_, err = loadConfig(env(kv))
	var ee *envError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "API_KEY", ee.Name)
	assert.Contains(t, err.Error(), "placeholder")

	kv["API_KEY"] = testKey
	c, err := loadConfig(env(kv))
	require.NoError(t, err)
	assert.Equal(t, dashboardapi.AuthLocal, c.Auth.Mode)
	assert.Equal(t, "/data/users", c.Auth.UsersFile)
	assert.Equal(t, "/data/events.db", c.DBPath)
}
