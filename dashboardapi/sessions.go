package dashboardapi

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"sync"
	"time"
)

// Session cookie names: with the __Host- prefix when Secure, which the
// browser then keeps to this host and path "/".
const (
	sessionCookie       = "g0e_session"
	secureSessionCookie = "__Host-g0e_session"
)

// maxSessions bounds the sign-ins kept; beyond it the oldest is dropped.
const maxSessions = 10000

// sessions are the sign-ins of [AuthLocal] and [AuthOIDC], kept in memory
// by the SHA-256 of their cookie: a restart signs everyone out.
type sessions struct {
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	byID map[string]session
}

type session struct {
	user    string
	role    Role
	mode    AuthMode
	created time.Time
	expires time.Time
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, byID: make(map[string]session)}
}

func sessionID(cookie string) string {
	h := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(h[:])
}

// start signs p in and sets the session cookie on w.
func (s *sessions) start(w http.ResponseWriter, p Principal, secure bool) {
	var b [32]byte
	rand.Read(b[:])
	value := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.now()
	s.mu.Lock()
	s.sweep(now)
	if len(s.byID) >= maxSessions {
		var oldest string
		for id, se := range s.byID {
			if oldest == "" || se.created.Before(s.byID[oldest].created) {
				oldest = id
			}
		}
		delete(s.byID, oldest)
	}
	s.byID[sessionID(value)] = session{user: p.User, role: p.Role, mode: p.Mode, created: now, expires: now.Add(s.ttl)}
	s.mu.Unlock()
	name := sessionCookie
	if secure {
		name = secureSessionCookie
	}
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/",
		MaxAge:   int(s.ttl / time.Second),
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode,
	})
}

// sweep forgets expired sessions. s.mu is held.
func (s *sessions) sweep(now time.Time) {
	for id, se := range s.byID {
		if !now.Before(se.expires) {
			delete(s.byID, id)
		}
	}
}

// cookie returns r's session cookie value.
func cookie(r *http.Request) string {
	for _, name := range [...]string{secureSessionCookie, sessionCookie} {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			return c.Value
		}
	}
	return ""
}

// get returns the person r's session cookie signed in.
func (s *sessions) get(r *http.Request) (Principal, error) {
	c := cookie(r)
	if c == "" {
		return Principal{}, errNoCredentials
	}
	id := sessionID(c)
	s.mu.Lock()
	se, ok := s.byID[id]
	if ok && !s.now().Before(se.expires) {
		delete(s.byID, id)
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		return Principal{}, errSessionEnded
	}
	return Principal{User: se.user, Role: se.role, Mode: se.mode, session: id}, nil
}

// end signs r's session out and clears its cookie on w.
func (s *sessions) end(w http.ResponseWriter, r *http.Request) {
	if c := cookie(r); c != "" {
		s.mu.Lock()
		delete(s.byID, sessionID(c))
		s.mu.Unlock()
	}
	for _, name := range [...]string{secureSessionCookie, sessionCookie} {
		http.SetCookie(w, &http.Cookie{
			Name: name, Value: "", Path: "/", MaxAge: -1,
			HttpOnly: true, Secure: name == secureSessionCookie, SameSite: http.SameSiteStrictMode,
		})
	}
}

// endUser signs out every session of user, as when the account is
// removed from the users file.
func (s *sessions) endUser(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, se := range s.byID {
		if se.user == user {
			delete(s.byID, id)
		}
	}
}

// alive reports whether the session of ID hash id is still signed in.
func (s *sessions) alive(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.byID[id]
	return ok && s.now().Before(se.expires)
}
