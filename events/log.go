package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// LevelTrace is the level below DEBUG that LOG_LEVEL=TRACE selects: per-packet
// and per-query detail that is too much even for debugging.
const LevelTrace = slog.LevelDebug - 4

// ErrLevel is returned by [ParseLevel] for a name it does not know.
var ErrLevel = errors.New("events: unknown log level")

// ParseLevel reads a level name as LOG_LEVEL gives it: TRACE, DEBUG, INFO,
// WARN or ERROR, in any case, with surrounding space ignored. Anything else,
// including the empty string, is an error wrapping [ErrLevel].
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "TRACE":
		return LevelTrace, nil
	case "DEBUG":
		return slog.LevelDebug, nil
	case "INFO":
		return slog.LevelInfo, nil
	case "WARN":
		return slog.LevelWarn, nil
	case "ERROR":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%w %q: want TRACE, DEBUG, INFO, WARN or ERROR", ErrLevel, s)
}

// ReplaceLevelNames is a [slog.HandlerOptions].ReplaceAttr function that
// writes [LevelTrace] as "TRACE" (and levels near it as "TRACE+1" and so on)
// where slog would write "DEBUG-4". Other attributes pass unchanged.
func ReplaceLevelNames(groups []string, a slog.Attr) slog.Attr {
	if len(groups) != 0 || a.Key != slog.LevelKey {
		return a
	}
	l, ok := a.Value.Any().(slog.Level)
	if !ok || l >= slog.LevelDebug {
		return a
	}
	switch {
	case l == LevelTrace:
		a.Value = slog.StringValue("TRACE")
	case l > LevelTrace:
		a.Value = slog.StringValue(fmt.Sprintf("TRACE+%d", l-LevelTrace))
	default:
		a.Value = slog.StringValue(fmt.Sprintf("TRACE-%d", LevelTrace-l))
	}
	return a
}

// Attribute keys of the records a log sink writes. Attributes whose value
// is empty are left out.
const (
	KeyHost      = "host"      // Event.Host
	KeyComponent = "component" // Event.Component
	KeyProtocol  = "protocol"  // Event.Protocol
	KeySource    = "src"       // Event.Source, as "addr:port"
	KeyDest      = "dst"       // Event.Destination, as "addr:port"
	KeyName      = "name"      // Event.Name
	KeyQType     = "qtype"     // Event.QType
	KeyReason    = "reason"    // Event.Reason
	KeyDetail    = "detail"    // Event.Detail
	KeyRule      = "rule"      // Event.Rule
	KeyFlow      = "flow"      // Event.Flow, as a decimal string
)

// LogLevel returns the level at which a log sink writes an event with
// action a: INFO for [Allowed], WARN for [Blocked], [WouldBlock] and
// [Changed], and ERROR for [Error] or an invalid action. Refused traffic is WARN so that
// LOG_LEVEL=WARN shows what was (or, auditing, would have been) refused
// without the flood of what was let through.
func LogLevel(a Action) slog.Level {
	switch a {
	case Allowed:
		return slog.LevelInfo
	case Blocked, WouldBlock, Changed:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// logSink is the Sink returned by NewLogSink.
type logSink struct{ h slog.Handler }

// NewLogSink returns a Sink that writes each event as one record to logger:
// the message is the action ("allowed", "blocked", "error", "would-block", "changed"), the level is
// [LogLevel] of it, the time is the event's (now if it has none), and the
// attributes use the Key constants of this package. A nil logger gives
// [Discard].
//
// The record is written synchronously, by the logger's handler; a logger
// that writes somewhere slower than stdout belongs behind a [Queue].
func NewLogSink(logger *slog.Logger) Sink {
	if logger == nil {
		return Discard
	}
	return logSink{h: logger.Handler()}
}

func (s logSink) Emit(e Event) {
	ctx := context.Background()
	level := LogLevel(e.Action)
	if !s.h.Enabled(ctx, level) {
		return
	}
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	r := slog.NewRecord(t, level, e.Action.String(), 0)
	str := func(key, v string) {
		if v != "" {
			r.AddAttrs(slog.String(key, v))
		}
	}
	str(KeyHost, e.Host)
	str(KeyComponent, string(e.Component))
	str(KeyProtocol, e.Protocol)
	if e.Source.Addr().IsValid() {
		str(KeySource, e.Source.String())
	}
	if e.Destination.Addr().IsValid() {
		str(KeyDest, e.Destination.String())
	}
	str(KeyName, e.Name)
	str(KeyQType, e.QType)
	str(KeyReason, string(e.Reason))
	str(KeyDetail, e.Detail)
	str(KeyRule, e.Rule)
	if e.Flow != 0 {
		str(KeyFlow, itoa(e.Flow)) // a string, as on the wire: JSON readers lose digits
	}
	_ = s.h.Handle(ctx, r) // a log handler has nowhere to report its own failure
}
