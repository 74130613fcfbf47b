package main

import (
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/g0lab/g0efilter/dashboardapi"
	"github.com/g0lab/g0efilter/internal/envconf"
)

// Environment variables read by the dashboard (see the "Environment —
// dashboard" table of the reference), and ours.
const (
	envPort         = "PORT"
	envAPIKey       = "API_KEY"
	envLogLevel     = "LOG_LEVEL"
	envBufferSize   = "BUFFER_SIZE"
	envReadLimit    = "READ_LIMIT"
	envSSERetryMS   = "SSE_RETRY_MS"
	envWriteTimeout = "WRITE_TIMEOUT"
	envRateRPS      = "RATE_RPS"
	envRateBurst    = "RATE_BURST"

	// Ours: history that survives restarts.
	envDBPath      = "DB_PATH"
	envDBMaxEvents = "DB_MAX_EVENTS"
	envDBMaxAge    = "DB_MAX_AGE"

	// Ours: remote unblock, off by default because it edits allowlists.
	envEnableUnblocks = "ENABLE_UNBLOCKS"
	envUnblockExpiry  = "UNBLOCK_EXPIRY"

	// Ours: Prometheus metrics.
	envMetricsAddr = "METRICS_ADDR"
)

// Defaults, as documented in the reference.
const (
	defaultAddr        = ":8081"
	defaultBufferSize  = 5000
	defaultReadLimit   = 500
	defaultSSERetry    = 2000 * time.Millisecond
	defaultRateRPS     = 50
	defaultRateBurst   = 100
	defaultDBMaxEvents = 1_000_000
	defaultUnblockTTL  = 24 * time.Hour
)

// config is everything the dashboard reads from its environment, validated.
type config struct {
	// Addr is the listen address, host:port; ":8081" by default.
	Addr string
	// APIKey and Keys are the keys filters present (API_KEY, API_KEYS);
	// with neither, ingest is refused. Weak ones are refused at start.
	APIKey string
	Keys   []dashboardapi.FilterKey
	// Auth is how people sign in (AUTH and what it needs); required.
	Auth authConfig
	// LogLevel is the slog level; INFO by default.
	LogLevel slog.Level
	// BufferSize is the memory store's capacity; 5000 by default.
	BufferSize int
	// ReadLimit caps the events of one read; 500 by default.
	ReadLimit int
	// SSERetry is the reconnection delay told to browsers; 2s by default.
	SSERetry time.Duration
	// WriteTimeout bounds writing an answer; 0 (none) by default. Streams
	// are exempt.
	WriteTimeout time.Duration
	// RateRPS and RateBurst limit each client; 50 and 100 by default.
	// RATE_RPS=0 turns the limit off (RateRPS < 0 here).
	RateRPS   float64
	RateBurst int
	// DBPath, when set, keeps events in SQLite there instead of memory.
	DBPath string
	// DBMaxEvents and DBMaxAge are the SQLite store's retention;
	// 1,000,000 events and no age limit by default.
	DBMaxEvents int
	DBMaxAge    time.Duration
	// EnableUnblocks serves the remote unblock routes; false by default.
	EnableUnblocks bool
	// UnblockExpiry is how long a pending unblock waits for its filter;
	// 24h by default.
	UnblockExpiry time.Duration
	// MetricsAddr is where Prometheus metrics are served; empty means
	// nowhere.
	MetricsAddr string
}

// envError is an invalid environment variable.
type envError = envconf.Error

// loadConfig reads and validates the environment through lookup
// (os.LookupEnv in main). Every invalid variable is reported, joined with
// errors.Join, each naming the variable and its value.
func loadConfig(lookup func(string) (string, bool)) (config, error) {
	p := envParser{envconf.Parser{Lookup: lookup}}
	apiKey, keys := p.keys()
	c := config{
		Addr:         p.addr(envPort),
		APIKey:       apiKey,
		Keys:         keys,
		Auth:         p.auth(),
		LogLevel:     p.Level(envLogLevel),
		BufferSize:   p.Positive(envBufferSize, defaultBufferSize),
		ReadLimit:    p.Positive(envReadLimit, defaultReadLimit),
		SSERetry:     time.Duration(p.Positive(envSSERetryMS, int(defaultSSERetry.Milliseconds()))) * time.Millisecond,
		WriteTimeout: p.seconds(envWriteTimeout),
		RateRPS:      p.rate(envRateRPS),
		RateBurst:    p.Positive(envRateBurst, defaultRateBurst),
		DBPath:       p.String(envDBPath),
		DBMaxEvents:  p.Positive(envDBMaxEvents, defaultDBMaxEvents),
		DBMaxAge:     p.age(envDBMaxAge),

		EnableUnblocks: p.Bool(envEnableUnblocks, false),
		UnblockExpiry:  p.expiry(envUnblockExpiry),
		MetricsAddr:    p.metricsAddr(envMetricsAddr),
	}
	if err := p.Err(); err != nil {
		return config{}, err
	}
	return c, nil
}

// loadAddr reads only PORT, for the health command, which needs nothing
// else.
func loadAddr(lookup func(string) (string, bool)) (string, error) {
	p := envParser{envconf.Parser{Lookup: lookup}}
	addr := p.addr(envPort)
	return addr, p.Err()
}

// envParser reads the variables; its methods beyond envconf.Parser's are
// this command's own kinds of value.
type envParser struct {
	envconf.Parser
}

// addr reads PORT: "8081", ":8081", "addr:port" or "[v6addr]:port", and
// returns a listen address.
func (p *envParser) addr(name string) string {
	v, ok := p.Get(name)
	if !ok {
		return defaultAddr
	}
	if n, err := strconv.ParseUint(v, 10, 16); err == nil && n > 0 {
		return ":" + v
	}
	// Port 0 (any free port) is allowed with an address, for tests.
	if _, port, err := net.SplitHostPort(v); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err == nil {
			return v
		}
	}
	p.Fail(name, v, errors.New("want a port (8081), :port (:8081) or address:port (127.0.0.1:8081, [::1]:8081)"))
	return defaultAddr
}

// metricsAddr reads METRICS_ADDR: "addr:port" or ":port", or unset.
func (p *envParser) metricsAddr(name string) string {
	v, ok := p.Get(name)
	if !ok {
		return ""
	}
	if _, port, err := net.SplitHostPort(v); err == nil {
		if n, err := strconv.ParseUint(port, 10, 16); err == nil && n > 0 {
			return v
		}
	}
	p.Fail(name, v, errors.New("want :port or address:port (127.0.0.1:9465)"))
	return ""
}

// seconds reads a whole number of seconds, 0 or more.
func (p *envParser) seconds(name string) time.Duration {
	v, ok := p.Get(name)
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 {
		p.Fail(name, v, errors.New("want a whole number of seconds, 0 or more (0 means none)"))
		return 0
	}
	return time.Duration(n) * time.Second
}

// rate reads RATE_RPS: requests per second, a number; 0 turns the limit
// off, which the library takes as a negative rate.
func (p *envParser) rate(name string) float64 {
	v, ok := p.Get(name)
	if !ok {
		return defaultRateRPS
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f != f || f > 1e9 {
		p.Fail(name, v, errors.New("want requests per second, a number such as 50 or 0.5 (0 turns the limit off)"))
		return defaultRateRPS
	}
	if f == 0 {
		return -1
	}
	return f
}

// age reads DB_MAX_AGE: a Go duration ("720h") or whole days ("30d"); 0 or
// unset means no age limit.
func (p *envParser) age(name string) time.Duration {
	v, ok := p.Get(name)
	if !ok {
		return 0
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n >= 0 && n <= 100*365 {
			return time.Duration(n) * 24 * time.Hour
		}
	} else if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return d
	}
	p.Fail(name, v, errors.New("want a duration such as 720h or 30d (0 means no limit)"))
	return 0
}

// expiry reads UNBLOCK_EXPIRY: a Go duration ("24h", "90m") or whole days
// ("2d"), more than zero.
func (p *envParser) expiry(name string) time.Duration {
	v, ok := p.Get(name)
	if !ok {
		return defaultUnblockTTL
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n > 0 && n <= 365 {
			return time.Duration(n) * 24 * time.Hour
		}
	} else if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d
	}
	p.Fail(name, v, errors.New("want a duration more than zero, such as 24h, 90m or 2d"))
	return defaultUnblockTTL
}
