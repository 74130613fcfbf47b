package dashboardapi

import (
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/g0lab/g0efilter/internal/ratelimit"
)

// Limits of sign-in attempts: each address may try 10 times at once and
// then once every 6 seconds; each user name may fail 5 times at once and
// then once a minute, from any address.
const (
	loginAddrBurst = 10
	loginAddrEvery = 6 * time.Second
	loginUserBurst = 5
	loginUserEvery = time.Minute
)

// loginLimiter limits sign-in attempts per address and failures per user.
type loginLimiter struct {
	addr, user *ratelimit.Limiter[string]
}

func newLoginLimiter() *loginLimiter {
	return &loginLimiter{
		addr: ratelimit.New[string](1/loginAddrEvery.Seconds(), loginAddrBurst),
		user: ratelimit.New[string](1/loginUserEvery.Seconds(), loginUserBurst),
	}
}

// loginPageCSP is the page's policy: that of the UI, but the form may post
// to the dashboard itself.
const loginPageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · g0efilter dashboard</title>
<link rel="stylesheet" href="assets/app.css">
</head>
<body class="login">
<main class="login-box">
  <h1>g0efilter</h1>
  <form id="login" method="post" action="login">
    <label>User <input id="user" name="user" autocomplete="username" required autofocus value="{{.User}}"></label>
    <label>Password <input id="password" name="password" type="password" autocomplete="current-password" required></label>
    <button id="sign-in" type="submit">Sign in</button>
    {{if .Error}}<p id="login-error" class="login-error" role="alert">{{.Error}}</p>{{end}}
  </form>
</main>
</body>
</html>
`))

type loginView struct{ User, Error string }

func renderLogin(w http.ResponseWriter, status int, v loginView) {
	h := w.Header()
	secureHeaders(h, loginPageCSP)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	loginPage.Execute(w, v)
}

// secureHeaders sets the headers every page carries.
func secureHeaders(h http.Header, csp string) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

func (s *Server) loginRoutes(m *http.ServeMux) {
	if s.auth.cfg.Mode == AuthLocal {
		m.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
			renderLogin(w, http.StatusOK, loginView{})
		})
		m.HandleFunc("POST /login", s.login)
	}
	if s.auth.cfg.Mode == AuthLocal || s.auth.cfg.Mode == AuthOIDC {
		m.Handle("POST /logout", s.person(RoleNone, http.HandlerFunc(s.logout)))
	}
	if s.auth.cfg.Mode == AuthOIDC {
		m.HandleFunc("GET "+oidcLoginPath, s.oidcLogin)
		m.HandleFunc("GET "+oidcCallbackPath, s.oidcCallback)
	}
}

// login serves POST /login: a name and password from the form.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	a := s.auth
	// A page of another site must not sign the browser in as the
	// attacker's account (login CSRF).
	if err := a.origin.Check(r); err != nil {
		renderLogin(w, http.StatusForbidden, loginView{Error: "Refused a sign-in from another site."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	name := strings.TrimSpace(r.PostFormValue("user"))
	password := r.PostFormValue("password")
	now := a.now()
	addr := a.clientAddr(r)
	tooMany := func(wait time.Duration) {
		w.Header().Set("Retry-After", strconv.Itoa(max(int((wait+time.Second-1)/time.Second), 1)))
		a.log.Warn("dashboard: sign-in refused: too many attempts", logKeyRemote, addr, logKeyUser, cut(name))
		renderLogin(w, http.StatusTooManyRequests, loginView{User: name, Error: "Too many attempts: wait a minute and try again."})
	}
	if wait, ok := a.logins.addr.Allow(addr, now); !ok {
		tooMany(wait)
		return
	}
	if wait := a.logins.user.Wait(name, now); wait > 0 {
		tooMany(wait)
		return
	}
	role, ok := RoleNone, false
	if checkUserName(name) == nil && len(password) <= MaxPasswordLen {
		role, ok = a.cfg.Users.verify(name, []byte(password))
	}
	if !ok {
		a.logins.user.Allow(name, now)
		a.log.Warn("dashboard: sign-in failed", logKeyRemote, addr, logKeyUser, cut(name))
		renderLogin(w, http.StatusUnauthorized, loginView{User: name, Error: "Wrong user name or password."})
		return
	}
	a.sessions.start(w, Principal{User: name, Role: role, Mode: AuthLocal}, a.secure(r))
	a.log.Info("dashboard: signed in", logKeyRemote, addr, logKeyUser, name, "role", role.String())
	http.Redirect(w, r, "./", http.StatusSeeOther)
}

// logout serves POST /logout.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	s.auth.sessions.end(w, r)
	s.auth.log.Info("dashboard: signed out", logKeyRemote, s.auth.clientAddr(r), logKeyUser, p.User)
	writeJSON(w, http.StatusOK, struct {
		SignedOut bool `json:"signed_out"`
	}{true})
}
