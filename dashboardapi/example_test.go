package dashboardapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"time"

	"github.com/g0lab/g0efilter/dashboardapi"
	"github.com/g0lab/g0efilter/events"
)

func ExampleServer() {
	srv := dashboardapi.NewServer(dashboardapi.ServerConfig{
		APIKey: "s3cret", // filters present it; check real ones with CheckFilterKey
		// Everyone may read, nobody may clear: a dashboard that something
		// else guards. See AuthConfig for sign-in.
		Auth: dashboardapi.AuthConfig{Mode: dashboardapi.AuthNone, NoneRole: dashboardapi.RoleViewer},
	})
	defer srv.Close()

	body := `[{"time":"2026-11-24T21:52:26Z","host":"web-1","component":"https","action":"blocked","name":"evil.example"},
	          {"time":"2026-11-24T21:52:27Z","component":"dns","action":"permitted"}]`
	req := httptest.NewRequest(http.MethodPost, "/api/v1/logs", strings.NewReader(body))
	req.Header.Set(dashboardapi.APIKeyHeader, "s3cret")
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	fmt.Println(w.Code, w.Body.String())

	w = httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/logs?action=blocked", nil))
	fmt.Println(w.Code, w.Body.String())

	w = httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest(http.MethodDelete, "/api/v1/logs", nil))
	fmt.Println(w.Code, w.Body.String())
	// Output:
	// 200 {"accepted":1,"rejected":[{"index":1,"error":"events: invalid event: action: unknown value \"permitted\""}]}
	// 200 {"events":[{"id":1,"time":"2026-11-24T21:52:26Z","host":"web-1","component":"https","action":"blocked","name":"evil.example"}],"more":false,"last_id":1}
	// 403 {"error":"you may not do this: it takes the operator role"}
}

func ExampleClient() {
	srv := dashboardapi.NewServer(dashboardapi.ServerConfig{APIKey: "s3cret"})
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()

	c, err := dashboardapi.NewClient(dashboardapi.ClientConfig{URL: hs.URL, APIKey: "s3cret"})
	if err != nil {
		fmt.Println(err)
		return
	}
	c.Emit(events.Event{
		Time:        time.Date(2026, 11, 24, 21, 52, 26, 0, time.UTC),
		Component:   events.HTTPS,
		Action:      events.Blocked,
		Destination: netip.MustParseAddrPort("198.51.100.14:443"),
		Name:        "evil.example",
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil { // ships what is queued
		fmt.Println(err)
	}
	fmt.Println("sent", c.Sent(), "dropped", c.Dropped())
	// Output:
	// sent 1 dropped 0
}

func ExampleRecord_MarshalJSON() {
	r := dashboardapi.Record{ID: 42, Event: events.Event{
		Time:      time.Date(2026, 11, 24, 21, 52, 26, 0, time.UTC),
		Component: events.DNS,
		Action:    events.Allowed,
		Name:      "github.com",
		QType:     "A",
	}}
	data, err := json.Marshal(r)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(data))
	// Output:
	// {"id":42,"time":"2026-11-24T21:52:26Z","component":"dns","action":"allowed","name":"github.com","qtype":"A"}
}

func ExampleMemoryStore() {
	ctx := context.Background()
	s := dashboardapi.NewMemoryStore(2) // keeps the newest two
	for _, name := range []string{"a.example", "b.example", "c.example"} {
		s.Append(ctx, []events.Event{{Time: time.Now(), Component: events.DNS, Action: events.Blocked, Name: name}})
	}
	recs, _, _ := s.Query(ctx, dashboardapi.Query{Text: "example"})
	for _, r := range recs {
		fmt.Println(r.ID, r.Event.Name)
	}
	// Output:
	// 2 b.example
	// 3 c.example
}

func ExampleUnblocks() {
	now := time.Date(2026, 11, 24, 22, 0, 0, 0, time.UTC)
	srv := dashboardapi.NewServer(dashboardapi.ServerConfig{
		APIKey:   "s3cret",
		Unblocks: dashboardapi.NewUnblocks(dashboardapi.UnblocksConfig{Now: func() time.Time { return now }}),
		// People come through an authenticating proxy at 192.0.2.1, which
		// names them in Remote-User.
		Auth: dashboardapi.AuthConfig{
			Mode:           dashboardapi.AuthForward,
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")},
			Operators:      []string{"alice"},
		},
	})
	defer srv.Close()
	// The page reads its CSRF token first.
	req := httptest.NewRequest(http.MethodGet, "/api/v1/info", nil)
	req.Header.Set("Remote-User", "alice")
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	var info dashboardapi.Info
	json.Unmarshal(w.Body.Bytes(), &info)

	call := func(method, target, body string, hdr ...string) {
		req := httptest.NewRequest(method, target, strings.NewReader(body)) // from 192.0.2.1
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Remote-User", "alice")
		req.Header.Set(dashboardapi.CSRFHeader, info.CSRFToken)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		var v map[string]any
		json.Unmarshal(w.Body.Bytes(), &v)
		if id, ok := v["id"].(string); ok && id != "" {
			v["id"] = "…" // random
		}
		out, _ := json.Marshal(v)
		fmt.Println(w.Code, string(out))
	}
	call(http.MethodPost, "/api/v1/unblocks", `{"hostname":"web-1","target":"0.0.0.0/0"}`)
	call(http.MethodPost, "/api/v1/unblocks", `{"hostname":"web-1","target":"Evil.Example."}`)
	call(http.MethodGet, "/api/v1/unblocks?hostname=web-1", "")
	// Output:
	// 400 {"error":"target \"0.0.0.0/0\": allows every address: unblock an address or a narrower prefix"}
	// 201 {"created":"2026-11-24T22:00:00Z","hostname":"web-1","id":"…","kind":"domain","state":"pending","target":"evil.example","updated":"2026-11-24T22:00:00Z"}
	// 401 {"error":"missing API key: send it in the X-Api-Key header"}
}

func ExampleClient_PendingUnblocks() {
	u := dashboardapi.NewUnblocks(dashboardapi.UnblocksConfig{})
	srv := dashboardapi.NewServer(dashboardapi.ServerConfig{
		// This key works for the filter web-1 only.
		Keys:     []dashboardapi.FilterKey{{Key: "s3cret", Hostname: "web-1"}},
		Unblocks: u,
	})
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	// What an operator's click in the UI does.
	if _, err := u.Create("web-1", "198.51.100.7", "alice"); err != nil {
		fmt.Println(err)
		return
	}

	// The filter's side.
	c, err := dashboardapi.NewClient(dashboardapi.ClientConfig{URL: hs.URL, APIKey: "s3cret"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(context.Background())
	ctx := context.Background()
	reqs, err := c.PendingUnblocks(ctx, "web-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	var acks []dashboardapi.UnblockAck
	for _, r := range reqs {
		fmt.Println(r.Kind, r.Target, r.State)
		acks = append(acks, dashboardapi.UnblockAck{ID: r.ID, Applied: true}) // once the policy holds it
	}
	if err := c.AckUnblocks(ctx, acks); err != nil {
		fmt.Println(err)
		return
	}
	reqs, _ = c.PendingUnblocks(ctx, "web-1")
	fmt.Println(len(reqs), "pending")
	_, err = c.PendingUnblocks(ctx, "web-2")
	fmt.Println(err)
	// Output:
	// ip 198.51.100.7/32 pending
	// 0 pending
	// dashboardapi: pending unblocks: 403 Forbidden: this API key is bound to another filter than "web-2"
}
