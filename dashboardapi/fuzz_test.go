package dashboardapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// FuzzIngest posts arbitrary bodies: the server must answer with one of
// its statuses, and whatever it stored must read back as valid records.
func FuzzIngest(f *testing.F) {
	for _, seed := range []string{
		`[{"time":"2026-11-24T21:52:26Z","host":"web-1","component":"https","action":"blocked","protocol":"tcp","src_ip":"198.18.0.1","src_port":51234,"dst_ip":"198.51.100.14","dst_port":443,"name":"evil.example","reason":"not allowlisted","flow":"42"}]`,
		`[{"time":"2026-11-24T21:52:26Z","component":"dns","action":"permitted"},{"time":"2026-11-24T21:52:26+02:00","component":"dns","action":"allowed","qtype":"AAAA"}]`,
		`[]`, `{}`, `[1,"x",null]`, `[{"src_port":1}]`, ``,
	} {
		f.Add(seed)
	}
	s := NewServer(ServerConfig{APIKey: testKey, RateRPS: -1, MaxBodyBytes: 64 << 10, Store: NewMemoryStore(100), Auth: AuthConfig{Mode: AuthNone}})
	f.Cleanup(s.Close)
	f.Fuzz(func(t *testing.T, body string) {
		w := do(s, http.MethodPost, "/api/v1/logs", body, APIKeyHeader, testKey)
		switch w.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		w = do(s, http.MethodGet, "/api/v1/logs?limit=5", "")
		var lr LogsResponse
		if err := json.Unmarshal(w.Body.Bytes(), &lr); err != nil {
			t.Fatalf("read back: %v: %s", err, w.Body)
		}
		if !strings.HasPrefix(w.Body.String(), `{"events":[`) {
			t.Fatalf("unexpected read: %s", w.Body)
		}
	})
}
