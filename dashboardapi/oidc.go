package dashboardapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Routes of [AuthOIDC], relative to the dashboard's root.
const (
	oidcLoginPath    = "/auth/oidc/login"
	oidcCallbackPath = "/auth/oidc/callback"
	oidcStateCookie  = "g0e_oidc"
	oidcStateTTL     = 10 * time.Minute
	maxOIDCPending   = 10000
)

// OIDCConfig configures [NewOIDC].
type OIDCConfig struct {
	// Issuer is the provider's issuer URL (OIDC_ISSUER); its
	// /.well-known/openid-configuration is read at start.
	Issuer string
	// ClientID and ClientSecret are the dashboard's client at the provider
	// (OIDC_CLIENT_ID, OIDC_CLIENT_SECRET). A public client has no secret:
	// PKCE protects the code either way.
	ClientID, ClientSecret string
	// RedirectURL is the dashboard's callback as browsers reach it,
	// https://dashboard.example.com/auth/oidc/callback (OIDC_REDIRECT_URL),
	// registered at the provider.
	RedirectURL string
	// Scopes asked for besides "openid". Nil means "email", "profile".
	Scopes []string
	// UserClaim is the ID token claim that names the person, matched
	// against [AuthConfig.Operators] and [AuthConfig.Viewers]. Empty means
	// "email", which is taken only when email_verified is not false.
	UserClaim string
	// HTTPClient reaches the provider. Nil means http.DefaultClient.
	HTTPClient *http.Client
}

// OIDC signs people in at an OpenID Connect provider with the
// authorization code flow and PKCE, through github.com/coreos/go-oidc and
// golang.org/x/oauth2. Make it with [NewOIDC].
type OIDC struct {
	cfg      OIDCConfig
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier

	mu      sync.Mutex
	pending map[string]oidcPending // by state
}

type oidcPending struct {
	browser  string // SHA-256 of the state cookie
	verifier string // PKCE
	nonce    string
	expires  time.Time
}

// NewOIDC reads the provider's discovery document and keys.
func NewOIDC(ctx context.Context, cfg OIDCConfig) (*OIDC, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("dashboardapi: oidc: issuer, client ID and redirect URL are required")
	}
	if cfg.Scopes == nil {
		cfg.Scopes = []string{"email", "profile"}
	}
	if cfg.UserClaim == "" {
		cfg.UserClaim = "email"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, cfg.HTTPClient), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("dashboardapi: oidc: %w", err)
	}
	return &OIDC{
		cfg: cfg,
		oauth: oauth2.Config{
			ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			Endpoint: p.Endpoint(), RedirectURL: cfg.RedirectURL,
			Scopes: append([]string{oidc.ScopeOpenID}, cfg.Scopes...),
		},
		verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		pending:  make(map[string]oidcPending),
	}, nil
}

func randomText() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hashText(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// oidcLogin serves GET /auth/oidc/login: off to the provider.
func (s *Server) oidcLogin(w http.ResponseWriter, r *http.Request) {
	o := s.auth.cfg.OIDC
	now := s.auth.now()
	state, browser, verifier, nonce := randomText(), randomText(), oauth2.GenerateVerifier(), randomText()
	o.mu.Lock()
	for k, p := range o.pending {
		if now.After(p.expires) {
			delete(o.pending, k)
		}
	}
	if len(o.pending) >= maxOIDCPending {
		o.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "too many sign-ins under way: try again in a few minutes")
		return
	}
	o.pending[state] = oidcPending{browser: hashText(browser), verifier: verifier, nonce: nonce, expires: now.Add(oidcStateTTL)}
	o.mu.Unlock()
	// Lax, not Strict: the provider sends the browser back here from its
	// own site, and the cookie must come along.
	http.SetCookie(w, &http.Cookie{
		Name: oidcStateCookie, Value: browser, Path: "/auth/oidc/", MaxAge: int(oidcStateTTL / time.Second),
		HttpOnly: true, Secure: s.auth.secure(r), SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, o.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), http.StatusFound)
}

// oidcCallback serves GET /auth/oidc/callback: the provider's answer.
func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) {
	a, o := s.auth, s.auth.cfg.OIDC
	fail := func(status int, msg string, err error) {
		a.log.Warn("dashboard: OIDC sign-in failed", logKeyRemote, a.clientAddr(r), logKeyErr, fmt.Sprint(msg, ": ", err))
		writeError(w, status, "sign-in failed: "+msg)
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		fail(http.StatusUnauthorized, "the provider refused", errors.New(cut(e+" "+q.Get("error_description"))))
		return
	}
	state := q.Get("state")
	o.mu.Lock()
	p, ok := o.pending[state]
	delete(o.pending, state)
	o.mu.Unlock()
	c, err := r.Cookie(oidcStateCookie)
	if !ok || err != nil || hashText(c.Value) != p.browser || a.now().After(p.expires) {
		fail(http.StatusBadRequest, "unknown or expired sign-in: start again", errors.New("state or its cookie does not match"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcStateCookie, Value: "", Path: "/auth/oidc/", MaxAge: -1, HttpOnly: true})
	ctx := oidc.ClientContext(r.Context(), o.cfg.HTTPClient)
	tok, err := o.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(p.verifier))
	if err != nil {
		fail(http.StatusUnauthorized, "the code exchange failed", err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		fail(http.StatusUnauthorized, "no ID token", errors.New("the token answer has no id_token"))
		return
	}
	idt, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		fail(http.StatusUnauthorized, "invalid ID token", err)
		return
	}
	if idt.Nonce != p.nonce {
		fail(http.StatusUnauthorized, "invalid ID token", errors.New("nonce does not match"))
		return
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		fail(http.StatusUnauthorized, "invalid ID token", err)
		return
	}
	user, _ := claims[o.cfg.UserClaim].(string)
	if o.cfg.UserClaim == "email" {
		if v, ok := claims["email_verified"].(bool); ok && !v {
			user = ""
		}
	}
	if user == "" {
		fail(http.StatusForbidden, fmt.Sprintf("the ID token has no %s claim (verified)", o.cfg.UserClaim), errors.New("no user"))
		return
	}
	pr := a.withRole(Principal{User: cut(user), Mode: AuthOIDC})
	if pr.Role == RoleNone {
		a.log.Warn("dashboard: OIDC user is neither an operator nor a viewer", logKeyRemote, a.clientAddr(r), logKeyUser, pr.User)
		writeError(w, http.StatusForbidden, fmt.Sprintf("%q may not use this dashboard: ask to be added to AUTH_OPERATORS or AUTH_VIEWERS", pr.User))
		return
	}
	a.sessions.start(w, pr, a.secure(r))
	a.log.Info("dashboard: signed in", logKeyRemote, a.clientAddr(r), logKeyUser, pr.User, "role", pr.Role.String())
	// A page, not a redirect: the browser came from the provider's site,
	// and would not send a SameSite=Strict cookie along a redirect chain
	// that began there. A new navigation from this page does.
	h := w.Header()
	secureHeaders(h, contentSecurityPolicy)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	fmt.Fprint(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0; url=../../"><title>Signed in</title></head><body><p><a href="../../">Signed in: continue to the dashboard</a></p></body></html>`)
}
