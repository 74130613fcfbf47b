package dashboardapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/internal/ratelimit"
)

// Defaults of [ServerConfig].
const (
	DefaultReadLimit    = 500
	DefaultMaxBodyBytes = 4 << 20
	DefaultSSERetry     = 2 * time.Second
	DefaultHeartbeat    = 15 * time.Second
	DefaultStreamWrite  = 30 * time.Second
	DefaultRateRPS      = 50
	DefaultRateBurst    = 100
	// MaxFieldLen is the longest text field of an ingested event, in
	// bytes; an event with a longer one is rejected.
	MaxFieldLen = 4096
)

// APIKeyHeader is the header a filter presents its API key in.
const APIKeyHeader = "X-Api-Key"

// IdempotencyKeyHeader names a batch. A [Client] sends a new key with every
// batch and the same key when it retries one; the server answers a key it
// has seen recently as it did the first time, without storing the batch
// again, so that a retry after a lost answer does not store events twice.
const IdempotencyKeyHeader = "Idempotency-Key"

// Log attribute keys.
const (
	logKeyErr      = "err"
	logKeyRemote   = "remote"
	logKeyAccepted = "accepted"
	logKeyRejected = "rejected"
	logKeyDropped  = "dropped"
	logKeyBatch    = "batch"
)

// ServerConfig configures a [Server]. Its zero value serves a memory store
// of [DefaultBufferSize] events and refuses ingest (no API key).
type ServerConfig struct {
	// Keys are the keys filters present in the X-Api-Key header to ship
	// events and poll and acknowledge unblocks (API_KEYS); several are
	// valid at once so that a key can be rotated without downtime. They
	// reach only those routes. Check each with [CheckFilterKey]. With
	// neither Keys nor APIKey ingest is refused: the server never takes
	// events from anyone who asks.
	Keys []FilterKey
	// APIKey is one more key, valid for any filter (API_KEY).
	APIKey string
	// Auth says how people sign in and what each may do. Its zero value
	// lets no person in: only /health, the UI's assets and the filters'
	// routes answer.
	Auth AuthConfig
	// Store keeps the events. Nil means NewMemoryStore(0). The Server does
	// not close it.
	Store Store
	// ReadLimit is the most events one read returns (READ_LIMIT). Zero
	// means 500.
	ReadLimit int
	// MaxBodyBytes bounds an ingest request's body; a larger one is refused
	// with 413. Zero means 4 MiB.
	MaxBodyBytes int64
	// SSERetry is the reconnection delay a stream tells browsers
	// (SSE_RETRY_MS). Zero means 2s.
	SSERetry time.Duration
	// Heartbeat is how often an idle stream sends a comment, so proxies
	// and clients see it is alive. Zero means 15s.
	Heartbeat time.Duration
	// StreamWriteTimeout bounds each write to a stream: a client that does
	// not read for that long is dropped. Streams lift the server's
	// WriteTimeout, which would end them. Zero means 30s.
	StreamWriteTimeout time.Duration
	// RateRPS is the average number of requests per second each client
	// (remote IP address) may make (RATE_RPS); /health is not counted.
	// Zero means 50; negative means no limit.
	RateRPS float64
	// RateBurst is how many requests a client may make at once
	// (RATE_BURST). Zero means 100.
	RateBurst int
	// Unblocks, when not nil, serves the remote unblock routes
	// (/api/v1/unblocks and below), normally an [*Unblocks]
	// (ENABLE_UNBLOCKS); the UI then shows unblock buttons.
	// GET /api/v1/unblocks and POST /api/v1/unblocks/ack reach it only with
	// a filter key, the other routes only with a person of the right role.
	// Nil means those routes answer 404.
	Unblocks http.Handler
	// Logger receives ingest problems and dropped streams. Nil means
	// discard.
	Logger *slog.Logger
}

// Server is the dashboard: an [http.Handler] that ingests events from
// filters, keeps them in a [Store], serves them to readers and live
// streams, and serves the web UI. Make it with [NewServer]; end its streams
// with [Server.Close].
type Server struct {
	cfg     ServerConfig
	store   Store
	log     *slog.Logger
	keys    []filterKey
	auth    *auth
	mux     *http.ServeMux
	limiter *ratelimit.Limiter[string]
	hub     hub
	batches idempotency

	closeOnce sync.Once
	done      chan struct{} // closed by Close

	// clearMu orders clears with appends: ingest holds it for reading,
	// clear for writing, so the last ID a clear removed is exact.
	clearMu     sync.RWMutex
	clears      atomic.Uint64 // how many times the store was cleared
	lastCleared atomic.Uint64 // the newest ID the last clear removed

	ingested, rejected atomic.Uint64 // events stored and refused by ingest
	streams            atomic.Int64  // SSE clients connected now
}

// ServerStats are counters of a [Server] since it was made.
type ServerStats struct {
	Ingested uint64 // events stored by ingest
	Rejected uint64 // events ingest refused (invalid)
	Streams  int64  // live-stream (SSE) clients connected now
}

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{Ingested: s.ingested.Load(), Rejected: s.rejected.Load(), Streams: s.streams.Load()}
}

// NewServer makes a Server from cfg.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Store == nil {
		cfg.Store = NewMemoryStore(0)
	}
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = DefaultReadLimit
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.SSERetry <= 0 {
		cfg.SSERetry = DefaultSSERetry
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.StreamWriteTimeout <= 0 {
		cfg.StreamWriteTimeout = DefaultStreamWrite
	}
	if cfg.RateRPS == 0 {
		cfg.RateRPS = DefaultRateRPS
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = DefaultRateBurst
	}
	s := &Server{
		cfg:   cfg,
		store: cfg.Store,
		log:   cfg.Logger,
		done:  make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.APIKey != "" {
		cfg.Keys = append([]FilterKey{{Key: cfg.APIKey}}, cfg.Keys...)
	}
	for _, k := range cfg.Keys {
		if k.Key != "" {
			s.keys = append(s.keys, filterKey{hash: sha256.Sum256([]byte(k.Key)), hostname: k.Hostname, fingerprint: k.Fingerprint()})
		}
	}
	s.auth = newAuth(cfg.Auth, s.log)
	if cfg.RateRPS > 0 {
		s.limiter = ratelimit.New[string](cfg.RateRPS, cfg.RateBurst)
	}
	s.batches.init(4096)
	s.hub.init()
	s.routes()
	return s
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /health", s.health)
	m.Handle("POST /api/v1/logs", s.requireKey(http.HandlerFunc(s.ingest)))
	m.Handle("GET /api/v1/logs", s.person(RoleViewer, http.HandlerFunc(s.read)))
	m.Handle("DELETE /api/v1/logs", s.person(RoleOperator, http.HandlerFunc(s.clear)))
	m.Handle("GET /api/v1/events", s.person(RoleViewer, http.HandlerFunc(s.stream)))
	m.Handle("GET /api/v1/info", s.person(RoleViewer, http.HandlerFunc(s.info)))
	m.Handle("GET /api/v1/suggest", s.person(RoleViewer, http.HandlerFunc(s.suggestPolicy)))
	m.Handle("GET /api/v1/observed", s.person(RoleViewer, http.HandlerFunc(s.observed)))
	if u := s.cfg.Unblocks; u != nil {
		m.Handle("GET /api/v1/unblocks", s.requireKey(u))
		m.Handle("POST /api/v1/unblocks/ack", s.requireKey(u))
		m.Handle("POST /api/v1/unblocks", s.person(RoleOperator, u))
		m.Handle("GET /api/v1/unblocks/status", s.person(RoleViewer, u))
		m.Handle("GET /api/v1/unblocks/audit", s.person(RoleViewer, u))
		m.Handle("/api/v1/unblocks", s.person(RoleViewer, u))
		m.Handle("/api/v1/unblocks/", s.person(RoleViewer, u))
	} else {
		off := func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "remote unblock is not enabled on this dashboard")
		}
		m.HandleFunc("/api/v1/unblocks", off)
		m.HandleFunc("/api/v1/unblocks/", off)
	}
	s.loginRoutes(m)
	s.uiRoutes(m)
	s.mux = m
}

// ServeHTTP implements [http.Handler].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.limiter != nil && r.URL.Path != "/health" {
		if wait, ok := s.limiter.Allow(clientKey(r), time.Now()); !ok {
			secs := int((wait + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
			writeError(w, http.StatusTooManyRequests, "too many requests: slow down")
			return
		}
	}
	if fw := s.auth.forwardedFor(r); fw != "" {
		r = r.WithContext(context.WithValue(r.Context(), forwardedForKey{}, fw))
	}
	s.mux.ServeHTTP(w, r)
}

// forwardedForKey carries X-Forwarded-For as a trusted proxy set it.
type forwardedForKey struct{}

// Close ends the server's streams and makes new ones end at once. It does
// not close the Store. Pass it to [http.Server.RegisterOnShutdown] so that
// Shutdown does not wait for streams that never end by themselves.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
}

func (s *Server) ingest(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get(IdempotencyKeyHeader)
	if key != "" {
		if status, body, ok := s.batches.get(key); ok {
			writeRaw(w, status, body)
			return
		}
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	var raw []json.RawMessage
	dec := json.NewDecoder(body)
	err := dec.Decode(&raw)
	if err == nil && dec.More() {
		err = errors.New("data after the array")
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("body larger than %d bytes: send smaller batches", s.cfg.MaxBodyBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "want a JSON array of events: "+err.Error())
		return
	}
	resp := IngestResponse{}
	evs := make([]events.Event, 0, len(raw))
	for i, m := range raw {
		var e events.Event
		err := e.UnmarshalJSON(m)
		if err == nil {
			err = checkLengths(&e)
		}
		if err != nil {
			resp.Rejected = append(resp.Rejected, Rejection{Index: i, Error: err.Error()})
			continue
		}
		evs = append(evs, e)
	}
	if f, _ := filterFrom(r.Context()); f.hostname != "" {
		for _, e := range evs {
			if e.Host != f.hostname {
				s.log.Warn("dashboard: refused events of another filter than the key's", logKeyRemote, r.RemoteAddr,
					"key_hostname", f.hostname, "event_host", cut(e.Host), "key", f.fingerprint)
				writeError(w, http.StatusForbidden, fmt.Sprintf("event host %q: this API key is bound to the filter %q", cut(e.Host), f.hostname))
				return
			}
		}
	}
	if len(evs) > 0 {
		s.clearMu.RLock()
		err := s.store.Append(r.Context(), evs)
		s.clearMu.RUnlock()
		if err != nil {
			s.log.Error("dashboard: storing events failed", logKeyErr, err)
			writeError(w, http.StatusServiceUnavailable, "storing events failed: "+err.Error())
			return
		}
		s.hub.notify()
	}
	resp.Accepted = len(evs)
	s.ingested.Add(uint64(len(evs)))
	s.rejected.Add(uint64(len(resp.Rejected)))
	status := http.StatusOK
	if len(raw) > 0 && len(evs) == 0 {
		status = http.StatusBadRequest
	}
	if len(resp.Rejected) > 0 {
		s.log.Debug("dashboard: events rejected", logKeyRemote, r.RemoteAddr,
			logKeyAccepted, resp.Accepted, logKeyRejected, len(resp.Rejected))
	}
	var b bytes.Buffer
	if err := appendJSON(&b, resp); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if key != "" {
		s.batches.put(key, status, b.Bytes())
	}
	writeRaw(w, status, b.Bytes())
}

// checkLengths refuses an event with a text field longer than MaxFieldLen.
func checkLengths(e *events.Event) error {
	for _, f := range [...]struct{ name, v string }{
		{"host", e.Host}, {"component", string(e.Component)}, {"protocol", e.Protocol},
		{"name", e.Name}, {"qtype", e.QType}, {"reason", string(e.Reason)},
		{"detail", e.Detail}, {"rule", e.Rule},
	} {
		if len(f.v) > MaxFieldLen {
			return fmt.Errorf("%w: %s: longer than %d bytes", events.ErrInvalid, f.name, MaxFieldLen)
		}
	}
	return nil
}

// parseQuery reads the filters of a read or a stream: action, component and
// q (text search).
func parseQuery(r *http.Request) (Query, error) {
	v := r.URL.Query()
	var q Query
	if a := v.Get("action"); a != "" {
		if err := q.Action.UnmarshalText([]byte(a)); err != nil {
			return q, errors.New("action: want allowed, blocked, would-block or error")
		}
	}
	q.Component = events.Component(v.Get("component"))
	q.Text = strings.TrimSpace(v.Get("q"))
	return q, nil
}

func parseID(v, name string) (uint64, error) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: want an event ID, a whole number", name)
	}
	return n, nil
}

// read serves GET /api/v1/logs. Parameters: action, component, q (text),
// limit (at most ReadLimit), and either since_id (the oldest records after
// it) or before_id (the newest records before it; the default is the newest
// records of all).
func (s *Server) read(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	v := r.URL.Query()
	q.Limit = s.cfg.ReadLimit
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, "limit: want a positive whole number")
			return
		}
		q.Limit = min(n, s.cfg.ReadLimit)
	}
	if sid := v.Get("since_id"); sid != "" {
		if q.After, err = parseID(sid, "since_id"); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		q.Oldest = true
	}
	if bid := v.Get("before_id"); bid != "" {
		if q.Before, err = parseID(bid, "before_id"); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	// Stats first: an event stored between the two calls is then in the
	// answer or after LastID, never lost to a reader that streams from
	// LastID.
	st, err := s.store.Stats(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if q.Before == 0 || q.Before > st.LastID+1 {
		q.Before = st.LastID + 1
	}
	recs, more, err := s.store.Query(r.Context(), q)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if recs == nil {
		recs = []Record{}
	}
	writeJSON(w, http.StatusOK, LogsResponse{Events: recs, More: more, LastID: st.LastID})
}

func (s *Server) clear(w http.ResponseWriter, r *http.Request) {
	s.clearMu.Lock()
	n, err := s.store.Clear(r.Context())
	var st Stats
	if err == nil {
		st, err = s.store.Stats(r.Context())
	}
	if err == nil {
		s.lastCleared.Store(st.LastID)
		s.clears.Add(1)
	}
	s.clearMu.Unlock()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	s.hub.notify()
	writeJSON(w, http.StatusOK, ClearResponse{Cleared: n})
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	st, err := s.store.Stats(r.Context())
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, Health{Status: "unavailable", Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, Health{Status: "ok", Events: st.Count, LastID: st.LastID})
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	writeJSON(w, http.StatusOK, Info{
		Unblocks:  s.cfg.Unblocks != nil,
		ReadLimit: s.cfg.ReadLimit,
		Ingest:    len(s.keys) > 0,
		User:      p.User,
		Role:      p.Role.String(),
		Auth:      p.Mode.String(),
		CSRFToken: s.auth.csrfToken(p),
		Logout:    p.Mode == AuthLocal || p.Mode == AuthOIDC,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	if err := appendJSON(&b, v); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeRaw(w, status, b.Bytes())
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(body)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	data, _ := json.Marshal(ErrorResponse{Error: msg})
	writeRaw(w, status, data)
}

// idempotency remembers the answers to the last batches that carried an
// Idempotency-Key.
type idempotency struct {
	mu    sync.Mutex
	max   int
	order []string // oldest first, a ring of up to max keys
	next  int
	seen  map[string]idemAnswer
}

type idemAnswer struct {
	status int
	body   []byte
}

func (c *idempotency) init(n int) {
	c.max = n
	c.seen = make(map[string]idemAnswer, n)
}

func (c *idempotency) get(key string) (int, []byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.seen[key]
	return a.status, a.body, ok
}

func (c *idempotency) put(key string, status int, body []byte) {
	if status != http.StatusOK || len(key) > 128 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[key]; ok {
		return
	}
	if len(c.order) < c.max {
		c.order = append(c.order, key)
	} else {
		delete(c.seen, c.order[c.next])
		c.order[c.next] = key
		c.next = (c.next + 1) % c.max
	}
	c.seen[key] = idemAnswer{status: status, body: body}
}
