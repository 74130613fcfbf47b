package dashboardapi

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testProvider is a small OpenID Connect provider: it signs in whoever
// user says at once, and insists on PKCE (S256) and the client secret.
type testProvider struct {
	*httptest.Server
	key *rsa.PrivateKey

	mu            sync.Mutex
	user          string
	emailVerified bool
	codes         map[string]providerCode
	exchanged     int
}

type providerCode struct {
	challenge, nonce, redirect, user string
	verified                         bool
}

const (
	testClientID     = "g0efilter-dashboard"
	testClientSecret = "provider-secret"
)

func newTestProvider(t *testing.T) *testProvider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	p := &testProvider{key: key, codes: map[string]providerCode{}, emailVerified: true}
	m := http.NewServeMux()
	m.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                p.URL,
			"authorization_endpoint":                p.URL + "/authorize",
			"token_endpoint":                        p.URL + "/token",
			"jwks_uri":                              p.URL + "/keys",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"code_challenge_methods_supported":      []string{"S256"},
		})
	})
	m.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	m.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != testClientID || q.Get("response_type") != "code" ||
			q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
			http.Error(w, "bad authorization request", http.StatusBadRequest)
			return
		}
		code := randomText()
		p.mu.Lock()
		p.codes[code] = providerCode{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), redirect: q.Get("redirect_uri"), user: p.user, verified: p.emailVerified}
		p.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
	})
	m.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		if id == "" {
			id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
		}
		p.mu.Lock()
		c, ok := p.codes[r.PostFormValue("code")]
		delete(p.codes, r.PostFormValue("code"))
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		if !ok || id != testClientID || secret != testClientSecret || r.PostFormValue("redirect_uri") != c.redirect ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		now := time.Now()
		claims, _ := json.Marshal(map[string]any{
			"iss": p.URL, "sub": "sub-" + c.user, "aud": testClientID, "nonce": c.nonce,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			"email": c.user, "email_verified": c.verified,
		})
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
		require.NoError(t, err)
		jws, err := signer.Sign(claims)
		require.NoError(t, err)
		idToken, err := jws.CompactSerialize()
		require.NoError(t, err)
		p.mu.Lock()
		p.exchanged++
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600, "id_token": idToken})
	})
	p.Server = httptest.NewServer(m)
	t.Cleanup(p.Close)
	return p
}

func (p *testProvider) exchanges() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exchanged
}

func (p *testProvider) signInAs(user string, verified bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.user, p.emailVerified = user, verified
}

func TestOIDC(t *testing.T) {
	provider := newTestProvider(t)
	var srv *Server
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { srv.ServeHTTP(w, r) }))
	t.Cleanup(hs.Close)
	o, err := NewOIDC(context.Background(), OIDCConfig{
		Issuer: provider.URL, ClientID: testClientID, ClientSecret: testClientSecret,
		RedirectURL: hs.URL + "/auth/oidc/callback",
	})
	require.NoError(t, err)
	srv = newTestServer(t, ServerConfig{Auth: AuthConfig{
		Mode: AuthOIDC, OIDC: o,
		Operators: []string{"alice@example.com"}, Viewers: []string{"victor@example.com"},
	}})

	// browser signs in through the provider and returns its cookies and
	// the last answer's status.
	browser := func(t *testing.T) (*http.Client, int) {
		t.Helper()
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		c := &http.Client{Jar: jar}
		resp, err := c.Get(hs.URL + "/auth/oidc/login")
		require.NoError(t, err)
		resp.Body.Close()
		return c, resp.StatusCode
	}
	info := func(t *testing.T, c *http.Client) (Info, int) {
		t.Helper()
		resp, err := c.Get(hs.URL + "/api/v1/info")
		require.NoError(t, err)
		defer resp.Body.Close()
		var i Info
		json.NewDecoder(resp.Body).Decode(&i)
		return i, resp.StatusCode
	}

	t.Run("operator", func(t *testing.T) {
		provider.signInAs("alice@example.com", true)
		c, code := browser(t)
		require.Equal(t, http.StatusOK, code)
		i, code := info(t, c)
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, "alice@example.com", i.User)
		assert.Equal(t, "operator", i.Role)
		assert.Equal(t, "oidc", i.Auth)
		assert.True(t, i.Logout)
	})
	t.Run("viewer", func(t *testing.T) {
		provider.signInAs("victor@example.com", true)
		c, _ := browser(t)
		i, _ := info(t, c)
		assert.Equal(t, "viewer", i.Role)
	})
	t.Run("someone the provider knows but the dashboard does not", func(t *testing.T) {
		provider.signInAs("mallory@example.com", true)
		c, code := browser(t)
		assert.Equal(t, http.StatusForbidden, code)
		_, code = info(t, c)
		assert.Equal(t, http.StatusUnauthorized, code)
	})
	t.Run("an address the provider has not verified", func(t *testing.T) {
		provider.signInAs("alice@example.com", false)
		c, code := browser(t)
		assert.Equal(t, http.StatusForbidden, code)
		_, code = info(t, c)
		assert.Equal(t, http.StatusUnauthorized, code)
	})
	t.Run("a callback this browser did not start", func(t *testing.T) {
		// The victim's browser is handed the attacker's callback URL: its
		// state is unknown to it (login CSRF).
		provider.signInAs("alice@example.com", true)
		attacker := &http.Client{CheckRedirect: func(r *http.Request, _ []*http.Request) error {
			if r.URL.Path == oidcCallbackPath {
				return http.ErrUseLastResponse
			}
			return nil
		}}
		resp, err := attacker.Get(hs.URL + "/auth/oidc/login")
		require.NoError(t, err)
		resp.Body.Close()
		callback := resp.Header.Get("Location")
		require.Contains(t, callback, "/auth/oidc/callback?code=")

		before := provider.exchanges()
		victim, err := cookiejar.New(nil)
		require.NoError(t, err)
		resp, err = (&http.Client{Jar: victim}).Get(callback)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Equal(t, before, provider.exchanges(), "the code was not exchanged")
	})
	t.Run("the provider's error", func(t *testing.T) {
		resp, err := http.Get(hs.URL + "/auth/oidc/callback?error=access_denied&state=x")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
	t.Run("a page load without a session goes to the provider", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, hs.URL+"/", nil)
		req.Header.Set("Accept", "text/html")
		resp, err := noRedirects.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
		assert.Equal(t, "/auth/oidc/login", resp.Header.Get("Location"))
	})
}
