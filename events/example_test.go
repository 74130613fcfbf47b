package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/g0lab/g0efilter/events"
)

func ExampleEvent_MarshalJSON() {
	e := events.Event{
		Time:        time.Date(2026, 11, 24, 21, 52, 26, 0, time.UTC),
		Host:        "web-1",
		Component:   events.HTTPS,
		Action:      events.Blocked,
		Protocol:    "tcp",
		Source:      netip.MustParseAddrPort("10.0.0.2:51234"),
		Destination: netip.MustParseAddrPort("93.184.215.14:443"),
		Name:        "evil.example",
		Reason:      events.ReasonNotAllowlisted,
		Flow:        42,
	}
	data, err := json.Marshal(e)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(data))
	// Output:
	// {"time":"2026-11-24T21:52:26Z","host":"web-1","component":"https","action":"blocked","protocol":"tcp","src_ip":"10.0.0.2","src_port":51234,"dst_ip":"93.184.215.14","dst_port":443,"name":"evil.example","reason":"not allowlisted","flow":"42"}
}

func ExampleEvent_UnmarshalJSON() {
	for _, in := range []string{
		`{"time":"2026-11-24T21:52:26Z","component":"dns","action":"allowed","name":"github.com","qtype":"A"}`,
		`{"time":"2026-11-24T21:52:26Z","component":"dns","action":"permitted"}`,
		`{"time":"2026-11-24T21:52:26Z","component":"kernel","action":"blocked","dst_ip":"10.0.0.256"}`,
	} {
		var e events.Event
		if err := json.Unmarshal([]byte(in), &e); err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(e.Component, e.Action, e.Name, e.QType)
	}
	// Output:
	// dns allowed github.com A
	// events: invalid event: action: unknown value "permitted"
	// events: invalid event: dst_ip: ParseAddr("10.0.0.256"): IPv4 field has value >255
}

func ExampleQueue() {
	slow := events.SinkFunc(func(e events.Event) {
		fmt.Println("delivered", e.Name) // a dashboard client, say
	})
	q := events.NewQueue(slow, 100)
	q.Emit(events.Event{Component: events.HTTP, Action: events.Allowed, Name: "github.com"})
	q.Emit(events.Event{Component: events.HTTP, Action: events.Blocked, Name: "evil.example"})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		fmt.Println(err)
	}
	fmt.Println("dropped", q.Dropped())
	// Output:
	// delivered github.com
	// delivered evil.example
	// dropped 0
}

func ExampleNewBatchQueue() {
	ship := func(batch []events.Event) { // one request per batch, say
		for _, e := range batch {
			fmt.Println("shipped", e.Name)
		}
	}
	q := events.NewBatchQueue(ship, 100, 10)
	q.Emit(events.Event{Component: events.DNS, Action: events.Allowed, Name: "github.com"})
	q.Emit(events.Event{Component: events.DNS, Action: events.Blocked, Name: "evil.example"})
	if err := q.Close(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// shipped github.com
	// shipped evil.example
}

func ExampleMulti() {
	count := 0
	counter := events.SinkFunc(func(events.Event) { count++ })
	printer := events.SinkFunc(func(e events.Event) { fmt.Println(e.Action, e.Name) })
	sink := events.Multi(counter, nil, printer)
	sink.Emit(events.Event{Component: events.DNS, Action: events.Blocked, Name: "evil.example"})
	fmt.Println(count)
	// Output:
	// blocked evil.example
	// 1
}

func ExampleNewLogSink() {
	level, err := events.ParseLevel("trace") // LOG_LEVEL
	if err != nil {
		fmt.Println(err)
		return
	}
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{} // for a stable example
			}
			return events.ReplaceLevelNames(groups, a)
		},
	}))
	logger.Log(context.Background(), events.LevelTrace, "packet seen")

	sink := events.NewLogSink(logger)
	sink.Emit(events.Event{
		Component:   events.HTTPS,
		Action:      events.Blocked,
		Destination: netip.MustParseAddrPort("[2001:db8::1]:443"),
		Name:        "evil.example",
		Reason:      events.ReasonNotAllowlisted,
	})
	// Output:
	// level=TRACE msg="packet seen"
	// level=WARN msg=blocked component=https dst=[2001:db8::1]:443 name=evil.example reason="not allowlisted"
}

func ExampleOpenFile() {
	dir, err := os.MkdirTemp("", "g0efilter")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	file, err := events.OpenFile(filepath.Join(dir, "events.jsonl"), events.FileConfig{MaxSize: 1 << 20})
	if err != nil {
		fmt.Println(err)
		return
	}
	q := events.NewQueue(file, 0) // the data path must not wait for the disk
	q.Emit(events.Event{
		Time:      time.Date(2026, 11, 24, 21, 52, 26, 0, time.UTC),
		Component: events.DNS,
		Action:    events.Allowed,
		Name:      "github.com",
		QType:     "AAAA",
	})
	_ = q.Close(context.Background()) // deliver what is queued, then
	_ = file.Close()                  // close the file

	data, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(string(data))
	fmt.Println(q.Dropped(), file.Errors())
	// Output:
	// {"time":"2026-11-24T21:52:26Z","component":"dns","action":"allowed","name":"github.com","qtype":"AAAA"}
	// 0 0
}

func ExampleNewFlowID() {
	a, b := events.NewFlowID(), events.NewFlowID()
	fmt.Println(a != 0, b != 0, a != b)
	// Output:
	// true true true
}
