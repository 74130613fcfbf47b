package events

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{
		"TRACE": LevelTrace, "trace": LevelTrace, "Debug": slog.LevelDebug,
		" info ": slog.LevelInfo, "WARN": slog.LevelWarn, "error": slog.LevelError,
	} {
		got, err := ParseLevel(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "WARNING", "DEBUG-4", "5", "fatal"} {
		_, err := ParseLevel(in)
		require.ErrorIs(t, err, ErrLevel, in)
	}
}

func TestReplaceLevelNames(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level:       LevelTrace - 1,
		ReplaceAttr: ReplaceLevelNames,
	}))
	logger.Log(t.Context(), LevelTrace, "a")
	logger.Log(t.Context(), LevelTrace+2, "b")
	logger.Log(t.Context(), LevelTrace-1, "c")
	logger.Debug("d", slog.Group("g", slog.String("level", "kept")))
	logger.Info("e")
	var levels []string
	for line := range strings.Lines(buf.String()) {
		f := strings.Fields(line)
		require.GreaterOrEqual(t, len(f), 2)
		levels = append(levels, f[1])
	}
	assert.Equal(t, []string{"level=TRACE", "level=TRACE+2", "level=TRACE-1", "level=DEBUG", "level=INFO"}, levels)
	assert.Contains(t, buf.String(), "g.level=kept")
}

func TestLogSink(t *testing.T) {
	var buf bytes.Buffer
	sink := NewLogSink(slog.New(slog.NewJSONHandler(&buf, nil)))
	e := fullEvent()
	sink.Emit(e)
	e.Action, e.Flow, e.Detail = Allowed, 0, ""
	e.Source = netip.AddrPortFrom(e.Source.Addr(), 0) // an address without a port still shows
	sink.Emit(e)
	sink.Emit(Event{Component: DNS, Action: Error})

	var recs []map[string]any
	for line := range strings.Lines(buf.String()) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec))
		recs = append(recs, rec)
	}
	require.Len(t, recs, 3)
	assert.Equal(t, map[string]any{
		"time": "2026-11-24T21:52:26.123456789Z", "level": "WARN", "msg": "blocked",
		KeyHost: "web-1", KeyComponent: "https", KeyProtocol: "tcp",
		KeySource: "10.0.0.2:51234", KeyDest: "[2001:db8::1]:443",
		KeyName: "evil.example", KeyQType: "AAAA", KeyReason: "not allowlisted",
		KeyDetail: "no rule", KeyRule: "*.example", KeyFlow: "18446744073709551615",
	}, recs[0])
	assert.Equal(t, "INFO", recs[1]["level"])
	assert.Equal(t, "allowed", recs[1]["msg"])
	assert.Equal(t, "10.0.0.2:0", recs[1][KeySource])
	assert.NotContains(t, recs[1], KeyFlow)
	assert.NotContains(t, recs[1], KeyDetail)
	assert.Equal(t, "ERROR", recs[2]["level"])
	assert.NotEmpty(t, recs[2]["time"], "an event without a time is logged now")
	assert.NotContains(t, recs[2], KeySource)
}

func TestLogSinkLevels(t *testing.T) {
	var buf bytes.Buffer
	sink := NewLogSink(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	sink.Emit(Event{Component: HTTP, Action: Allowed, Name: "ok.example"})
	sink.Emit(Event{Component: HTTP, Action: Blocked, Name: "no.example"})
	assert.NotContains(t, buf.String(), "ok.example")
	assert.Contains(t, buf.String(), "level=WARN msg=blocked component=http name=no.example")
	assert.NotPanics(t, func() { NewLogSink(nil).Emit(Event{Action: Blocked}) })
}
