package main

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/g0lab/g0efilter/dashboardapi"
)

// Environment variables of sign-in and filter keys.
const (
	envAPIKeys          = "API_KEYS"
	envAuth             = "AUTH"
	envAuthNoneRole     = "AUTH_NONE_ROLE"
	envUsersFile        = "USERS_FILE"
	envTrustedProxies   = "TRUSTED_PROXIES"
	envUserHeader       = "AUTH_USER_HEADER"
	envOperators        = "AUTH_OPERATORS"
	envViewers          = "AUTH_VIEWERS"
	envSessionTTL       = "SESSION_TTL"
	envSecureCookies    = "SECURE_COOKIES"
	envOIDCIssuer       = "OIDC_ISSUER"
	envOIDCClientID     = "OIDC_CLIENT_ID"
	envOIDCClientSecret = "OIDC_CLIENT_SECRET"
	envOIDCSecretFile   = "OIDC_CLIENT_SECRET_FILE"
	envOIDCRedirectURL  = "OIDC_REDIRECT_URL"
	envOIDCScopes       = "OIDC_SCOPES"
	envOIDCUserClaim    = "OIDC_USER_CLAIM"
)

// errNoAuth is the start-up error of a dashboard told nothing about
// sign-in.
var errNoAuth = errors.New(`not set: choose how people sign in to the dashboard:
      AUTH=local   with USERS_FILE=/data/users; add an account with
                   "dashboard adduser NAME operator" (it asks for the password)
      AUTH=forward behind a proxy that signs people in, with TRUSTED_PROXIES
                   (its addresses) and AUTH_USER_HEADER (default Remote-User)
      AUTH=oidc    with OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET,
                   OIDC_REDIRECT_URL and AUTH_OPERATORS / AUTH_VIEWERS
      AUTH=none    anyone who reaches the port is an operator: only when
                   something else guards it`)

// authConfig is the sign-in part of config.
type authConfig struct {
	Mode           dashboardapi.AuthMode
	NoneRole       dashboardapi.Role
	UsersFile      string
	TrustedProxies []netip.Prefix
	UserHeader     string
	Operators      []string
	Viewers        []string
	SessionTTL     time.Duration
	SecureCookies  string
	OIDC           dashboardapi.OIDCConfig
}

// auth reads AUTH and what the chosen mode needs.
func (p *envParser) auth() authConfig {
	var a authConfig
	mode, ok := p.Get(envAuth)
	if !ok {
		p.Fail(envAuth, "", errNoAuth)
		return a
	}
	switch strings.ToLower(mode) {
	case "none":
		a.Mode, a.NoneRole = dashboardapi.AuthNone, dashboardapi.RoleOperator
		if v, ok := p.Get(envAuthNoneRole); ok {
			r, err := dashboardapi.ParseRole(v)
			if err != nil {
				p.Fail(envAuthNoneRole, v, errors.New("want viewer or operator"))
			}
			a.NoneRole = r
		}
	case "local":
		a.Mode = dashboardapi.AuthLocal
		if a.UsersFile = p.String(envUsersFile); a.UsersFile == "" {
			p.Fail(envUsersFile, "", errors.New(`not set: AUTH=local needs the users file, such as /data/users; add an account with "dashboard adduser NAME operator"`))
		}
	case "forward":
		a.Mode = dashboardapi.AuthForward
		a.UserHeader = p.String(envUserHeader)
		a.Viewers = []string{"*"}
		if _, ok := p.Get(envTrustedProxies); !ok {
			p.Fail(envTrustedProxies, "", errors.New("not set: AUTH=forward believes the user header only from these addresses (the proxy's, such as 172.18.0.2 or 172.18.0.0/16)"))
		}
	case "oidc":
		a.Mode = dashboardapi.AuthOIDC
		a.OIDC = dashboardapi.OIDCConfig{
			Issuer:       p.url(envOIDCIssuer),
			ClientID:     p.String(envOIDCClientID),
			ClientSecret: p.secret(envOIDCClientSecret, envOIDCSecretFile),
			RedirectURL:  p.url(envOIDCRedirectURL),
			UserClaim:    p.String(envOIDCUserClaim),
		}
		if v, ok := p.Get(envOIDCScopes); ok {
			a.OIDC.Scopes = list(v)
		}
		for _, name := range []string{envOIDCIssuer, envOIDCClientID, envOIDCRedirectURL} {
			if _, ok := p.Get(name); !ok {
				p.Fail(name, "", errors.New("not set: AUTH=oidc needs it"))
			}
		}
		_, ops := p.Get(envOperators)
		_, views := p.Get(envViewers)
		if !ops && !views {
			p.Fail(envOperators, "", errors.New(`not set, nor AUTH_VIEWERS: name who may use the dashboard (AUTH_VIEWERS="*" lets in anyone the provider signs in)`))
		}
	default:
		p.Fail(envAuth, mode, errors.New("want local, forward, oidc or none"))
		return a
	}
	a.TrustedProxies = p.proxies(envTrustedProxies)
	if v, ok := p.Get(envOperators); ok {
		a.Operators = list(v)
	}
	if v, ok := p.Get(envViewers); ok {
		a.Viewers = list(v)
	}
	a.SessionTTL = p.duration(envSessionTTL, dashboardapi.DefaultSessionTTL)
	if v, ok := p.Get(envSecureCookies); ok {
		switch v = strings.ToLower(v); v {
		case "auto":
		case "always", "never":
			a.SecureCookies = v
		default:
			p.Fail(envSecureCookies, v, errors.New("want auto, always or never"))
		}
	}
	return a
}

// list splits a comma- or space-separated list.
func list(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

// proxies reads addresses and CIDR prefixes. Loopback and "everyone" are
// refused: the workload shares the dashboard's network namespace and
// reaches it over loopback.
func (p *envParser) proxies(name string) []netip.Prefix {
	v, ok := p.Get(name)
	if !ok {
		return nil
	}
	var out []netip.Prefix
	for _, s := range list(v) {
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				p.Fail(name, v, fmt.Errorf("%q: want an address or a CIDR prefix", s))
				continue
			}
			pf = netip.PrefixFrom(a, a.BitLen())
		}
		pf = pf.Masked()
		switch {
		case pf.Bits() == 0:
			p.Fail(name, v, fmt.Errorf("%q trusts every address: name the proxy's", s))
		case pf.Addr().IsLoopback() || pf.Contains(netip.MustParseAddr("127.0.0.1")) || pf.Contains(netip.IPv6Loopback()):
			p.Fail(name, v, fmt.Errorf("%q holds loopback, which the workload in the filter's namespace reaches too: name the proxy's own address", s))
		default:
			out = append(out, pf)
		}
	}
	return out
}

// keys reads API_KEY and API_KEYS ("key" or "hostname:key", comma- or
// space-separated) and refuses weak ones.
func (p *envParser) keys() (string, []dashboardapi.FilterKey) {
	one := p.String(envAPIKey)
	if one != "" {
		if err := dashboardapi.CheckFilterKey(one); err != nil {
			p.Fail(envAPIKey, "(hidden)", err)
			one = ""
		}
	}
	v, ok := p.Get(envAPIKeys)
	if !ok {
		return one, nil
	}
	var out []dashboardapi.FilterKey
	for i, s := range list(v) {
		k := dashboardapi.FilterKey{Key: s}
		if at := strings.LastIndexByte(s, ':'); at >= 0 {
			k.Hostname, k.Key = s[:at], s[at+1:]
		}
		if err := dashboardapi.CheckFilterKey(k.Key); err != nil {
			p.Fail(envAPIKeys, "(hidden)", fmt.Errorf("key %d: %w", i+1, err))
			continue
		}
		out = append(out, k)
	}
	return one, out
}

// url reads an absolute http or https URL.
func (p *envParser) url(name string) string {
	v, ok := p.Get(name)
	if !ok {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		p.Fail(name, v, errors.New("want an absolute URL such as https://id.example.com"))
		return ""
	}
	return v
}

// secret reads a secret from name, or from the file name2 names.
func (p *envParser) secret(name, fileName string) string {
	if v, ok := p.Get(name); ok {
		return v
	}
	path, ok := p.Get(fileName)
	if !ok {
		return ""
	}
	data, err := os.ReadFile(path)
	if err != nil {
		p.Fail(fileName, path, err)
		return ""
	}
	return strings.TrimSpace(string(data))
}

// duration reads a Go duration more than zero.
func (p *envParser) duration(name string, def time.Duration) time.Duration {
	v, ok := p.Get(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		p.Fail(name, v, errors.New("want a duration more than zero, such as 12h or 30m"))
		return def
	}
	return d
}
