package main

import (
	"bytes"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/events"
)

// observedEvents are what a short audited run leaves: names by the
// proxies and the resolver, an address reached without a name.
func observedEvents() []events.Event {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	return []events.Event{
		{Time: t0, Component: events.Policy, Action: events.Changed, Reason: events.ReasonAuditMode},
		{Time: t0, Component: events.DNS, Action: events.WouldBlock, Protocol: "udp", Name: "api.example.com", QType: "A",
			Reason: events.ReasonNotAllowlisted, Detail: "answered 198.51.100.7"},
		{Time: t0.Add(time.Second), Component: events.HTTPS, Action: events.WouldBlock, Protocol: "tcp", Name: "api.example.com",
			Destination: netip.MustParseAddrPort("198.51.100.7:443"), Reason: events.ReasonNotAllowlisted},
		{Time: t0.Add(2 * time.Second), Component: events.Kernel, Action: events.WouldBlock, Protocol: "tcp",
			Destination: netip.MustParseAddrPort("203.0.113.9:5432"), Reason: events.ReasonNotAllowlisted},
		{Time: t0.Add(3 * time.Second), Component: events.HTTPS, Action: events.Allowed, Protocol: "tcp", Name: "github.com",
			Destination: netip.MustParseAddrPort("198.51.100.8:443"), Reason: events.ReasonAllowlisted, Rule: "github.com"},
	}
}

// The filter's record survives a restart, and g0efilter suggest reads it
// as it reads the events it was made from.
func TestObserverRecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "observed.json")
	log := slog.New(slog.DiscardHandler)
	o, err := openObserver(path, log)
	require.NoError(t, err)
	require.NoError(t, o.save())
	assert.NoFileExists(t, path, "nothing observed, nothing written")
	evs := observedEvents()
	for _, e := range evs[:3] {
		o.Emit(e)
	}
	require.NoError(t, o.save())
	// Restarted: the record goes on from where it was.
	o, err = openObserver(path, log)
	require.NoError(t, err)
	for _, e := range evs[3:] {
		o.Emit(e)
	}
	require.NoError(t, o.save())

	logFile := filepath.Join(dir, "events.jsonl")
	f, err := events.OpenFile(logFile, events.FileConfig{})
	require.NoError(t, err)
	for _, e := range evs {
		f.Emit(e)
	}
	f.Close()

	fromRecord := suggestOutput(t, map[string]string{"OBSERVED_FILE": path, "LOG_FILE": logFile})
	fromEvents := suggestOutput(t, map[string]string{"LOG_FILE": logFile})
	assert.Equal(t, body(fromEvents), body(fromRecord), "the record suggests what its events do")
	assert.Contains(t, fromRecord, "from 4 events of "+path, "by default, the OBSERVED_FILE")
	assert.Contains(t, body(fromRecord), `"api.example.com"`)
	assert.Contains(t, body(fromRecord), `"tcp/203.0.113.9:5432"`)
	assert.NotContains(t, body(fromRecord), "github.com:", "allowed traffic is suggested as what it is")
	// Both kinds of file at once.
	code, out, errOut := runCmd(t, nil, "suggest", path, logFile)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "from 8 events")
}

// A file that is not a record is set aside, not overwritten and not fatal.
func TestObserverUnreadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "observed.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"version": 99}`), 0o644))
	var logged bytes.Buffer
	o, err := openObserver(path, slog.New(slog.NewTextHandler(&logged, nil)))
	require.NoError(t, err)
	assert.Contains(t, logged.String(), "set aside")
	kept, err := os.ReadFile(path + ".unreadable")
	require.NoError(t, err)
	assert.Equal(t, `{"version": 99}`, string(kept))
	o.Emit(observedEvents()[1])
	require.NoError(t, o.save())
	assert.FileExists(t, path)
	assert.True(t, isObservations(must(os.ReadFile(path))))
	assert.False(t, isObservations([]byte(`{"time":"2026-12-03T10:00:00Z","component":"dns","action":"allowed"}`)))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// suggestOutput runs g0efilter suggest with env and returns its output.
func suggestOutput(t *testing.T, env map[string]string) string {
	t.Helper()
	code, out, errOut := runCmd(t, env, "suggest")
	require.Equal(t, 0, code, errOut)
	return out
}

// body is a suggested policy without its header.
func body(policy string) string {
	_, b, _ := bytes.Cut([]byte(policy), []byte("\nallowlist:"))
	return string(b)
}
