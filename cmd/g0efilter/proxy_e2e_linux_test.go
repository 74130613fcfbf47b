package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/dashboardapi"
	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/internal/e2e"
)

// fam is one address family's view of the harness: the upstream address
// the test names resolve to, and another that none of them resolves to.
type fam struct {
	name    string
	tcp     string
	dest    netip.Addr // where the names live
	other   netip.Addr // an address no name resolves to
	curlArg string
}

var fams = []fam{
	{"IPv4", "tcp4", e2e.Upstream4[1], e2e.Upstream4[2], "-4"},
	{"IPv6", "tcp6", e2e.Upstream6[1], e2e.Upstream6[2], "-6"},
}

// proxyEnv is a harness with web servers and a DNS server upstream, and
// g0efilter in https mode in the box, logging events to a file.
type proxyEnv struct {
	*e2e.Env
	filter *e2e.Filter
	web    *e2e.WebServers
	dns    *e2e.DNSServer
	events string // the LOG_FILE
	store  *dashboardapi.MemoryStore
}

const proxyPolicy = `allowlist:
  domains:
    - "allowed.example"   # exact
    - "*.wild.example"    # subdomains at any depth, not the apex
`

// names are served by the web servers and resolve to both dest addresses.
var names = []string{"allowed.example", "a.wild.example", "b.c.wild.example", "wild.example", "blocked.example"}

func startProxyEnv(t *testing.T, policy string, vars map[string]string) *proxyEnv {
	return startProxyEnvWith(t, policy, vars, nil)
}

// startProxyEnvWith is startProxyEnv with a hook that runs before the
// filter starts and returns more variables for it.
func startProxyEnvWith(t *testing.T, policy string, vars map[string]string, before func(*proxyEnv) map[string]string) *proxyEnv {
	env := e2e.New(t)
	records := map[string][]netip.Addr{}
	for _, n := range names {
		records[n] = []netip.Addr{fams[0].dest, fams[1].dest}
	}
	pe := &proxyEnv{Env: env, web: env.WebServers(names...), dns: env.DNSServer(records)}
	pe.events = filepath.Join(t.TempDir(), "events.jsonl")
	all := map[string]string{
		"DNS_UPSTREAMS": e2e.Upstream4[0].String(),
		"LOG_FILE":      pe.events,
	}
	for k, v := range vars {
		all[k] = v
	}
	if before != nil {
		maps.Copy(all, before(pe))
	}
	pe.filter = env.StartFilter(t, policy, all)
	pe.filter.WaitForOutput("proxies listening")
	return pe
}

// readEvents returns the events in the LOG_FILE so far.
func (pe *proxyEnv) readEvents(t *testing.T) []events.Event {
	t.Helper()
	b, err := os.ReadFile(pe.events)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	var out []events.Event
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var e events.Event
		require.NoError(t, json.Unmarshal([]byte(line), &e), "event line %q", line)
		out = append(out, e)
	}
	return out
}

// waitEvent waits for an event of the proxies about name and a connection
// to dst, and returns the latest.
func (pe *proxyEnv) waitEvent(t *testing.T, name string, action events.Action, dst netip.Addr) events.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs := pe.readEvents(t)
		for _, e := range backward(evs) {
			if e.Name == name && e.Action == action && e.Component != events.Kernel && e.Destination.Addr() == dst {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %v event for %q; events: %+v", action, name, evs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get fetches url from the box with the TLS server name and Host of the
// URL, sending the connection to addr.
func (pe *proxyEnv) get(to netip.Addr, url string) (string, error) {
	resp, err := pe.HTTPClient(to).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, b)
	}
	return string(b), nil
}

// waitAllowed waits until a new HTTPS connection to name is allowed.
func (pe *proxyEnv) waitAllowed(t *testing.T, f fam, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := pe.get(f.dest, "https://"+name+"/")
		if err == nil {
			return
		}
		require.True(t, time.Now().Before(deadline), "%s never allowed: %v", name, err)
		time.Sleep(50 * time.Millisecond)
	}
}

func backward(evs []events.Event) []events.Event {
	out := slices.Clone(evs)
	slices.Reverse(out)
	return out
}

func eachFam(t *testing.T, test func(t *testing.T, f fam)) {
	for _, f := range fams {
		t.Run(f.name, func(t *testing.T) { test(t, f) })
	}
}

func TestProxyAllowAndBlockByName(t *testing.T) {
	pe := startProxyEnv(t, proxyPolicy, nil)
	eachFam(t, func(t *testing.T, f fam) {
		for _, tc := range []struct {
			name    string // sent as SNI and Host
			served  string // what the server says it served; "" means blocked
			rule    string
			eventAs string // the name in the event
		}{
			{"allowed.example", "allowed.example", "allowed.example", "allowed.example"},
			{"a.wild.example", "a.wild.example", "*.wild.example", "a.wild.example"},
			{"b.c.wild.example", "b.c.wild.example", "*.wild.example", "b.c.wild.example"},
			{"ALLOWED.Example.", "allowed.example", "allowed.example", "allowed.example"},
			{"wild.example", "", "", "wild.example"},
			{"blocked.example", "", "", "blocked.example"},
		} {
			for _, scheme := range []string{"https", "http"} {
				body, err := pe.get(f.dest, scheme+"://"+tc.name+"/")
				if tc.served == "" {
					require.Error(t, err, "%s://%s must be blocked", scheme, tc.name)
					e := pe.waitEvent(t, tc.eventAs, events.Blocked, f.dest)
					assert.Equal(t, events.ReasonNotAllowlisted, e.Reason)
					continue
				}
				require.NoError(t, err, "%s://%s", scheme, tc.name)
				assert.Equal(t, "served "+tc.served, body)
				e := pe.waitEvent(t, tc.eventAs, events.Allowed, f.dest)
				assert.Equal(t, tc.rule, e.Rule)
				assert.Equal(t, f.dest, e.Destination.Addr())
				assert.Equal(t, "e2e", e.Host)
			}
		}
	})
}

func TestProxyRefusesWithoutAName(t *testing.T) {
	pe := startProxyEnv(t, proxyPolicy, map[string]string{"PROXY_HELLO_TIMEOUT": "1s"})
	eachFam(t, func(t *testing.T, f fam) {
		dial := func() net.Conn {
			c, err := pe.Dial(f.tcp, netip.AddrPortFrom(f.dest, 443).String(), 2*time.Second)
			require.NoError(t, err)
			t.Cleanup(func() { c.Close() })
			return c
		}
		closed := func(c net.Conn) {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := c.Read(make([]byte, 1))
			require.Error(t, err)
			var ne net.Error
			require.False(t, errors.As(err, &ne) && ne.Timeout(), "the proxy must close the connection")
		}

		// No SNI.
		tc := tls.Client(dial(), &tls.Config{InsecureSkipVerify: true})
		require.Error(t, tc.Handshake())
		// Not TLS.
		c := dial()
		_, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: allowed.example\r\n\r\n"))
		require.NoError(t, err)
		closed(c)
		// Silent: cut off after PROXY_HELLO_TIMEOUT.
		start := time.Now()
		closed(dial())
		assert.Less(t, time.Since(start), 3*time.Second)
		assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond)

		var noName, malformed, timeout int
		deadline := time.Now().Add(5 * time.Second)
		for noName == 0 || malformed == 0 || timeout == 0 {
			noName, malformed, timeout = 0, 0, 0
			for _, e := range pe.readEvents(t) {
				if e.Destination.Addr() != f.dest || e.Action != events.Blocked {
					continue
				}
				switch e.Reason {
				case events.ReasonNoName:
					noName++
				case events.ReasonMalformed:
					malformed++
				case events.ReasonTimeout:
					timeout++
				}
			}
			require.True(t, time.Now().Before(deadline), "events: no name %d, malformed %d, timeout %d", noName, malformed, timeout)
			time.Sleep(20 * time.Millisecond)
		}
		assert.Empty(t, pe.web.Requests(), "nothing may reach the servers")
	})
}

func TestProxyHelloOneByteAtATime(t *testing.T) {
	pe := startProxyEnv(t, proxyPolicy, nil)
	eachFam(t, func(t *testing.T, f fam) {
		c, err := pe.Dial(f.tcp, netip.AddrPortFrom(f.dest, 443).String(), 2*time.Second)
		require.NoError(t, err)
		defer c.Close()
		c.(*net.TCPConn).SetNoDelay(true)
		// A real client whose every write goes out one byte per segment.
		tc := tls.Client(&dribbler{Conn: c}, &tls.Config{ServerName: "a.wild.example", RootCAs: pe.TestCA().Pool()})
		require.NoError(t, tc.Handshake())
		_, err = io.WriteString(tc, "GET / HTTP/1.1\r\nHost: a.wild.example\r\nConnection: close\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		assert.Equal(t, "served a.wild.example", string(body))
	})
}

// dribbler writes one byte at a time until the TLS handshake is done.
type dribbler struct {
	net.Conn
	n int
}

func (d *dribbler) Write(b []byte) (int, error) {
	if d.n > 4096 {
		return d.Conn.Write(b)
	}
	for i := range b {
		if _, err := d.Conn.Write(b[i : i+1]); err != nil {
			return i, err
		}
		d.n++
		time.Sleep(100 * time.Microsecond) // so the bytes leave as separate segments
	}
	return len(b), nil
}

func TestProxyKeepAliveSecondHost(t *testing.T) {
	pe := startProxyEnv(t, proxyPolicy, nil)
	eachFam(t, func(t *testing.T, f fam) {
		c, err := pe.Dial(f.tcp, netip.AddrPortFrom(f.dest, 80).String(), 2*time.Second)
		require.NoError(t, err)
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		for _, host := range []string{"allowed.example", "a.wild.example"} {
			_, err = fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host)
			require.NoError(t, err)
			resp, err := http.ReadResponse(br, nil)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			assert.Equal(t, "served "+host, string(b))
		}
		before := len(pe.web.Requests())
		_, err = fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: blocked.example\r\n\r\n")
		require.NoError(t, err)
		_, err = br.ReadByte()
		require.Error(t, err, "the connection must end")
		assert.Len(t, pe.web.Requests(), before, "the refused request must not reach the server")
		e := pe.waitEvent(t, "blocked.example", events.Blocked, f.dest)
		assert.Equal(t, pe.waitEvent(t, "a.wild.example", events.Allowed, f.dest).Flow, e.Flow)
	})
}

func TestProxyNameMustBelongToDestination(t *testing.T) {
	for _, tc := range []struct {
		check   string
		allowed bool
	}{{"", false}, {"verify", false}, {"trust", true}, {"dial-name", true}} {
		t.Run("DESTINATION_CHECK="+tc.check, func(t *testing.T) {
			pe := startProxyEnv(t, proxyPolicy, map[string]string{"DESTINATION_CHECK": tc.check})
			eachFam(t, func(t *testing.T, f fam) {
				// allowed.example resolves to dest, not to other.
				body, err := pe.get(f.other, "https://allowed.example/")
				if !tc.allowed {
					require.Error(t, err)
					e := pe.waitEvent(t, "allowed.example", events.Blocked, f.other)
					assert.Equal(t, events.ReasonWrongAddress, e.Reason)
					assert.Equal(t, f.other, e.Destination.Addr())
					assert.Contains(t, e.Detail, "not "+f.other.String())
					return
				}
				require.NoError(t, err)
				assert.Equal(t, "served allowed.example", body)
				reqs := pe.web.Requests()
				to := reqs[len(reqs)-1].To.Addr()
				if tc.check == "dial-name" {
					assert.Contains(t, []netip.Addr{fams[0].dest, fams[1].dest}, to, "dialled by name")
				} else {
					assert.Equal(t, f.other, to, "forwarded where the client connected")
				}
			})
		})
	}
}

// echoTLSPort is where an echo server listens upstream for the transfer
// test: a client sends a ClientHello and then anything at all.
const echoTLSPort = 443

const bulkPolicy = "allowlist:\n  domains: [\"bulk.example\"]\n"

func TestProxyLargeTransferIntegrity(t *testing.T) {
	env := e2e.New(t)
	dns := map[string][]netip.Addr{"bulk.example": {fams[0].dest, fams[1].dest}}
	env.DNSServer(dns)
	env.Echo("tcp", fmt.Sprintf(":%d", echoTLSPort))
	f := env.StartFilter(t, bulkPolicy,
		map[string]string{"DNS_UPSTREAMS": e2e.Upstream4[0].String()})
	f.WaitForOutput("proxies listening")
	hello := firstFlight(t, "bulk.example")

	eachFam(t, func(t *testing.T, fm fam) {
		c, err := env.Dial(fm.tcp, netip.AddrPortFrom(fm.dest, echoTLSPort).String(), 2*time.Second)
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write(hello)
		require.NoError(t, err)
		back := make([]byte, len(hello))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadFull(c, back)
		require.NoError(t, err, "the hello must come back from the echo server")
		require.Equal(t, hello, back)
		// Halfway through, a reload removes the name: a new connection is
		// refused while this one carries on; then it comes back.
		checksummed(t, c, 64<<20, func() {
			f.SetPolicy("allowlist:\n  domains: [\"other.example\"]\n")
			waitHello(t, env, fm, hello, false)
			f.SetPolicy(bulkPolicy)
			waitHello(t, env, fm, hello, true)
		})
	})
}

// waitHello waits until a new connection that sends hello is forwarded
// (the echo server sends it back), or refused.
func waitHello(t *testing.T, env *e2e.Env, fm fam, hello []byte, forwarded bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := env.Dial(fm.tcp, netip.AddrPortFrom(fm.dest, echoTLSPort).String(), 2*time.Second)
		require.NoError(t, err)
		c.Write(hello)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = io.ReadFull(c, make([]byte, len(hello)))
		c.Close()
		if (err == nil) == forwarded {
			return
		}
		require.True(t, time.Now().Before(deadline), "a new connection is still forwarded=%v", !forwarded)
		time.Sleep(50 * time.Millisecond)
	}
}

// firstFlight returns the first flight of a real crypto/tls client that asks
// for name.
func firstFlight(t *testing.T, name string) []byte {
	t.Helper()
	client, server := net.Pipe()
	defer client.Close()
	done := make(chan []byte)
	go func() {
		b := make([]byte, 64<<10)
		n, _ := server.Read(b)
		server.Close()
		done <- b[:n]
	}()
	go tls.Client(client, &tls.Config{ServerName: name}).Handshake()
	return <-done
}

// checksummed sends size random bytes through c while reading what comes
// back, and checks that both directions carried the same bytes. Halfway
// through it calls midway, with the connection still open both ways.
func checksummed(t *testing.T, c net.Conn, size int64, midway func()) {
	t.Helper()
	src := rand.NewChaCha8([32]byte{2})
	sent := sha256.New()
	half, resume := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	var sendErr error
	wg.Go(func() {
		defer c.(*net.TCPConn).CloseWrite()
		if _, sendErr = io.CopyN(io.MultiWriter(c, sent), src, size/2); sendErr != nil {
			close(half)
			return
		}
		close(half)
		<-resume
		_, sendErr = io.CopyN(io.MultiWriter(c, sent), src, size-size/2)
	})
	var n int64
	var readErr error
	got := sha256.New()
	wg.Go(func() {
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		n, readErr = io.Copy(got, c)
	})
	<-half
	if midway != nil {
		midway()
	}
	close(resume)
	wg.Wait()
	require.NoError(t, sendErr)
	require.NoError(t, readErr)
	require.Equal(t, size, n)
	require.Equal(t, sent.Sum(nil), got.Sum(nil))
}

func TestProxyReloadDuringDownload(t *testing.T) {
	pe := startProxyEnv(t, proxyPolicy, nil)
	eachFam(t, func(t *testing.T, f fam) {
		pe.filter.SetPolicy(proxyPolicy)
		pe.waitAllowed(t, f, "allowed.example")
		// A download on an allowed name, kept open across two reloads.
		c, err := pe.Dial(f.tcp, netip.AddrPortFrom(f.dest, 443).String(), 2*time.Second)
		require.NoError(t, err)
		defer c.Close()
		tc := tls.Client(c, &tls.Config{ServerName: "allowed.example", RootCAs: pe.TestCA().Pool()})
		tc.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(tc)
		fetch := func() string {
			_, err := io.WriteString(tc, "GET / HTTP/1.1\r\nHost: allowed.example\r\n\r\n")
			require.NoError(t, err)
			resp, err := http.ReadResponse(br, nil)
			require.NoError(t, err)
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			return string(b)
		}
		assert.Equal(t, "served allowed.example", fetch())

		// Remove allowed.example, add blocked.example.
		pe.filter.SetPolicy("allowlist:\n  domains: [\"blocked.example\", \"*.wild.example\"]\n")
		pe.waitAllowed(t, f, "blocked.example")
		_, err = pe.get(f.dest, "https://allowed.example/")
		require.Error(t, err, "a new connection to the removed name must be blocked")
		// The established connection carries on.
		assert.Equal(t, "served allowed.example", fetch())

		// A broken edit changes nothing.
		pe.filter.SetPolicy("allowlist:\n  domains: [\"bad..name\"]\n")
		pe.filter.WaitForOutput("policy not reloaded")
		_, err = pe.get(f.dest, "https://blocked.example/")
		require.NoError(t, err)
		assert.Equal(t, "served allowed.example", fetch())
	})
}

func TestProxyWithCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is not installed; .ci/run installs it")
		}
		t.Skip("curl is not installed")
	}
	pe := startProxyEnv(t, proxyPolicy, nil)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pe.TestCA().Certificate().Raw}), 0o644))
	curl := func(f fam, url, host string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		addr := f.dest.String()
		if f.dest.Is6() {
			addr = "[" + addr + "]"
		}
		port := "443"
		if strings.HasPrefix(url, "http://") {
			port = "80"
		}
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", pe.Box, "curl", "-sS", f.curlArg,
			"--max-time", "5", "--cacert", caFile, "--resolve", host+":"+port+":"+addr, url).CombinedOutput()
		return string(out), err
	}
	eachFam(t, func(t *testing.T, f fam) {
		for _, scheme := range []string{"https", "http"} {
			out, err := curl(f, scheme+"://a.wild.example/", "a.wild.example")
			require.NoError(t, err, out)
			assert.Equal(t, "served a.wild.example", out)
			out, err = curl(f, scheme+"://blocked.example/", "blocked.example")
			require.Error(t, err, "curl %s://blocked.example must fail: %s", scheme, out)
		}
	})
}
