package events

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fullEvent() Event {
	return Event{
		Time:        time.Date(2026, 11, 24, 21, 52, 26, 123456789, time.UTC),
		Host:        "web-1",
		Component:   HTTPS,
		Action:      Blocked,
		Protocol:    "tcp",
		Source:      netip.MustParseAddrPort("10.0.0.2:51234"),
		Destination: netip.MustParseAddrPort("[2001:db8::1]:443"),
		Name:        "evil.example",
		QType:       "AAAA",
		Reason:      ReasonNotAllowlisted,
		Detail:      "no rule",
		Rule:        "*.example",
		Flow:        18446744073709551615,
	}
}

func TestEventJSONFull(t *testing.T) {
	got, err := json.Marshal(fullEvent())
	require.NoError(t, err)
	assert.Equal(t, `{"time":"2026-11-24T21:52:26.123456789Z","host":"web-1","component":"https","action":"blocked",`+
		`"protocol":"tcp","src_ip":"10.0.0.2","src_port":51234,"dst_ip":"2001:db8::1","dst_port":443,`+
		`"name":"evil.example","qtype":"AAAA","reason":"not allowlisted","detail":"no rule","rule":"*.example",`+
		`"flow":"18446744073709551615"}`, string(got))

	var back Event
	require.NoError(t, json.Unmarshal(got, &back))
	assert.Equal(t, fullEvent(), back)
}

func TestEventJSONMinimal(t *testing.T) {
	zone := time.FixedZone("CET", 3600)
	e := Event{Time: time.Date(2026, 1, 2, 4, 0, 0, 0, zone), Component: Kernel, Action: Allowed}
	got, err := json.Marshal(e)
	require.NoError(t, err)
	assert.Equal(t, `{"time":"2026-01-02T03:00:00Z","component":"kernel","action":"allowed"}`, string(got))

	var back Event
	require.NoError(t, json.Unmarshal(got, &back))
	assert.True(t, e.Time.Equal(back.Time))
	assert.Equal(t, time.UTC, back.Time.Location())
}

func TestEventJSONAcceptsOffsetsAndUnknownKeys(t *testing.T) {
	var e Event
	require.NoError(t, json.Unmarshal([]byte(`{"time":"2026-01-02T04:00:00+01:00","component":"dns","action":"error","extra":[1,2]}`), &e))
	assert.Equal(t, Event{Time: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC), Component: DNS, Action: Error}, e)
}

func TestEventUnmarshalInvalid(t *testing.T) {
	const head = `"time":"2026-01-02T03:00:00Z","component":"dns"`
	tests := []struct {
		name, in, want string
	}{
		{"not an object", `[]`, "invalid event"},
		{"unknown action", `{` + head + `,"action":"maybe"}`, `action: unknown value "maybe"`},
		{"action case", `{` + head + `,"action":"Blocked"}`, `action: unknown value "Blocked"`},
		{"missing action", `{` + head + `}`, "action: missing"},
		{"missing time", `{"component":"dns","action":"allowed"}`, "time: missing"},
		{"bad time", `{"time":"yesterday","component":"dns","action":"allowed"}`, "time: "},
		{"time out of range", `{"time":"0000-01-01T00:00:00+01:00","component":"dns","action":"allowed"}`, "time: "},
		{"missing component", `{"time":"2026-01-02T03:00:00Z","action":"allowed"}`, "component: missing"},
		{"bad src ip", `{` + head + `,"action":"allowed","src_ip":"10.0.0.300"}`, "src_ip: "},
		{"dst ip with port", `{` + head + `,"action":"allowed","dst_ip":"10.0.0.1:80"}`, "dst_ip: "},
		{"port without ip", `{` + head + `,"action":"allowed","dst_port":80}`, "dst_port: given without dst_ip"},
		{"port too large", `{` + head + `,"action":"allowed","src_ip":"10.0.0.1","src_port":65536}`, "src_port: "},
		{"flow as number", `{` + head + `,"action":"allowed","flow":12}`, "flow"},
		{"flow negative", `{` + head + `,"action":"allowed","flow":"-1"}`, "flow"},
		{"time not a string", `{"time":1,"component":"dns","action":"allowed"}`, "time: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := fullEvent()
			err := json.Unmarshal([]byte(tt.in), &e)
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), tt.want)
			assert.Equal(t, fullEvent(), e, "a failed decode leaves the event alone")
		})
	}
}

func TestEventMarshalInvalid(t *testing.T) {
	for name, e := range map[string]Event{
		"zero action":     {Component: DNS},
		"unknown action":  {Component: DNS, Action: 9},
		"empty component": {Action: Allowed},
		"year 10000":      {Component: DNS, Action: Allowed, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := json.Marshal(e)
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
}

func TestActionText(t *testing.T) {
	for _, a := range []Action{Allowed, Blocked, Error, WouldBlock, Changed} {
		text, err := a.MarshalText()
		require.NoError(t, err)
		assert.Equal(t, a.String(), string(text))
		var back Action
		require.NoError(t, back.UnmarshalText(text))
		assert.Equal(t, a, back)
	}
	assert.Equal(t, "would-block", WouldBlock.String())
	assert.True(t, WouldBlock.Refused())
	assert.True(t, Blocked.Refused())
	assert.False(t, Allowed.Refused())
	assert.False(t, Error.Refused())
	assert.False(t, Changed.Refused())
	assert.Equal(t, slog.LevelWarn, LogLevel(WouldBlock))
	var a Action
	err := a.UnmarshalText([]byte(""))
	require.ErrorIs(t, err, ErrInvalid)
	assert.True(t, strings.Contains(err.Error(), "action"))
}

// FuzzEventJSON checks that whatever the decoder accepts encodes, decodes to
// the same event, and encodes to the same bytes again.
func FuzzEventJSON(f *testing.F) {
	seed := func(e Event) {
		data, err := json.Marshal(e)
		require.NoError(f, err)
		f.Add(data)
	}
	seed(fullEvent())
	seed(Event{Component: Kernel, Action: Allowed})
	seed(Event{Component: DNS, Action: Error, Source: netip.MustParseAddrPort("[fe80::1%eth0]:53"), Detail: "bad \xff utf-8 \u2028"})
	f.Add([]byte(`{"time":"2026-01-02T04:00:00.5+01:00","component":"x","action":"blocked","flow":"0","src_ip":"::ffff:1.2.3.4"}`))
	f.Add([]byte(`{"time":"2026-01-02T03:00:00Z","component":"dns","action":"allowed","src_port":0,"dst_ip":"1.1.1.1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var e Event
		if err := json.Unmarshal(data, &e); err != nil {
			var syntax *json.SyntaxError
			if !errors.As(err, &syntax) {
				require.ErrorIs(t, err, ErrInvalid)
			}
			return
		}
		first, err := json.Marshal(e)
		require.NoError(t, err)
		var back Event
		require.NoError(t, json.Unmarshal(first, &back), "%s", first)
		second, err := json.Marshal(back)
		require.NoError(t, err)
		require.Equal(t, string(first), string(second))
		require.True(t, e.Time.Equal(back.Time))
		e.Time, back.Time = time.Time{}, time.Time{}
		require.Equal(t, e, back)
	})
}
