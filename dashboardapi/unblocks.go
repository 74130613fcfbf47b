package dashboardapi

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/publicsuffix"

	"github.com/g0lab/g0efilter/policy"
)

// Defaults of [UnblocksConfig].
const (
	DefaultUnblockExpiry = 24 * time.Hour
	DefaultUnblockMax    = 10000
	DefaultMinIPv4Bits   = 8
	DefaultMinIPv6Bits   = 32
)

// DefaultUserHeaders are the headers an authenticating reverse proxy
// names the signed-in user in: X-Forwarded-User (oauth2-proxy, Traefik
// forward auth), X-Auth-Request-User (oauth2-proxy behind nginx
// auth_request) and Remote-User (Authelia, Authentik).
var DefaultUserHeaders = []string{"X-Forwarded-User", "X-Auth-Request-User", "Remote-User"}

// Limits of the unblock routes.
const (
	maxCreateBody  = 16 << 10
	maxAckBody     = 1 << 20
	maxAcks        = 1000
	maxHostnameLen = 253
	maxAuditText   = 256  // refused input, header values
	maxAckError    = 1024 // a filter's reason
)

// Log attribute keys of the unblock routes.
const (
	logKeyID       = "id"
	logKeyAction   = "action"
	logKeyHostname = "hostname"
	logKeyTarget   = "target"
	logKeyUser     = "user"
	logKeyResult   = "result"
)

// UnblocksConfig configures [Unblocks]. Its zero value works.
type UnblocksConfig struct {
	// Expiry is how long a pending request waits for its filter
	// (UNBLOCK_EXPIRY): one that no filter has fetched for that long,
	// since it was made or last fetched, expires. Zero means 24h.
	Expiry time.Duration
	// Now tells the time. Nil means time.Now.
	Now func() time.Time
	// Logger receives one line per audit record. Nil means discard.
	Logger *slog.Logger
	// MaxRecords bounds both the requests kept and the audit records kept.
	// Beyond it the oldest finished request and the oldest audit record
	// are forgotten; when every request kept is pending, new ones are
	// refused (503). Zero means 10000.
	MaxRecords int
	// MinIPv4Bits and MinIPv6Bits are the shortest prefixes that may be
	// unblocked: a wider one allows too much to grant with a click. Zero
	// means /8 and /32. 0.0.0.0/0 and ::/0 are always refused.
	MinIPv4Bits, MinIPv6Bits int
	// UserHeaders are the request headers that name the user, the first
	// one present recorded in the audit. Nil means [DefaultUserHeaders].
	// The dashboard cannot tell a proxy's header from a client's: the
	// proxy must set or remove them.
	UserHeaders []string
}

// Unblocks serves the remote unblock routes: people ask, from the UI, that
// a filter allow a domain or an address; the filter polls for its pending
// requests, adds them to its policy and acknowledges each. Plug it into
// [ServerConfig.Unblocks], which checks the API key on the filters' routes;
// Unblocks does not check it itself.
//
// Requests and the audit are kept in memory: a restart forgets them, and a
// filter's acknowledgement of a request made before it is answered
// [AckUnknown].
type Unblocks struct {
	cfg  UnblocksConfig
	log  *slog.Logger
	now  func() time.Time
	csrf *http.CrossOriginProtection

	mu      sync.Mutex
	reqs    map[string]*unblockEntry // by ID
	order   []string                 // IDs, oldest first
	pending map[string]string        // hostname+"\x00"+target → ID, pending only
	audit   []UnblockAudit           // a ring of MaxRecords, oldest at auditAt once full
	auditAt int
	created uint64            // requests created
	results map[string]uint64 // acknowledgements recorded, by resulting state
}

// UnblocksStats are counters of [Unblocks] since it was made.
type UnblocksStats struct {
	Created uint64 // requests created (duplicates and refusals not counted)
	Pending int    // requests waiting for their filter now
	Applied uint64 // acknowledged as applied
	Failed  uint64 // acknowledged as failed
}

// Stats returns the counters.
func (u *Unblocks) Stats() UnblocksStats {
	u.mu.Lock()
	defer u.mu.Unlock()
	return UnblocksStats{
		Created: u.created, Pending: len(u.pending),
		Applied: u.results[UnblockApplied], Failed: u.results[UnblockFailed],
	}
}

type unblockEntry struct {
	req     UnblockRequest
	fetched time.Time // the last time its filter fetched it; zero if never
}

var _ http.Handler = (*Unblocks)(nil)

// NewUnblocks makes an Unblocks from cfg.
func NewUnblocks(cfg UnblocksConfig) *Unblocks {
	if cfg.Expiry <= 0 {
		cfg.Expiry = DefaultUnblockExpiry
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxRecords <= 0 {
		cfg.MaxRecords = DefaultUnblockMax
	}
	if cfg.MinIPv4Bits <= 0 {
		cfg.MinIPv4Bits = DefaultMinIPv4Bits
	}
	if cfg.MinIPv6Bits <= 0 {
		cfg.MinIPv6Bits = DefaultMinIPv6Bits
	}
	if cfg.UserHeaders == nil {
		cfg.UserHeaders = DefaultUserHeaders
	}
	u := &Unblocks{
		cfg:     cfg,
		log:     cfg.Logger,
		now:     cfg.Now,
		csrf:    http.NewCrossOriginProtection(),
		reqs:    make(map[string]*unblockEntry),
		pending: make(map[string]string),
	}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	return u
}

// ServeHTTP serves the routes under /api/v1/unblocks; see the package
// documentation.
func (u *Unblocks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch r.URL.Path {
	case "/api/v1/unblocks":
		switch {
		case get:
			u.serveFetch(w, r)
		case r.Method == http.MethodPost:
			u.serveCreate(w, r)
		default:
			notAllowed(w, "GET, POST")
		}
	case "/api/v1/unblocks/ack":
		if r.Method != http.MethodPost {
			notAllowed(w, "POST")
			return
		}
		u.serveAck(w, r)
	case "/api/v1/unblocks/status":
		if !get {
			notAllowed(w, "GET")
			return
		}
		u.serveStatus(w, r)
	case "/api/v1/unblocks/audit":
		if !get {
			notAllowed(w, "GET")
			return
		}
		u.serveAudit(w, r)
	default:
		writeError(w, http.StatusNotFound, "no such unblock route")
	}
}

func notAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, "method not allowed: use "+allow)
}

// serveCreate serves POST /api/v1/unblocks.
func (u *Unblocks) serveCreate(w http.ResponseWriter, r *http.Request) {
	who := u.who(r)
	refuse := func(status int, hostname, target string, err error) {
		rec := who
		rec.Action, rec.Result, rec.Error = AuditRequest, "refused", err.Error()
		rec.Hostname, rec.Target = cut(hostname), cut(target)
		u.mu.Lock()
		rec.Time = u.now()
		u.record(rec)
		u.mu.Unlock()
		u.logAudit(rec)
		writeError(w, status, err.Error())
	}
	// Creating an unblock changes what filters allow, and the browser
	// that asks is signed in at the proxy: refuse what another site's
	// page makes it send. Sec-Fetch-Site or Origin tells a cross-origin
	// request; and a JSON body cannot be sent cross-site without a CORS
	// preflight, which the dashboard never grants.
	if err := u.csrf.Check(r); err != nil {
		refuse(http.StatusForbidden, "", "", fmt.Errorf("refused a cross-origin request: %v", err))
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		refuse(http.StatusUnsupportedMediaType, "", "", errors.New("want Content-Type: application/json"))
		return
	}
	var body CreateUnblock
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxCreateBody))
	if err := dec.Decode(&body); err != nil {
		refuse(http.StatusBadRequest, "", "", fmt.Errorf(`want {"hostname":"...","target":"..."}: %v`, err))
		return
	}
	hostname := strings.TrimSpace(body.Hostname)
	if err := checkHostname(hostname); err != nil {
		refuse(http.StatusBadRequest, body.Hostname, body.Target, err)
		return
	}
	kind, target, err := u.ParseTarget(body.Target)
	if err != nil {
		refuse(http.StatusBadRequest, hostname, body.Target, err)
		return
	}

	rec := who
	rec.Action, rec.Hostname, rec.Target = AuditRequest, hostname, target
	u.mu.Lock()
	now := u.now()
	expired := u.sweep(now)
	rec.Time = now
	var (
		req    UnblockRequest
		status int
	)
	if id, ok := u.pending[hostname+"\x00"+target]; ok {
		req, status = u.reqs[id].req, http.StatusOK
		rec.ID, rec.Result = id, "duplicate"
	} else if !u.makeRoom() {
		rec.Result, rec.Error = "refused", "too many pending unblock requests: wait for filters to pick them up or for them to expire"
		status = http.StatusServiceUnavailable
	} else {
		req = UnblockRequest{
			ID: newUnblockID(), Hostname: hostname, Target: target, Kind: kind,
			Created: now, State: UnblockPending, Updated: now,
		}
		u.reqs[req.ID] = &unblockEntry{req: req}
		u.order = append(u.order, req.ID)
		u.pending[hostname+"\x00"+target] = req.ID
		rec.ID, rec.Result, status = req.ID, "created", http.StatusCreated
		u.created++
	}
	u.record(rec)
	u.mu.Unlock()
	u.logAudit(expired...)
	u.logAudit(rec)
	if rec.Error != "" {
		writeError(w, status, rec.Error)
		return
	}
	writeJSON(w, status, req)
}

// serveFetch serves GET /api/v1/unblocks?hostname=X: the filter's pending
// requests, oldest first. Fetching keeps them from expiring.
func (u *Unblocks) serveFetch(w http.ResponseWriter, r *http.Request) {
	hostname := strings.TrimSpace(r.URL.Query().Get("hostname"))
	if err := checkHostname(hostname); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	u.mu.Lock()
	now := u.now()
	expired := u.sweep(now)
	out := []UnblockRequest{}
	for _, id := range u.order {
		e := u.reqs[id]
		if e.req.State == UnblockPending && e.req.Hostname == hostname {
			e.fetched = now
			out = append(out, e.req)
		}
	}
	u.mu.Unlock()
	u.logAudit(expired...)
	writeJSON(w, http.StatusOK, UnblocksResponse{Requests: out})
}

// serveAck serves POST /api/v1/unblocks/ack.
func (u *Unblocks) serveAck(w http.ResponseWriter, r *http.Request) {
	var body AckUnblocks
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAckBody))
	if err := dec.Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf(`want {"acks":[{"id":"...","applied":true}]}: %v`, err))
		return
	}
	if len(body.Acks) > maxAcks {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("more than %d acks: send them in smaller batches", maxAcks))
		return
	}
	who := u.who(r)
	resp := AckUnblocksResponse{Results: make([]UnblockAckResult, 0, len(body.Acks))}
	recs := make([]UnblockAudit, 0, len(body.Acks))
	u.mu.Lock()
	now := u.now()
	expired := u.sweep(now)
	for _, a := range body.Acks {
		res, rec := u.ack(a, now)
		rec.Remote, rec.User, rec.ForwardedFor = who.Remote, who.User, who.ForwardedFor
		u.record(rec)
		recs = append(recs, rec)
		resp.Results = append(resp.Results, res)
	}
	u.mu.Unlock()
	u.logAudit(expired...)
	u.logAudit(recs...)
	writeJSON(w, http.StatusOK, resp)
}

// ack applies one acknowledgement. An applied or failed request keeps its
// state. An expired one takes the result: a filter that acknowledges it
// did process it, and the status must say what the filter's policy holds.
func (u *Unblocks) ack(a UnblockAck, now time.Time) (UnblockAckResult, UnblockAudit) {
	res := UnblockAckResult{ID: cut(a.ID)}
	rec := UnblockAudit{Time: now, Action: AuditAck, ID: res.ID}
	e, ok := u.reqs[a.ID]
	if !ok {
		res.Result, rec.Result = AckUnknown, AckUnknown
		return res, rec
	}
	rec.Hostname, rec.Target = e.req.Hostname, e.req.Target
	if e.req.State == UnblockApplied || e.req.State == UnblockFailed {
		res.Result, res.State, rec.Result = AckIgnored, e.req.State, AckIgnored
		return res, rec
	}
	if e.req.State == UnblockPending {
		delete(u.pending, e.req.Hostname+"\x00"+e.req.Target)
	}
	e.req.Updated = now
	if a.Applied {
		e.req.State, e.req.Error = UnblockApplied, ""
	} else {
		reason := cutTo(strings.TrimSpace(a.Error), maxAckError)
		if reason == "" {
			reason = "the filter gave no reason"
		}
		e.req.State, e.req.Error = UnblockFailed, reason
		rec.Error = reason
	}
	res.Result, res.State, rec.Result = AckRecorded, e.req.State, e.req.State
	if u.results == nil {
		u.results = map[string]uint64{}
	}
	u.results[e.req.State]++
	return res, rec
}

// serveStatus serves GET /api/v1/unblocks/status[?hostname=X][&id=Y...]:
// the requests kept, oldest first.
func (u *Unblocks) serveStatus(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	hostname := strings.TrimSpace(q.Get("hostname"))
	ids := q["id"]
	u.mu.Lock()
	expired := u.sweep(u.now())
	out := []UnblockRequest{}
	if len(ids) > 0 {
		seen := make(map[string]bool, len(ids))
		for _, id := range ids {
			if e, ok := u.reqs[id]; ok && !seen[id] && (hostname == "" || e.req.Hostname == hostname) {
				seen[id] = true
				out = append(out, e.req)
			}
		}
	} else {
		for _, id := range u.order {
			if e := u.reqs[id]; hostname == "" || e.req.Hostname == hostname {
				out = append(out, e.req)
			}
		}
	}
	u.mu.Unlock()
	u.logAudit(expired...)
	writeJSON(w, http.StatusOK, UnblocksResponse{Requests: out})
}

// serveAudit serves GET /api/v1/unblocks/audit[?hostname=X][&id=Y]: the
// audit records kept, oldest first.
func (u *Unblocks) serveAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	hostname, id := strings.TrimSpace(q.Get("hostname")), q.Get("id")
	u.mu.Lock()
	expired := u.sweep(u.now())
	out := []UnblockAudit{}
	n := len(u.audit)
	for i := range n {
		rec := u.audit[(u.auditAt+i)%n]
		if (hostname == "" || rec.Hostname == hostname) && (id == "" || rec.ID == id) {
			out = append(out, rec)
		}
	}
	u.mu.Unlock()
	u.logAudit(expired...)
	writeJSON(w, http.StatusOK, UnblockAuditResponse{Records: out})
}

// sweep expires the pending requests whose time is up and returns their
// audit records, to log once the lock is released. u.mu is held.
func (u *Unblocks) sweep(now time.Time) []UnblockAudit {
	var out []UnblockAudit
	for _, id := range u.pending {
		e := u.reqs[id]
		last := e.req.Created
		if e.fetched.After(last) {
			last = e.fetched
		}
		deadline := last.Add(u.cfg.Expiry)
		if now.Before(deadline) {
			continue
		}
		delete(u.pending, e.req.Hostname+"\x00"+e.req.Target)
		e.req.State, e.req.Updated = UnblockExpired, deadline
		rec := UnblockAudit{
			Time: deadline, Action: AuditExpire, ID: id,
			Hostname: e.req.Hostname, Target: e.req.Target, Result: UnblockExpired,
		}
		out = append(out, rec)
	}
	slices.SortFunc(out, func(a, b UnblockAudit) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.ID, b.ID))
	})
	for _, rec := range out {
		u.record(rec)
	}
	return out
}

// makeRoom forgets the oldest finished request if MaxRecords are kept, and
// reports whether there is room for one more. u.mu is held.
func (u *Unblocks) makeRoom() bool {
	if len(u.order) < u.cfg.MaxRecords {
		return true
	}
	for i, id := range u.order {
		if u.reqs[id].req.Final() {
			delete(u.reqs, id)
			u.order = append(u.order[:i], u.order[i+1:]...)
			return true
		}
	}
	return false
}

// record keeps rec in the audit ring. u.mu is held.
func (u *Unblocks) record(rec UnblockAudit) {
	if len(u.audit) < u.cfg.MaxRecords {
		u.audit = append(u.audit, rec)
		return
	}
	u.audit[u.auditAt] = rec
	u.auditAt = (u.auditAt + 1) % len(u.audit)
}

func (u *Unblocks) logAudit(recs ...UnblockAudit) {
	for _, rec := range recs {
		level := slog.LevelInfo
		if rec.Result == "refused" || rec.Result == UnblockFailed || rec.Result == AckUnknown {
			level = slog.LevelWarn
		}
		attrs := []any{logKeyAction, rec.Action, logKeyResult, rec.Result}
		for _, kv := range [...][2]string{
			{logKeyID, rec.ID}, {logKeyHostname, rec.Hostname}, {logKeyTarget, rec.Target},
			{logKeyRemote, rec.Remote}, {logKeyUser, rec.User}, {logKeyErr, rec.Error},
		} {
			if kv[1] != "" {
				attrs = append(attrs, kv[0], kv[1])
			}
		}
		u.log.Log(context.Background(), level, "dashboard: unblock", attrs...)
	}
}

// who fills in the audit fields that say who made r.
func (u *Unblocks) who(r *http.Request) UnblockAudit {
	rec := UnblockAudit{Remote: r.RemoteAddr, ForwardedFor: cut(r.Header.Get("X-Forwarded-For"))}
	for _, h := range u.cfg.UserHeaders {
		if v := strings.TrimSpace(r.Header.Get(h)); v != "" {
			rec.User = cut(v)
			break
		}
	}
	return rec
}

// ParseTarget is [ParseUnblockTarget] with the store's MinIPv4Bits and
// MinIPv6Bits.
func (u *Unblocks) ParseTarget(s string) (kind, target string, err error) {
	return ParseUnblockTarget(s, u.cfg.MinIPv4Bits, u.cfg.MinIPv6Bits)
}

// ParseUnblockTarget validates and normalises an unblock target as a
// policy entry: a domain or wildcard (policy.NormalizeDomain) or an IP
// address or CIDR prefix (policy.ParsePrefix; an address alone becomes a
// /32 or /128). It refuses what would allow everything or nearly: "*", a
// wildcard over a public suffix ("*.com", "*.co.uk", "*.github.io") or a
// top-level domain, and prefixes shorter than minIPv4Bits or minIPv6Bits
// (zero or less means [DefaultMinIPv4Bits], [DefaultMinIPv6Bits]),
// 0.0.0.0/0 and ::/0 among them. It returns the kind ([UnblockDomain] or
// [UnblockIP]) and the normalised target. The dashboard checks requests
// with it, and a filter checks them again before it applies one.
func ParseUnblockTarget(s string, minIPv4Bits, minIPv6Bits int) (kind, target string, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "", errors.New("target: missing: give a domain, a wildcard, an IP address or a CIDR prefix")
	}
	ipText := s
	if strings.HasPrefix(ipText, "[") && strings.HasSuffix(ipText, "]") {
		ipText = ipText[1 : len(ipText)-1]
	}
	if p, perr := policy.ParsePrefix(ipText); perr == nil {
		if err := checkPrefix(p, minIPv4Bits, minIPv6Bits); err != nil {
			return "", "", fmt.Errorf("target %q: %w", cut(s), err)
		}
		return UnblockIP, p.String(), nil
	} else if looksLikeIP(s) {
		return "", "", fmt.Errorf("target %q: %s", cut(s), strings.TrimPrefix(perr.Error(), "policy: "))
	}
	d, err := policy.NormalizeDomain(s)
	if err != nil {
		return "", "", fmt.Errorf("target %q: %s", cut(s), strings.TrimPrefix(err.Error(), "policy: "))
	}
	if err := checkWildcard(d); err != nil {
		return "", "", fmt.Errorf("target %q: %w", cut(s), err)
	}
	return UnblockDomain, d, nil
}

func checkPrefix(p netip.Prefix, minIPv4Bits, minIPv6Bits int) error {
	if p.Bits() == 0 {
		return errors.New("allows every address: unblock an address or a narrower prefix")
	}
	if minIPv4Bits <= 0 {
		minIPv4Bits = DefaultMinIPv4Bits
	}
	if minIPv6Bits <= 0 {
		minIPv6Bits = DefaultMinIPv6Bits
	}
	least := minIPv6Bits
	if p.Addr().Is4() {
		least = minIPv4Bits
	}
	if p.Bits() < least {
		return fmt.Errorf("/%d is too wide to unblock remotely (at least /%d): edit the policy file for that", p.Bits(), least)
	}
	return nil
}

// checkWildcard refuses "*" and wildcards that cover a top-level domain or
// a public suffix, under which anyone can register names.
func checkWildcard(d string) error {
	if d == policy.AnyDomain {
		return errors.New("allows every domain: unblock a name or a wildcard below a registered domain")
	}
	base, ok := strings.CutPrefix(d, "*.")
	if !ok {
		return nil
	}
	if !strings.Contains(base, ".") {
		return fmt.Errorf("a wildcard over the top-level domain %q allows too much: unblock a name or a wildcard below a registered domain", base)
	}
	if suffix, _ := publicsuffix.PublicSuffix(base); suffix == base {
		return fmt.Errorf("%q is a public suffix, under which anyone can register names: unblock a name or a wildcard below a registered domain", base)
	}
	return nil
}

// looksLikeIP reports whether s, up to any '/', is made of what addresses
// are made of, so that a mistake in it is told as an address mistake.
func looksLikeIP(s string) bool {
	s, _, _ = strings.Cut(s, "/")
	s = strings.Trim(s, "[]")
	if s == "" {
		return false
	}
	digitsDots := true
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9', c == '.':
		case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F', c == ':':
			digitsDots = false
		default:
			return false
		}
	}
	return digitsDots || strings.Contains(s, ":")
}

// checkHostname accepts a filter's host name as its events carry it: any
// printable text without spaces, up to 253 bytes.
func checkHostname(s string) error {
	switch {
	case s == "":
		return errors.New("hostname: missing: give the filter's HOSTNAME, as its events show it")
	case len(s) > maxHostnameLen:
		return fmt.Errorf("hostname: longer than %d bytes", maxHostnameLen)
	case !utf8.ValidString(s):
		return errors.New("hostname: not valid UTF-8")
	}
	for _, c := range s {
		if unicode.IsSpace(c) || !unicode.IsPrint(c) {
			return fmt.Errorf("hostname: character %q is not allowed", c)
		}
	}
	return nil
}

func cut(s string) string { return cutTo(s, maxAuditText) }

// cutTo shortens s to at most n bytes of valid UTF-8.
func cutTo(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func newUnblockID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
