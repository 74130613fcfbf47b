package dashboardapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/g0lab/g0efilter/internal/ratelimit"
)

// Role is what a signed-in person may do.
type Role int

// Roles, weakest first: each can do what the ones before it can.
const (
	// RoleNone may do nothing but sign in.
	RoleNone Role = iota
	// RoleViewer reads events, streams them and sees unblock requests and
	// their audit.
	RoleViewer
	// RoleOperator also clears the events and asks filters for unblocks.
	RoleOperator
)

func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleOperator:
		return "operator"
	}
	return "none"
}

// ParseRole reads "viewer" or "operator".
func ParseRole(s string) (Role, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "viewer":
		return RoleViewer, nil
	case "operator":
		return RoleOperator, nil
	}
	return RoleNone, fmt.Errorf("dashboardapi: role %q: want viewer or operator", s)
}

// AuthMode is how people sign in.
type AuthMode int

// Modes of [AuthConfig].
const (
	// AuthRefuse, the zero value, lets no person in: only /health, the
	// assets and the filters' routes answer.
	AuthRefuse AuthMode = iota
	// AuthNone lets everyone in with [AuthConfig.NoneRole], unsigned. Only
	// for a dashboard that something else guards.
	AuthNone
	// AuthLocal signs people in with a name and password from
	// [AuthConfig.Users], at /login.
	AuthLocal
	// AuthForward takes the user named in [AuthConfig.UserHeader] by an
	// authenticating reverse proxy, from [AuthConfig.TrustedProxies] only.
	AuthForward
	// AuthOIDC signs people in at an OpenID Connect provider
	// ([AuthConfig.OIDC]).
	AuthOIDC
)

func (m AuthMode) String() string {
	return [...]string{"refuse", "none", "local", "forward", "oidc"}[m]
}

// DefaultSessionTTL is how long a sign-in lasts when
// [AuthConfig.SessionTTL] is zero.
const DefaultSessionTTL = 12 * time.Hour

// DefaultUserHeader is the header a forward-auth proxy names the user in
// when [AuthConfig.UserHeader] is empty (Authelia, Authentik; Traefik passes
// it on with authResponseHeaders).
const DefaultUserHeader = "Remote-User"

// CSRFHeader carries the token that [Info.CSRFToken] gives, on every
// request of a person that changes something.
const CSRFHeader = "X-Csrf-Token"

// AuthConfig says how people sign in and what each may do. Its zero value
// lets no person in.
type AuthConfig struct {
	// Mode is how people sign in. Zero is [AuthRefuse].
	Mode AuthMode
	// NoneRole is everyone's role with [AuthNone]. Zero means
	// [RoleOperator], what the dashboard did before it signed people in.
	NoneRole Role
	// Users are the local accounts, for [AuthLocal].
	Users *Users
	// OIDC is the identity provider, for [AuthOIDC]; see [NewOIDC].
	OIDC *OIDC
	// Operators and Viewers name the people of [AuthForward] and
	// [AuthOIDC] by the name their proxy or provider gives. "*" in Viewers
	// means anyone it signed in; someone in neither list is refused (403).
	// Local accounts carry their role in the users file instead.
	Operators, Viewers []string
	// UserHeader is the header that names the user with [AuthForward].
	// Empty means [DefaultUserHeader].
	UserHeader string
	// TrustedProxies are the addresses of the reverse proxies whose
	// UserHeader, X-Forwarded-For and X-Forwarded-Proto are believed.
	// From any other address these headers are ignored (and a user header
	// is logged). Required for AuthForward.
	TrustedProxies []netip.Prefix
	// SessionTTL is how long a sign-in ([AuthLocal], [AuthOIDC]) lasts.
	// Zero means [DefaultSessionTTL].
	SessionTTL time.Duration
	// SecureCookies: "" (auto) marks the session cookie Secure when the
	// browser reached the dashboard over HTTPS (TLS here, an https Origin,
	// or X-Forwarded-Proto from a trusted proxy); "always" always; "never"
	// never, for plain HTTP on another host than localhost.
	SecureCookies string
	// Now tells the time. Nil means time.Now.
	Now func() time.Time
}

// Principal is who made a request.
type Principal struct {
	// User is the person's name, as the sign-in method gives it; empty
	// with [AuthNone].
	User string
	// Role is what the person may do.
	Role Role
	// Mode is how the person signed in.
	Mode AuthMode

	session string // the session's ID hash, binding the CSRF token
}

type principalKey struct{}

// PrincipalFrom returns the person a request of the server's people routes
// was made by.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// auditName is how the audit names p.
func (p Principal) auditName() string {
	if p.Mode == AuthNone {
		return "anonymous (AUTH=none)"
	}
	return p.User
}

// Why a person's request is refused.
var (
	errNoCredentials = errors.New("sign in first")
	errSessionEnded  = errors.New("your sign-in has expired or ended: sign in again")
)

// auth is a Server's people side.
type auth struct {
	cfg      AuthConfig
	log      *slog.Logger
	now      func() time.Time
	csrfKey  [32]byte
	origin   *http.CrossOriginProtection
	sessions *sessions
	logins   *loginLimiter
	warned   *ratelimit.Limiter[string] // logs of user headers from untrusted addresses
}

func newAuth(cfg AuthConfig, log *slog.Logger) *auth {
	if cfg.NoneRole == RoleNone {
		cfg.NoneRole = RoleOperator
	}
	if cfg.UserHeader == "" {
		cfg.UserHeader = DefaultUserHeader
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &auth{
		cfg:      cfg,
		log:      log,
		now:      cfg.Now,
		origin:   http.NewCrossOriginProtection(),
		sessions: newSessions(cfg.SessionTTL, cfg.Now),
		logins:   newLoginLimiter(),
		warned:   ratelimit.New[string](1.0/60, 1),
	}
	rand.Read(a.csrfKey[:])
	if cfg.Users != nil {
		cfg.Users.mu.Lock()
		cfg.Users.onPurge = a.sessions.endUser
		cfg.Users.mu.Unlock()
	}
	return a
}

// authenticate tells who made r.
func (a *auth) authenticate(r *http.Request) (Principal, error) {
	switch a.cfg.Mode {
	case AuthNone:
		return Principal{Role: a.cfg.NoneRole, Mode: AuthNone}, nil
	case AuthLocal, AuthOIDC:
		return a.sessions.get(r)
	case AuthForward:
		return a.forwarded(r)
	}
	return Principal{}, errNoCredentials
}

// forwarded reads the user header, from a trusted proxy only.
func (a *auth) forwarded(r *http.Request) (Principal, error) {
	user := strings.TrimSpace(r.Header.Get(a.cfg.UserHeader))
	if !a.fromTrustedProxy(r) {
		if user != "" {
			if _, ok := a.warned.Allow(clientKey(r), a.now()); ok {
				a.log.Warn("dashboard: ignored a user header from an address that is not a trusted proxy",
					logKeyRemote, r.RemoteAddr, "header", a.cfg.UserHeader, logKeyUser, cut(user))
			}
		}
		return Principal{}, errNoCredentials
	}
	if user == "" {
		return Principal{}, errNoCredentials
	}
	return a.withRole(Principal{User: cut(user), Mode: AuthForward}), nil
}

// withRole gives p the role Operators and Viewers give its user.
func (a *auth) withRole(p Principal) Principal {
	switch {
	case slices.Contains(a.cfg.Operators, p.User):
		p.Role = RoleOperator
	case slices.Contains(a.cfg.Viewers, p.User), slices.Contains(a.cfg.Viewers, "*"):
		p.Role = RoleViewer
	default:
		p.Role = RoleNone
	}
	return p
}

// remoteAddr is r's peer address.
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (a *auth) trusted(addr netip.Addr) bool {
	for _, p := range a.cfg.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func (a *auth) fromTrustedProxy(r *http.Request) bool {
	return a.trusted(remoteAddr(r))
}

// clientAddr is the address of the browser behind r: r's peer, or, when
// that is a trusted proxy, the nearest untrusted address in
// X-Forwarded-For.
func (a *auth) clientAddr(r *http.Request) string {
	addr := remoteAddr(r)
	if !addr.IsValid() {
		return clientKey(r)
	}
	if !a.trusted(addr) {
		return addr.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if h = h.Unmap(); !a.trusted(h) {
			return h.String()
		}
	}
	return addr.String()
}

// forwardedFor is X-Forwarded-For as a trusted proxy set it, or empty.
func (a *auth) forwardedFor(r *http.Request) string {
	if !a.fromTrustedProxy(r) {
		return ""
	}
	return cut(r.Header.Get("X-Forwarded-For"))
}

// secure reports whether the browser reached the dashboard over HTTPS.
func (a *auth) secure(r *http.Request) bool {
	switch a.cfg.SecureCookies {
	case "always":
		return true
	case "never":
		return false
	}
	return r.TLS != nil ||
		strings.HasPrefix(r.Header.Get("Origin"), "https://") ||
		(a.fromTrustedProxy(r) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"))
}

// csrfToken is p's token: an HMAC of its session (or, without one, its
// name) under a key made at start.
func (a *auth) csrfToken(p Principal) string {
	m := hmac.New(sha256.New, a.csrfKey[:])
	fmt.Fprintf(m, "%d\x00%s\x00%s", p.Mode, p.session, p.User)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF refuses a request that changes something unless it comes from
// the dashboard's own page: same origin, and with p's token.
func (a *auth) checkCSRF(r *http.Request, p Principal) error {
	if err := a.origin.Check(r); err != nil {
		return fmt.Errorf("refused a cross-origin request: %v", err)
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		return errors.New("missing CSRF token: send the csrf_token of /api/v1/info in the " + CSRFHeader + " header")
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(a.csrfToken(p))) != 1 {
		return errors.New("wrong CSRF token: reload the page")
	}
	return nil
}

// person lets a request through to next only from a signed-in person with
// at least role; one that changes something must also pass the CSRF check.
// A browser that asks for a page without signing in is sent to sign in.
func (s *Server) person(role Role, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.auth.authenticate(r)
		if err != nil {
			if _, isFilter := s.lookupKey(r.Header.Get(APIKeyHeader)); isFilter {
				writeError(w, http.StatusForbidden, "filter API keys reach only ingest and the unblock poll and ack routes")
				return
			}
			if loc := s.signInURL(); loc != "" && wantsPage(r) {
				http.Redirect(w, r, loc, http.StatusSeeOther)
				return
			}
			msg := err.Error()
			if s.auth.cfg.Mode == AuthRefuse {
				msg = "no sign-in is configured on this dashboard: set AUTH (see the README)"
			}
			writeError(w, http.StatusUnauthorized, msg)
			return
		}
		if p.Role < role {
			writeError(w, http.StatusForbidden, fmt.Sprintf("%s may not do this: it takes the %s role", userOr(p), role))
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := s.auth.checkCSRF(r, p); err != nil {
				writeError(w, http.StatusForbidden, err.Error())
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func userOr(p Principal) string {
	if p.User == "" {
		return "you"
	}
	return fmt.Sprintf("%q (%s)", p.User, p.Role)
}

// wantsPage reports whether r is a browser's page load.
func wantsPage(r *http.Request) bool {
	return r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/api/") &&
		strings.Contains(r.Header.Get("Accept"), "text/html")
}

// signInURL is where a browser signs in, or empty.
func (s *Server) signInURL() string {
	switch s.auth.cfg.Mode {
	case AuthLocal:
		return "login"
	case AuthOIDC:
		return oidcLoginPath[1:]
	}
	return ""
}
