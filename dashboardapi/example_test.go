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
	srv := dashboardapi.NewServer(dashboardapi.ServerConfig{APIKey: "s3cret"})
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
	// Output:
	// 200 {"accepted":1,"rejected":[{"index":1,"error":"events: invalid event: action: unknown value \"permitted\""}]}
	// 200 {"events":[{"id":1,"time":"2026-11-24T21:52:26Z","host":"web-1","component":"https","action":"blocked","name":"evil.example"}],"more":false,"last_id":1}
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
