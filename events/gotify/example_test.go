package gotify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/events/gotify"
)

func ExampleNew() {
	// A stand-in for a Gotify server.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			Title    string `json:"title"`
			Message  string `json:"message"`
			Priority int    `json:"priority"`
		}
		_ = json.NewDecoder(r.Body).Decode(&m)
		fmt.Println(r.Method, r.URL.Path, r.Header.Get("X-Gotify-Key"))
		fmt.Printf("%s\n%s\n", m.Title, m.Message)
	}))
	defer srv.Close()

	n, err := gotify.New(gotify.Config{URL: srv.URL, Token: "AbC.123", Host: "web-1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	blocked := events.Event{
		Time:        time.Date(2026, 11, 24, 21, 52, 26, 0, time.UTC),
		Component:   events.HTTPS,
		Action:      events.Blocked,
		Protocol:    "tcp",
		Source:      netip.MustParseAddrPort("10.0.0.2:51234"),
		Destination: netip.MustParseAddrPort("93.184.215.14:443"),
		Name:        "evil.example",
		Reason:      events.ReasonNotAllowlisted,
	}
	n.Emit(blocked)
	n.Emit(blocked) // within the backoff: no second message
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// POST /message AbC.123
	// g0efilter web-1: blocked evil.example
	// https blocked evil.example
	// 10.0.0.2:51234 → 93.184.215.14:443 (tcp)
	// reason: not allowlisted
	// time: 2026-11-24T21:52:26Z
}
