// Command dashboard is g0efilter's dashboard: it takes the events that
// filters ship, keeps them in memory (or in SQLite with DB_PATH), and
// serves them to signed-in people in a web UI with a live stream.
//
// Usage:
//
//	dashboard                      serve (the default)
//	dashboard adduser NAME [ROLE]  add or replace a local account in
//	                               USERS_FILE, role viewer (the default)
//	                               or operator; the password is read from
//	                               the terminal, or a line of standard input
//	dashboard health               ask the dashboard on $PORT for /health:
//	                               exit 0 if it is ok (a container
//	                               HEALTHCHECK without curl)
//	dashboard version              print the version
//
// Configuration comes from the environment:
//
//	AUTH           how people sign in, required: local, forward, oidc or
//	               none (see below)
//	PORT           listen address: 8081, :8081 or addr:port (default :8081)
//	API_KEY        a key filters present to ship events and poll unblocks:
//	               at least 32 random bytes (openssl rand -hex 32)
//	API_KEYS       more keys, comma-separated, each KEY or HOSTNAME:KEY (a
//	               key only that filter may use); all are valid at once,
//	               so a key is rotated by adding the new one first.
//	               Without any key ingest is refused
//	LOG_LEVEL      TRACE, DEBUG, INFO, WARN or ERROR (default INFO)
//	BUFFER_SIZE    events kept in memory (default 5000)
//	READ_LIMIT     most events one read returns (default 500)
//	SSE_RETRY_MS   reconnection delay told to browsers (default 2000)
//	WRITE_TIMEOUT  seconds to write an answer, 0 for none (default 0);
//	               live streams are exempt
//	RATE_RPS       requests per second per client, 0 for no limit (default 50)
//	RATE_BURST     requests a client may make at once (default 100)
//	DB_PATH        keep events, unblock requests and their audit in this
//	               SQLite file instead of memory
//	DB_MAX_EVENTS  events the SQLite file keeps (default 1000000)
//	DB_MAX_AGE     how long it keeps them: 720h, 30d; 0 for ever (default 0)
//	ENABLE_UNBLOCKS  serve remote unblock: the UI's unblock buttons and the
//	               routes filters poll (default false)
//	UNBLOCK_EXPIRY how long a pending unblock waits for its filter: 24h,
//	               2d (default 24h)
//	METRICS_ADDR   serve Prometheus metrics here (:9465, 127.0.0.1:9465);
//	               unset: nowhere
//
// Sign-in:
//
//	AUTH=local     accounts in USERS_FILE (bcrypt), added with adduser
//	AUTH=forward   the user named in AUTH_USER_HEADER (default Remote-User)
//	               by a proxy at TRUSTED_PROXIES (addresses or CIDRs, not
//	               loopback); from anyone else the header is ignored
//	AUTH=oidc      OpenID Connect: OIDC_ISSUER, OIDC_CLIENT_ID,
//	               OIDC_CLIENT_SECRET (or OIDC_CLIENT_SECRET_FILE),
//	               OIDC_REDIRECT_URL (https://HOST/auth/oidc/callback),
//	               OIDC_SCOPES (default "email profile"), OIDC_USER_CLAIM
//	               (default email)
//	AUTH=none      no sign-in: everyone is an operator (AUTH_NONE_ROLE=viewer
//	               for less); logged as a warning at start
//	AUTH_OPERATORS, AUTH_VIEWERS  who may do what with forward and oidc:
//	               names, comma-separated; AUTH_VIEWERS="*" is anyone signed
//	               in (the default with forward)
//	SESSION_TTL    how long a sign-in lasts (default 12h)
//	SECURE_COOKIES auto (Secure when the browser uses HTTPS), always, never
//
// Viewers read and stream; operators also clear and ask for unblocks.
// Filter keys reach only ingest, GET /api/v1/unblocks and
// POST /api/v1/unblocks/ack. Without AUTH the dashboard does not start.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/g0lab/g0efilter/dashboardapi"
	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/internal/promserve"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // could not start or serve
	exitUsage   = 2 // bad command line or configuration
)

// shutdownTimeout bounds the wait for requests in flight at shutdown.
const shutdownTimeout = 10 * time.Second

// Log attribute keys.
const (
	logKeyErr     = "err"
	logKeyAddr    = "addr"
	logKeyVersion = "version"
	logKeyStore   = "store"
	logKeyPath    = "path"
	logKeyBuffer  = "buffer_size"
	logKeyExpiry  = "unblock_expiry"
)

const usage = `usage: dashboard [serve|health|version]
       dashboard adduser NAME [viewer|operator]

Configuration comes from the environment (AUTH, USERS_FILE, PORT, API_KEY,
API_KEYS, LOG_LEVEL, BUFFER_SIZE, READ_LIMIT, SSE_RETRY_MS, WRITE_TIMEOUT,
RATE_RPS, RATE_BURST, DB_PATH, DB_MAX_EVENTS, DB_MAX_AGE, ENABLE_UNBLOCKS,
UNBLOCK_EXPIRY, ...); see the README.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdin, os.Stdout, os.Stderr, nil)
	stop()
	os.Exit(code)
}

// run is the whole program but for the process: it returns the exit code.
// ready, when not nil, is called with the listening address once the
// dashboard accepts connections.
func run(ctx context.Context, args []string, lookup func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer, ready func(net.Addr)) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch {
	case cmd == "adduser":
		return addUser(args[1:], lookup, stdin, stdout, stderr)
	case len(args) > 1:
		fmt.Fprintf(stderr, "dashboard: too many arguments\n%s", usage)
		return exitUsage
	case cmd == "version" || cmd == "--version":
		fmt.Fprintf(stdout, "dashboard %s\n", version)
		return exitOK
	case cmd == "help" || cmd == "-h" || cmd == "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case cmd != "serve" && cmd != "health":
		fmt.Fprintf(stderr, "dashboard: unknown command %q\n%s", cmd, usage)
		return exitUsage
	}
	if cmd == "health" {
		addr, err := loadAddr(lookup)
		if err != nil {
			fmt.Fprintf(stderr, "dashboard: configuration: %v\n", err)
			return exitUsage
		}
		return health(ctx, addr, stdout, stderr)
	}

	cfg, err := loadConfig(lookup)
	if err != nil {
		fmt.Fprintf(stderr, "dashboard: configuration:\n")
		for _, e := range unjoin(err) {
			fmt.Fprintf(stderr, "  %v\n", e)
		}
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{
		Level:       cfg.LogLevel,
		ReplaceAttr: events.ReplaceLevelNames,
	}))
	if err := serve(ctx, cfg, log, ready); err != nil {
		log.Error("dashboard stopped", logKeyErr, err)
		return exitFailure
	}
	return exitOK
}

// serve runs the dashboard until ctx ends, then shuts it down gracefully.
// openStore opens the events' store: SQLite at DB_PATH, else memory.
func openStore(cfg config, log *slog.Logger) (dashboardapi.Store, error) {
	if cfg.DBPath == "" {
		log.Info("storing events in memory", logKeyStore, "memory", logKeyBuffer, cfg.BufferSize)
		return dashboardapi.NewMemoryStore(cfg.BufferSize), nil
	}
	s, err := dashboardapi.OpenSQLite(cfg.DBPath, dashboardapi.SQLiteConfig{
		MaxEvents: cfg.DBMaxEvents,
		MaxAge:    cfg.DBMaxAge,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envDBPath, err)
	}
	log.Info("storing events in SQLite", logKeyStore, "sqlite", logKeyPath, cfg.DBPath)
	return s, nil
}

// openUnblocks returns the remote unblock requests, kept beside the events
// in SQLite, or in memory; nil when remote unblock is off.
func openUnblocks(ctx context.Context, cfg config, store dashboardapi.Store, log *slog.Logger) (*dashboardapi.Unblocks, error) {
	if !cfg.EnableUnblocks {
		return nil, nil
	}
	ucfg := dashboardapi.UnblocksConfig{Expiry: cfg.UnblockExpiry, Logger: log}
	var ub *dashboardapi.Unblocks
	if db, ok := store.(*dashboardapi.SQLiteStore); ok {
		var err error
		if ub, err = dashboardapi.OpenUnblocks(ctx, ucfg, db); err != nil {
			return nil, fmt.Errorf("%s: %w", envDBPath, err)
		}
	} else {
		ub = dashboardapi.NewUnblocks(ucfg)
	}
	log.Info("remote unblock is on: operators can make a filter allow a destination",
		logKeyExpiry, cfg.UnblockExpiry.String(), "persistent", cfg.DBPath != "")
	return ub, nil
}

func serve(ctx context.Context, cfg config, log *slog.Logger, ready func(net.Addr)) error {
	store, err := openStore(cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	if cfg.APIKey == "" && len(cfg.Keys) == 0 {
		log.Warn("API_KEY is not set: filters cannot ship events until it is")
	}
	auth, err := authFor(ctx, cfg.Auth, log)
	if err != nil {
		return err
	}

	// Left nil when off, so that the routes answer 404 and the UI shows no
	// unblock buttons; a typed nil would not be.
	var unblocks http.Handler
	ub, err := openUnblocks(ctx, cfg, store, log)
	if err != nil {
		return err
	}
	if ub != nil {
		unblocks = ub
	}
	srv := dashboardapi.NewServer(dashboardapi.ServerConfig{
		APIKey:    cfg.APIKey,
		Keys:      cfg.Keys,
		Auth:      auth,
		Store:     store,
		ReadLimit: cfg.ReadLimit,
		SSERetry:  cfg.SSERetry,
		RateRPS:   cfg.RateRPS,
		RateBurst: cfg.RateBurst,
		Unblocks:  unblocks,
		Logger:    log,
	})
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	hs.RegisterOnShutdown(srv.Close) // streams end, so Shutdown need not wait for them

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("%s: %w", envPort, err)
	}
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("%s: %w", envMetricsAddr, err)
		}
		mctx, stop := context.WithCancel(ctx)
		wait := promserve.Serve(mctx, mln, metricsRegistry(srv, ub), log)
		defer func() {
			stop()
			wait()
		}()
		log.Info("metrics listening", logKeyAddr, mln.Addr().String())
	}
	log.Info("dashboard listening", logKeyAddr, ln.Addr().String(), logKeyVersion, version)
	if ready != nil {
		ready(ln.Addr())
	}

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("dashboard shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// health asks the dashboard listening on addr for /health, over loopback
// when addr names no host.
func health(ctx context.Context, addr string, stdout, stderr io.Writer) int {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintf(stderr, "dashboard: health: %v\n", err)
		return exitFailure
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/health", nil)
	if err != nil {
		fmt.Fprintf(stderr, "dashboard: health: %v\n", err)
		return exitFailure
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "dashboard: health: %v\n", err)
		return exitFailure
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "dashboard: health: %s: %s\n", resp.Status, body)
		return exitFailure
	}
	fmt.Fprintf(stdout, "%s\n", body)
	return exitOK
}

// unjoin splits an errors.Join error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
