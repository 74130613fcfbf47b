package dashboardapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
)

// MinKeyBits is the least a filter key must be worth, in random bits: 32
// random bytes, as `openssl rand -hex 32` (64 characters) or
// `openssl rand -base64 32` (44) makes.
const MinKeyBits = 256

// placeholders are keys from examples and documentation, refused whatever
// their length.
var placeholders = []string{"change-me", "changeme", "replace-me", "your-api-key", "example", "placeholder", "secret"}

// ErrWeakKey is a filter key [CheckFilterKey] refuses.
var ErrWeakKey = errors.New("dashboardapi: weak filter key")

// FilterKey is one key a filter may present in the X-Api-Key header.
type FilterKey struct {
	// Key is the secret; see [CheckFilterKey].
	Key string
	// Hostname, when set, binds the key to the filter of that HOSTNAME:
	// with it a filter may post only its own events and poll and
	// acknowledge only its own unblocks. Empty means any filter.
	Hostname string
}

// Fingerprint names the key in logs and the audit without giving it away:
// the first 12 hex digits of its SHA-256.
func (k FilterKey) Fingerprint() string {
	h := sha256.Sum256([]byte(k.Key))
	return hex.EncodeToString(h[:6])
}

// CheckFilterKey refuses a key worth fewer than [MinKeyBits] random bits,
// by the characters it is made of (hex digits are worth 4 bits each, the
// base64 alphabet 6, other printable ASCII 6.5), or one that looks like a
// placeholder ("change-me-to-a-long-random-secret").
func CheckFilterKey(key string) error {
	lower := strings.ToLower(key)
	for _, p := range placeholders {
		if strings.Contains(lower, p) {
			return fmt.Errorf("%w: it looks like the placeholder of an example (%q): make one with `openssl rand -hex 32`", ErrWeakKey, p)
		}
	}
	perChar := 4.0
	for _, c := range key {
		switch {
		case c <= ' ' || c > '~':
			return fmt.Errorf("%w: only printable ASCII without spaces", ErrWeakKey)
		case strings.ContainsRune("0123456789abcdefABCDEF", c):
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', strings.ContainsRune("+/-_=", c):
			perChar = max(perChar, 6)
		default:
			perChar = 6.5
		}
	}
	distinct := map[rune]bool{}
	for _, c := range key {
		distinct[c] = true
	}
	if len(distinct) < 10 {
		return fmt.Errorf("%w: made of %d different characters: not random; make one with `openssl rand -hex 32`", ErrWeakKey, len(distinct))
	}
	// A key of few distinct characters ("aaaa…", "abab…") is not random
	// whatever its length.
	bits := float64(len(key)) * min(perChar, math.Log2(float64(len(distinct)))+2)
	if bits < MinKeyBits {
		return fmt.Errorf("%w: worth about %d random bits, at least %d needed: make one with `openssl rand -hex 32`", ErrWeakKey, int(bits), MinKeyBits)
	}
	return nil
}

type filterKey struct {
	hash        [sha256.Size]byte
	hostname    string
	fingerprint string
}

// filterIdentity is the filter a request of the filters' routes came from.
type filterIdentity struct {
	hostname    string // bound hostname; empty for a key of any filter
	fingerprint string
}

type filterKeyCtx struct{}

func filterFrom(ctx context.Context) (filterIdentity, bool) {
	f, ok := ctx.Value(filterKeyCtx{}).(filterIdentity)
	return f, ok
}

// auditName is how the audit names f.
func (f filterIdentity) auditName() string {
	if f.hostname != "" {
		return "filter " + f.hostname + " (key " + f.fingerprint + ")"
	}
	return "filter (key " + f.fingerprint + ")"
}

// mayAct reports whether f may act as the filter named hostname.
func (f filterIdentity) mayAct(hostname string) bool {
	return f.hostname == "" || f.hostname == hostname
}

// requireKey lets a request through only with a filter key, and tells the
// handler which.
func (s *Server) requireKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.keys) == 0 {
			writeError(w, http.StatusForbidden, "ingest is disabled: the dashboard has no filter API key (set API_KEY)")
			return
		}
		got := r.Header.Get(APIKeyHeader)
		if got == "" {
			writeError(w, http.StatusUnauthorized, "missing API key: send it in the "+APIKeyHeader+" header")
			return
		}
		f, ok := s.lookupKey(got)
		if !ok {
			writeError(w, http.StatusUnauthorized, "wrong API key")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), filterKeyCtx{}, f)))
	})
}

// lookupKey finds the filter key got.
func (s *Server) lookupKey(got string) (filterIdentity, bool) {
	h := sha256.Sum256([]byte(got))
	match := -1
	for i, k := range s.keys { // every key, so the time tells nothing
		if subtle.ConstantTimeCompare(h[:], k.hash[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return filterIdentity{}, false
	}
	k := s.keys[match]
	return filterIdentity{hostname: k.hostname, fingerprint: k.fingerprint}, true
}
