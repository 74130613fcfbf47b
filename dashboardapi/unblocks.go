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
}

// Unblocks serves the remote unblock routes: people ask, from the UI, that
// a filter allow a domain or an address; the filter polls for its pending
// requests, adds them to its policy and acknowledges each. Plug it into
// [ServerConfig.Unblocks], which checks the filter key on the filters'
// routes and the person and role on the others; Unblocks does not check
// them itself, but it records who they were in the audit and keeps a key
// bound to one filter to that filter's requests.
//
// Made with [NewUnblocks], requests and the audit are kept in memory: a
// restart forgets them, and a filter's acknowledgement of a request made
// before it is answered [AckUnknown]. Made with [OpenUnblocks], they are
// also written to an [UnblockStore] and read back at start.
type Unblocks struct {
	cfg   UnblocksConfig
	log   *slog.Logger
	store UnblockStore // nil: memory only
	now   func() time.Time
	csrf  *http.CrossOriginProtection

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

// OpenUnblocks is [NewUnblocks] with the requests and audit records kept
// in store, and those it kept read back. Pending requests start their
// expiry anew, since their filters could not fetch them while the
// dashboard was down.
func OpenUnblocks(ctx context.Context, cfg UnblocksConfig, store UnblockStore) (*Unblocks, error) {
	u := NewUnblocks(cfg)
	reqs, recs, err := store.LoadUnblocks(ctx, u.cfg.MaxRecords)
	if err != nil {
		return nil, err
	}
	now := u.now()
	for _, r := range reqs {
		u.reqs[r.ID] = &unblockEntry{req: r, fetched: now}
		u.order = append(u.order, r.ID)
		if r.State == UnblockPending {
			u.pending[r.Hostname+"\x00"+r.Target] = r.ID
		}
	}
	u.audit = recs
	u.store = store
	return u, nil
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
	// Creating an unblock changes what filters allow: refuse what another
	// site's page makes a signed-in browser send. Sec-Fetch-Site or Origin
	// tells a cross-origin request; and a JSON body cannot be sent
	// cross-site without a CORS preflight, which the dashboard never
	// grants. (The Server checks the CSRF token before this.)
	var status int
	var body CreateUnblock
	err := u.csrf.Check(r)
	if err != nil {
		status, err = http.StatusForbidden, fmt.Errorf("refused a cross-origin request: %v", err)
	} else if mt, _, merr := mime.ParseMediaType(r.Header.Get("Content-Type")); merr != nil || mt != "application/json" {
		status, err = http.StatusUnsupportedMediaType, errors.New("want Content-Type: application/json")
	} else if derr := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxCreateBody)).Decode(&body); derr != nil {
		status, err = http.StatusBadRequest, fmt.Errorf(`want {"hostname":"...","target":"..."}: %v`, derr)
	}
	if err != nil {
		u.refuse(who, "", "", err)
		writeError(w, status, err.Error())
		return
	}
	req, status, err := u.create(who, body.Hostname, body.Target)
	if err != nil {
		writeError(w, status, err.Error())
		return
	}
	writeJSON(w, status, req)
}

// Create asks the filter named hostname to allow target, on behalf of
// user (recorded in the audit), as an operator's click in the UI does. It
// returns the new request, or the pending one for the same filter and
// target.
func (u *Unblocks) Create(hostname, target, user string) (UnblockRequest, error) {
	req, _, err := u.create(UnblockAudit{User: cut(user)}, hostname, target)
	return req, err
}

// refuse records a refused request.
func (u *Unblocks) refuse(who UnblockAudit, hostname, target string, err error) {
	rec := who
	rec.Action, rec.Result, rec.Error = AuditRequest, "refused", err.Error()
	rec.Hostname, rec.Target = cut(hostname), cut(target)
	u.mu.Lock()
	rec.Time = u.now()
	u.record(rec)
	u.mu.Unlock()
	u.logAudit(rec)
}

// create makes a request, or finds the pending one, and records it; it
// returns the HTTP status that says which.
func (u *Unblocks) create(who UnblockAudit, rawHostname, rawTarget string) (UnblockRequest, int, error) {
	hostname := strings.TrimSpace(rawHostname)
	if err := checkHostname(hostname); err != nil {
		u.refuse(who, rawHostname, rawTarget, err)
		return UnblockRequest{}, http.StatusBadRequest, err
	}
	kind, target, err := u.ParseTarget(rawTarget)
	if err != nil {
		u.refuse(who, hostname, rawTarget, err)
		return UnblockRequest{}, http.StatusBadRequest, err
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
		u.save(req)
	}
	u.record(rec)
	u.mu.Unlock()
	u.logAudit(expired...)
	u.logAudit(rec)
	if rec.Error != "" {
		return UnblockRequest{}, status, errors.New(rec.Error)
	}
	return req, status, nil
}

// serveFetch serves GET /api/v1/unblocks?hostname=X: the filter's pending
// requests, oldest first. Fetching keeps them from expiring.
func (u *Unblocks) serveFetch(w http.ResponseWriter, r *http.Request) {
	hostname := strings.TrimSpace(r.URL.Query().Get("hostname"))
	if err := checkHostname(hostname); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if f, ok := filterFrom(r.Context()); ok && !f.mayAct(hostname) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("this API key is bound to another filter than %q", cut(hostname)))
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
	f, _ := filterFrom(r.Context())
	for _, a := range body.Acks {
		res, rec := u.ack(a, now, f)
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
func (u *Unblocks) ack(a UnblockAck, now time.Time, f filterIdentity) (UnblockAckResult, UnblockAudit) {
	res := UnblockAckResult{ID: cut(a.ID)}
	rec := UnblockAudit{Time: now, Action: AuditAck, ID: res.ID}
	e, ok := u.reqs[a.ID]
	if !ok || !f.mayAct(e.req.Hostname) { // another filter's request is none of its business
		if ok {
			rec.Hostname, rec.Target, rec.Error = e.req.Hostname, e.req.Target, "refused: the key is bound to another filter"
		}
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
	u.save(e.req)
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
		u.save(e.req)
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
			if u.store != nil {
				if err := u.store.DeleteUnblock(context.Background(), id); err != nil {
					u.log.Error("dashboard: forgotten unblock not deleted", logKeyID, id, logKeyErr, err)
				}
			}
			u.order = append(u.order[:i], u.order[i+1:]...)
			return true
		}
	}
	return false
}

// save writes r to the store, if any. u.mu is held.
func (u *Unblocks) save(r UnblockRequest) {
	if u.store == nil {
		return
	}
	if err := u.store.SaveUnblock(context.Background(), r); err != nil {
		u.log.Error("dashboard: unblock not saved: a restart will forget it", logKeyID, r.ID, logKeyErr, err)
	}
}

// record keeps rec in the audit ring, and in the store. u.mu is held.
func (u *Unblocks) record(rec UnblockAudit) {
	if u.store != nil {
		if err := u.store.AppendAudit(context.Background(), rec, u.cfg.MaxRecords); err != nil {
			u.log.Error("dashboard: unblock audit record not saved", logKeyID, rec.ID, logKeyErr, err)
		}
	}
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

// who fills in the audit fields that say who made r: the person the
// server authenticated, or the filter whose key it checked; never a name a
// client sent.
func (u *Unblocks) who(r *http.Request) UnblockAudit {
	rec := UnblockAudit{Remote: r.RemoteAddr}
	if p, ok := PrincipalFrom(r.Context()); ok {
		rec.User = p.auditName()
	} else if f, ok := filterFrom(r.Context()); ok {
		rec.User = f.auditName()
	}
	if fw, ok := r.Context().Value(forwardedForKey{}).(string); ok {
		rec.ForwardedFor = fw
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
// /32 or /128), either of them maybe limited to a protocol and ports as
// the policy writes it (policy.ParseNameEntry, policy.ParseAddrEntry:
// "tcp/github.com:22", "tcp/198.51.100.7:5432"). It refuses what would allow everything or nearly: "*", a
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
	if withPorts(s) {
		return parsePortTarget(s, minIPv4Bits, minIPv6Bits)
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

// withPorts reports whether s is written as an entry limited to a
// protocol or ports: "tcp/…", "udp/…", or a port after a name, an IPv4
// address or a bracketed IPv6 address.
func withPorts(s string) bool {
	if len(s) > 4 && s[3] == '/' && (strings.EqualFold(s[:3], "tcp") || strings.EqualFold(s[:3], "udp")) {
		return true
	}
	i := strings.LastIndexByte(s, ':')
	return i > 0 && (s[i-1] == ']' || !strings.Contains(s[:i], ":"))
}

// parsePortTarget parses an entry limited to a protocol or ports, as the
// policy writes it ("tcp/198.51.100.7:5432", "tcp/github.com:22",
// "*.example.com:8443"), under the limits of the plain forms.
func parsePortTarget(s string, minIPv4Bits, minIPv6Bits int) (kind, target string, err error) {
	r, err := policy.ParseAddrEntry(s)
	if err == nil {
		if err := checkPrefix(r.Prefix, minIPv4Bits, minIPv6Bits); err != nil {
			return "", "", fmt.Errorf("target %q: %w", cut(s), err)
		}
		return UnblockIP, r.String(), nil
	}
	// Told as an address mistake when what stands before the port looks
	// like an address.
	body := s
	if len(s) > 4 && s[3] == '/' {
		body = s[4:]
	}
	host, _, _ := strings.Cut(body, ":")
	if strings.HasPrefix(body, "[") || looksLikeIP(host) {
		return "", "", fmt.Errorf("target %q: %s", cut(s), strings.TrimPrefix(err.Error(), "policy: "))
	}
	n, err := policy.ParseNameEntry(s)
	if err != nil {
		return "", "", fmt.Errorf("target %q: %s", cut(s), strings.TrimPrefix(err.Error(), "policy: "))
	}
	if err := checkWildcard(n.Pattern); err != nil {
		return "", "", fmt.Errorf("target %q: %w", cut(s), err)
	}
	return UnblockDomain, n.String(), nil
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
