package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/policy"
)

func loadPolicy(t *testing.T, text string) *policy.Snapshot {
	t.Helper()
	path := filepath.Join(t.TempDir(), filePolicy)
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	p, err := policy.Loader{Path: path}.Load()
	require.NoError(t, err)
	snap, err := policy.Compile(p)
	require.NoError(t, err)
	return snap
}

// TestPolicy checks that the sandbox's policy says what the sites and the
// instructions claim, and that the printed sed commands' edits do what
// they say.
func TestPolicy(t *testing.T) {
	snap := loadPolicy(t, policyYAML)
	for _, s := range sites {
		assert.Equal(t, s.Allowed, matched(snap.MatchHost(s.Name)), s.Name)
	}
	assert.True(t, matched(snap.MatchAddr(dnsAddr4)))
	assert.True(t, matched(snap.MatchAddr(dnsAddr6)))
	for _, a := range []netip.Addr{rawAddr4, rawAddr6, siteAddr4, siteAddr6} {
		assert.False(t, matched(snap.MatchAddr(a)), a)
	}

	// What uncommentCommand's sed does: the first "# - entry" loses its
	// "# ".
	edited := policyYAML
	for _, entry := range []string{`"blocked.sandbox.test"`, `"` + rawAddr4.String() + `"`} {
		require.Contains(t, edited, "# - "+entry)
		edited = strings.Replace(edited, "# - "+entry, "- "+entry, 1)
		assert.Contains(t, uncommentCommand("", "/p.yaml", entry), "'s|# - "+entry+"|- "+entry+"|' /p.yaml")
	}
	snap = loadPolicy(t, edited)
	assert.True(t, matched(snap.MatchHost("blocked.sandbox.test")))
	assert.False(t, matched(snap.MatchHost("tracker.sandbox.test")))
	assert.True(t, matched(snap.MatchAddr(rawAddr4)))
}

// TestForwarder forwards to an echo server on loopback and checks that
// Close ends a connection that is still open.
func TestForwarder(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); _ = c.Close() }()
		}
	}()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var d net.Dialer
	f := &forwarder{Listener: ln, Target: echo.Addr().String(), Dial: d.DialContext}
	f.Start()

	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(buf))

	f.Close() // returns only once the open connection is ended
	_, err = c.Read(buf)
	assert.Error(t, err)
	_, err = net.Dial("tcp", ln.Addr().String())
	assert.Error(t, err, "still accepting after Close")
}

// TestForwarderDialFails closes the client's connection when the target
// cannot be reached.
func TestForwarderDialFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &forwarder{Listener: ln, Target: "x", Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, io.ErrUnexpectedEOF
	}}
	f.Start()
	defer f.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF)
}

func TestInstructionsNameEverything(t *testing.T) {
	info := Info{Dashboard: "http://127.0.0.1:8081", Box: "g0e-sbx-1-box", Net: "g0e-sbx-1-net", Dir: "/tmp/sbx", User: "sandbox", Password: "0123abcd",
		Filter: "/tmp/sbx/g0efilter"}
	out := instructions(info, 0, "sudo ")
	for _, want := range []string{
		"http://127.0.0.1:8081",
		"sign in as sandbox with the password 0123abcd",
		"sudo ip netns exec g0e-sbx-1-box curl --cacert /tmp/sbx/ca.pem https://allowed.sandbox.test/",
		"sudo ip netns exec g0e-sbx-1-box curl --cacert /tmp/sbx/ca.pem https://blocked.sandbox.test/",
		"sudo ip netns exec g0e-sbx-1-box curl http://198.18.100.9:9000/",
		`sudo sed -i 's|# - "blocked.sandbox.test"|- "blocked.sandbox.test"|' /tmp/sbx/policy.yaml`,
		"every 2s",
		"sudo /tmp/sbx/g0efilter suggest --diff /tmp/sbx/policy.yaml /tmp/sbx/events.jsonl",
		`sudo sed -i 's|mode: audit|mode: enforce|' /tmp/sbx/policy.yaml`,
	} {
		assert.Contains(t, out, want)
	}
}

// Commands that need root say sudo only where it is needed and there.
func TestInstructionsSayTheSudoNeeded(t *testing.T) {
	info := Info{Dashboard: "http://127.0.0.1:8081", Box: "g0e-sbx-1-box", Net: "g0e-sbx-1-net", Dir: "/tmp/sbx"}
	have := func(string) (string, error) { return "/usr/bin/sudo", nil }
	lack := func(string) (string, error) { return "", exec.ErrNotFound }
	env := func(uid string) func(string) string {
		return func(k string) string {
			if k == "SUDO_UID" {
				return uid
			}
			return ""
		}
	}
	for _, tt := range []struct {
		name     string
		getenv   func(string) string
		lookPath func(string) (string, error)
		want     string
	}{
		{"started through sudo", env("1000"), have, "sudo "},
		{"root's own shell", env(""), have, ""},
		{"no sudo installed", env("1000"), lack, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sudo := rootPrefix(tt.getenv, tt.lookPath)
			assert.Equal(t, tt.want, sudo)
			out := instructions(info, 0, sudo)
			assert.Contains(t, out, "\n  "+tt.want+"ip netns exec g0e-sbx-1-box curl http://198.18.100.9:9000/\n")
			assert.Contains(t, out, "\n  "+tt.want+"sed -i ")
			if tt.want == "" {
				assert.NotContains(t, out, "sudo")
			}
		})
	}
	assert.Contains(t, needsRoot(have), `sudo env "PATH=$PATH" go run ./examples/sandbox`)
	assert.NotContains(t, needsRoot(lack), "sudo")
}

// The first failed write stops the sandbox, once; later ones are dropped.
func TestStopOnError(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer w.Close()
	var stops []error
	out := &stopOnError{w: w, stop: func(err error) { stops = append(stops, err) }}
	_, err = fmt.Fprintln(out, "up")
	require.NoError(t, err)
	assert.Empty(t, stops)
	r.Close()
	signal.Ignore(syscall.SIGPIPE) // as mainCode does; else the test binary could die of it
	for range 3 {
		_, err = fmt.Fprintln(out, "stopping")
		assert.NoError(t, err)
	}
	require.Len(t, stops, 1)
	assert.ErrorIs(t, stops[0], syscall.EPIPE)
}

// matched reports the verdict of a Match method, for assertions.
func matched[T any](_ T, ok bool) bool { return ok }
