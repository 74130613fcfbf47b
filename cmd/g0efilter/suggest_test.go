package main

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/events"
)

// writeEvents writes evs as a LOG_FILE does.
func writeEvents(t *testing.T, evs ...events.Event) string {
	t.Helper()
	var b strings.Builder
	for _, e := range evs {
		line, err := json.Marshal(e)
		require.NoError(t, err)
		b.Write(line)
		b.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "events.jsonl")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	return path
}

func TestSuggestCommand(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	log := writeEvents(t,
		events.Event{Time: at, Component: events.HTTPS, Action: events.Blocked, Protocol: "tcp", Name: "github.com",
			Destination: netip.MustParseAddrPort("198.51.100.1:443"), Reason: events.ReasonNotAllowlisted},
		events.Event{Time: at.Add(time.Second), Component: events.Kernel, Action: events.Blocked, Protocol: "udp",
			Destination: netip.MustParseAddrPort("203.0.113.9:53"), Reason: events.ReasonNotAllowlisted},
		events.Event{Time: at.Add(2 * time.Second), Component: events.Kernel, Action: events.Blocked, Protocol: "tcp",
			Destination: netip.MustParseAddrPort("203.0.113.9:443"), Reason: events.ReasonForgedMark},
	)
	code, out, errOut := runCmd(t, nil, "suggest", log)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, `# Suggested by g0efilter suggest from 3 events of `+log+`,
# 2026-12-03 10:00:00 to 2026-12-03 10:00:02 UTC.
# 1 events were no reason to allow anything (denied, malformed, attempts to get around the filter).
# Review every entry before you use it: it allows what the workload did, no more.
allowlist:
  ips:
    - "udp/203.0.113.9:53" # seen 1 time, all blocked
  domains:
    - "github.com" # seen 1 time, all blocked
`, out)

	// The LOG_FILE when no file is given; --diff shows what a policy lacks.
	path := writePolicy(t, "allowlist:\n  domains:\n    - \"github.com\"\n")
	code, out, errOut = runCmd(t, map[string]string{"LOG_FILE": log}, "suggest", "--diff", path)
	assert.Equal(t, 1, code, errOut)
	assert.Equal(t, `--- `+path+`
+++ `+path+` (suggested)
@@ -1,3 +1,5 @@
 allowlist:
   domains:
     - "github.com"
+  ips:
+    - "udp/203.0.113.9:53"
# What each added entry covers:
#   udp/203.0.113.9:53: seen 1 time, all blocked
`, out)

	code, out, _ = runCmd(t, nil, "suggest", "--diff", path, writeEvents(t, events.Event{Time: at, Component: events.DNS,
		Action: events.Blocked, Name: "github.com", Reason: events.ReasonNotAllowlisted}))
	assert.Equal(t, 0, code)
	assert.Equal(t, path+" allows everything the events show\n", out)

	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	require.NoError(t, os.WriteFile(bad, []byte("\nnot json\n"), 0o644))
	code, _, errOut = runCmd(t, nil, "suggest", bad)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, bad+":2: not an event")
	code, _, errOut = runCmd(t, nil, "suggest")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "suggest needs the filter's record (OBSERVED_FILE) or event files (LOG_FILE)")
}
