package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/g0lab/g0efilter/internal/e2e"
	"github.com/g0lab/g0efilter/internal/nsdial"
)

// The abuse tests run short in every test run; with G0E_SOAK=1 they run
// at the sizes of docs/PERFORMANCE.md ("Under abuse"), for minutes.
const envSoak = "G0E_SOAK"

func soak() bool { return os.Getenv(envSoak) == "1" }

// sized returns short, or long under G0E_SOAK=1.
func sized[T any](short, long T) T {
	if soak() {
		return long
	}
	return short
}

const abuseName = "allowed.example"

// abuseEnv is a filter in https mode allowing abuseName, which resolves to
// Upstream4[1] and Upstream6[1], where echo servers listen on ports 80 and
// 443: an allowed connection gets back what it sends, so that no TLS or
// HTTP server's work is measured with the filter's.
type abuseEnv struct {
	*e2e.Env
	noFile uint64 // the descriptor limit of the test and the filter
	filter *e2e.Filter
	dialer *nsdial.Dialer
	hello  []byte // a ClientHello for abuseName
}

func startAbuseEnv(t *testing.T, vars map[string]string) *abuseEnv {
	t.Helper()
	env := e2e.New(t)
	// Many short connections from the box: ports and TIME_WAIT are the
	// box namespace's own.
	for _, kv := range []string{"net.ipv4.ip_local_port_range=1024 65535", "net.ipv4.tcp_tw_reuse=1"} {
		out, err := exec.Command("ip", "netns", "exec", env.Box, "sysctl", "-qw", kv).CombinedOutput()
		require.NoError(t, err, "sysctl %s: %s", kv, out)
	}
	env.DNSServer(map[string][]netip.Addr{abuseName: {e2e.Upstream4[1], e2e.Upstream6[1]}})
	memEcho(t, env, ":443")
	memEcho(t, env, ":80")
	all := map[string]string{
		"DNS_UPSTREAMS": e2e.Upstream4[0].String(),
		"METRICS_ADDR":  ":9464",
		"LOG_LEVEL":     "INFO",
	}
	for k, v := range vars {
		all[k] = v
	}
	ae := &abuseEnv{Env: env, hello: recordHello(t, abuseName), noFile: raiseNoFile(t)}
	ae.filter = env.StartFilter(t, "allowlist:\n  domains: [\""+abuseName+"\"]\n", all)
	ae.filter.WaitForOutput("proxies listening")
	ae.dialer = env.BoxDialer(net.Dialer{Timeout: 10 * time.Second}, 16)
	return ae
}

// memEcho is an echo server on addr in the upstream namespace that copies
// through a small buffer. (Env.Echo splices, which holds a pipe, two more
// descriptors, per connection waiting to read: too many for 10,000 idle
// connections.)
func memEcho(t *testing.T, env *e2e.Env, addr string) {
	t.Helper()
	ln := env.Listen("tcp", addr)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				buf := make([]byte, 2048)
				for {
					n, err := c.Read(buf)
					if _, werr := c.Write(buf[:n]); err != nil || werr != nil {
						break
					}
				}
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// raiseNoFile raises the test process's descriptor limit to its hard
// limit, for the clients and echo servers of thousands of connections, and
// returns it; the filter, started after, inherits it. (Raising the hard
// limit needs CAP_SYS_RESOURCE, which a container may lack.)
func raiseNoFile(t *testing.T) uint64 {
	t.Helper()
	var old unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &old))
	if old.Cur < old.Max {
		require.NoError(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: old.Max, Max: old.Max}))
		t.Cleanup(func() { _ = unix.Setrlimit(unix.RLIMIT_NOFILE, &old) })
	}
	return old.Max
}

// recordHello returns the ClientHello crypto/tls sends for name.
func recordHello(t *testing.T, name string) []byte {
	t.Helper()
	client, server := net.Pipe()
	defer server.Close()
	go func() {
		_ = tls.Client(client, &tls.Config{ServerName: name, InsecureSkipVerify: true}).Handshake()
		client.Close()
	}()
	require.NoError(t, server.SetReadDeadline(time.Now().Add(5*time.Second)))
	hdr := make([]byte, 5)
	_, err := io.ReadFull(server, hdr)
	require.NoError(t, err)
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	_, err = io.ReadFull(server, body)
	require.NoError(t, err)
	return append(hdr, body...)
}

// target is where a client in the box means to go; abuseName resolves to
// it, its address is not allowlisted, so the kernel sends it to a proxy.
func target(port uint16, v6 bool) string {
	if v6 {
		return netip.AddrPortFrom(e2e.Upstream6[1], port).String()
	}
	return netip.AddrPortFrom(e2e.Upstream4[1], port).String()
}

var headFor = []byte("GET / HTTP/1.1\r\nHost: " + abuseName + "\r\n\r\n")

// allowed opens a connection to abuseName on port 443 (a ClientHello) or 80
// (a request head) and waits for the echo of what it sent: the filter
// allowed and forwarded it. It returns the connection, open.
func (ae *abuseEnv) allowed(ctx context.Context, port uint16, v6 bool) (net.Conn, error) {
	c, err := ae.dialer.DialContext(ctx, "tcp", target(port, v6))
	if err != nil {
		return nil, err
	}
	msg := ae.hello
	if port == 80 {
		msg = headFor
	}
	if _, err = e2e.RoundTrip(c, msg, 10*time.Second); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// timeAllowed opens and closes an allowed connection and returns how long
// it took to be answered.
func (ae *abuseEnv) timeAllowed(t *testing.T, port uint16) time.Duration {
	t.Helper()
	start := time.Now()
	c, err := ae.allowed(t.Context(), port, false)
	require.NoError(t, err, "an allowed connection to port %d", port)
	d := time.Since(start)
	closeRST(c)
	return d
}

// closeRST closes c with a reset, which leaves no TIME_WAIT behind.
func closeRST(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// held is what the filter process holds.
type held struct {
	fds        int
	rss        int64 // bytes
	goroutines int
	heap       int64 // Go heap in use, bytes
}

func (u held) String() string {
	return fmt.Sprintf("%d descriptors, %d goroutines, %.1f MiB resident, %.1f MiB heap in use",
		u.fds, u.goroutines, float64(u.rss)/(1<<20), float64(u.heap)/(1<<20))
}

// usage reads the filter's descriptors and resident memory from /proc and
// its goroutines and heap from its metrics.
func (ae *abuseEnv) usage(t *testing.T) held {
	t.Helper()
	var u held
	pid := strconv.Itoa(ae.filter.Pid())
	fds, err := os.ReadDir("/proc/" + pid + "/fd")
	require.NoError(t, err)
	u.fds = len(fds)
	status, err := os.ReadFile("/proc/" + pid + "/status")
	require.NoError(t, err)
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			require.NoError(t, err)
			u.rss = kb << 10
		}
	}
	m := metricValues(t, ae.Env)
	u.goroutines = int(m["go_goroutines"])
	u.heap = int64(m["go_memstats_heap_inuse_bytes"])
	return u
}

// metricValues returns the filter's metrics (METRICS_ADDR=:9464), by their
// full name with labels, as the exposition format writes them.
func metricValues(t *testing.T, env *e2e.Env) map[string]float64 {
	t.Helper()
	// A connection of its own each time, closed after: a scrape leaves
	// nothing open in the filter.
	client := upstreamClient(env)
	client.Transport.(*http.Transport).DisableKeepAlives = true
	resp, err := client.Get("http://" + netip.AddrPortFrom(e2e.Box4, 9464).String() + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// waitRest waits until the filter's descriptors and goroutines are back
// within a few of rest (the proxy keeps up to 2×GOMAXPROCS idle splice
// pipes) and returns what it holds then.
func (ae *abuseEnv) waitRest(t *testing.T, rest held, within time.Duration) held {
	t.Helper()
	// The filter's GOMAXPROCS is at most this machine's CPUs; a few more
	// for the resolver's and the metrics' sockets.
	fdSlack, grSlack := 4*runtime.NumCPU()+6, 6
	deadline := time.Now().Add(within)
	for {
		u := ae.usage(t)
		if u.fds <= rest.fds+fdSlack && u.goroutines <= rest.goroutines+grSlack {
			return u
		}
		if time.Now().After(deadline) {
			// The filter's goroutines go to its output, which is logged.
			_ = syscall.Kill(ae.filter.Pid(), syscall.SIGQUIT)
			time.Sleep(time.Second)
			t.Fatalf("not back to rest after %v: %v; at rest before: %v", within, u, rest)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// latencies summarises connection times.
type latencies []time.Duration

func (l latencies) String() string {
	if len(l) == 0 {
		return "none"
	}
	return fmt.Sprintf("n=%d p50=%v p99=%v max=%v", len(l), l.quantile(0.5).Round(time.Microsecond),
		l.quantile(0.99).Round(time.Microsecond), l.quantile(1).Round(time.Microsecond))
}

// quantile returns the q-quantile, 0 ≤ q ≤ 1, of a non-empty l.
func (l latencies) quantile(q float64) time.Duration {
	s := slices.Clone(l)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// slowKind is one way a client ties up a proxy without finishing what it
// must send first.
type slowKind struct {
	name    string
	port    uint16
	first   func(ae *abuseEnv) []byte // sent at once; nil sends nothing
	dribble bool                      // then one byte every dribbleEvery
	// keepAlive sends a whole allowed request first, waits for its echo,
	// and then what first gives: the next request's timer starts then.
	keepAlive bool
}

// message is what a client of the kind's proxy must send first.
func (k slowKind) message(ae *abuseEnv) []byte {
	if k.port == 443 {
		return ae.hello
	}
	return headFor
}

const dribbleEvery = 400 * time.Millisecond

var slowKinds = []slowKind{
	{name: "tls silent", port: 443},
	{name: "tls partial hello", port: 443, first: func(ae *abuseEnv) []byte { return ae.hello[:len(ae.hello)/2] }},
	{name: "tls dribbled hello", port: 443, first: func(ae *abuseEnv) []byte { return ae.hello[:1] }, dribble: true},
	{name: "http silent", port: 80},
	{name: "http partial head", port: 80, first: func(*abuseEnv) []byte { return headFor[:20] }},
	{name: "http dribbled head", port: 80, first: func(*abuseEnv) []byte { return headFor[:1] }, dribble: true},
	{name: "http kept-alive, then a partial head", port: 80, keepAlive: true,
		first: func(*abuseEnv) []byte { return []byte("G") }},
}

// TestAbuseSlowClients holds thousands of slow and silent clients on both
// proxies at once: each is cut off at PROXY_HELLO_TIMEOUT (counted as a
// timeout), an allowed connection is served promptly meanwhile, and
// afterwards the filter's descriptors and goroutines are back at rest.
func TestAbuseSlowClients(t *testing.T) {
	const helloTimeout = 5 * time.Second
	perKind := sized(250, 1500)
	ae := startAbuseEnv(t, map[string]string{"PROXY_HELLO_TIMEOUT": helloTimeout.String()})
	ae.timeAllowed(t, 443) // the resolver's cache is warm, as it is in use
	ae.timeAllowed(t, 80)
	rest := ae.waitRest(t, ae.usage(t), 5*time.Second)
	t.Logf("at rest: %v", rest)

	type slow struct {
		kind    slowKind
		c       net.Conn
		started time.Time // when the timer the proxy keeps began, or later
		closed  chan time.Duration
		err     error
		sent    int // bytes of its message sent, for a dribbler
	}
	var (
		mu    sync.Mutex
		conns []*slow
	)
	setUp := time.Now()
	var wg sync.WaitGroup
	for _, k := range slowKinds {
		for i := range perKind {
			wg.Go(func() {
				s := &slow{kind: k, closed: make(chan time.Duration, 1)}
				var err error
				if k.keepAlive {
					s.c, err = ae.allowed(t.Context(), k.port, i%2 == 1)
				} else {
					s.c, err = ae.dialer.DialContext(t.Context(), "tcp", target(k.port, i%2 == 1))
				}
				if !assert.NoError(t, err, k.name) {
					return
				}
				s.started = time.Now()
				if k.first != nil {
					first := k.first(ae)
					_, err = s.c.Write(first)
					assert.NoError(t, err)
					s.sent = len(first)
				}
				mu.Lock()
				conns = append(conns, s)
				mu.Unlock()
				// Wait for the proxy to close: EOF or a reset, never
				// the client's own deadline.
				s.c.SetReadDeadline(time.Now().Add(helloTimeout + 30*time.Second))
				_, s.err = io.Copy(io.Discard, s.c)
				s.closed <- time.Since(s.started)
			})
		}
	}
	// The dribblers send a byte each, in turn, until they are cut off.
	stopDribble := make(chan struct{})
	var dribbled sync.WaitGroup
	dribbled.Go(func() {
		tick := time.NewTicker(dribbleEvery)
		defer tick.Stop()
		for {
			select {
			case <-stopDribble:
				return
			case <-tick.C:
			}
			mu.Lock()
			batch := slices.Clone(conns)
			mu.Unlock()
			for _, s := range batch {
				if msg := s.kind.message(ae); s.kind.dribble && s.sent < len(msg)-1 {
					s.c.SetWriteDeadline(time.Now().Add(time.Second))
					_, _ = s.c.Write(msg[s.sent : s.sent+1]) // never the last byte
					s.sent++
				}
			}
		}
	})

	total := perKind * len(slowKinds)
	// While they are all held, allowed connections are served promptly.
	var during latencies
	for len(during) < 10 {
		mu.Lock()
		n := len(conns)
		mu.Unlock()
		if n < total && time.Since(setUp) < helloTimeout/2 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		during = append(during, ae.timeAllowed(t, []uint16{443, 80}[len(during)%2]))
	}
	active := metricValues(t, ae.Env)["g0efilter_proxy_connections_active"]
	t.Logf("%d slow clients set up in %v; %v held by the proxies; allowed connections meanwhile: %v",
		total, time.Since(setUp).Round(time.Millisecond), active, during)
	assert.GreaterOrEqual(t, active, float64(total)*0.9, "the slow clients must be held at once")
	for _, d := range during {
		assert.Less(t, d, 2*time.Second, "an allowed connection waited on the slow ones")
	}
	peak := ae.usage(t)
	t.Logf("with the slow clients: %v", peak)

	wg.Wait()
	close(stopDribble)
	dribbled.Wait()
	require.Len(t, conns, total)
	var early, late int
	var cut latencies
	for _, s := range conns {
		d := <-s.closed
		cut = append(cut, d)
		if isTimeout(s.err) {
			late++
			continue
		}
		if d < helloTimeout-time.Second {
			early++
		}
		s.c.Close()
	}
	t.Logf("cut off after: %v", cut)
	assert.Zero(t, early, "cut off before PROXY_HELLO_TIMEOUT")
	assert.Zero(t, late, "never cut off")
	for _, s := range cut {
		assert.Less(t, s, helloTimeout+10*time.Second)
	}

	m := metricValues(t, ae.Env)
	timeouts := m[`g0efilter_decisions_total{action="blocked",component="https",reason="timeout"}`] +
		m[`g0efilter_decisions_total{action="blocked",component="http",reason="timeout"}`]
	assert.Equal(t, float64(total), timeouts, "one timeout decision per slow client")

	after := ae.waitRest(t, rest, 20*time.Second)
	t.Logf("back at rest: %v", after)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestAbuseIdleThenChurn holds many idle allowed connections, then opens
// new allowed connections at a steady rate: every one is served, within a
// bound, the idle ones still work afterwards, the filter's descriptors
// and memory stay within what docs/PERFORMANCE.md states per connection,
// and once all close its descriptors and goroutines come back to rest.
func TestAbuseIdleThenChurn(t *testing.T) {
	idle := sized(2000, 10000)
	rate := sized(200, 1000)                        // new connections a second
	churnFor := sized(5*time.Second, 3*time.Minute) // how long
	ae := startAbuseEnv(t, nil)
	// Each idle connection takes two of the filter's descriptors, and two
	// of this process's (the client and the echo server's end).
	if most := int(ae.noFile-1500) / 2; idle > most {
		t.Logf("%d idle connections, not %d: the descriptor limit is %d", most, idle, ae.noFile)
		idle = most
	}
	ae.timeAllowed(t, 443)
	ae.timeAllowed(t, 80)
	rest := ae.waitRest(t, ae.usage(t), 5*time.Second)
	t.Logf("at rest: %v", rest)

	// The idle connections, a quarter of them HTTP, half over IPv6.
	start := time.Now()
	idleConns := make([]net.Conn, idle)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var failed atomic.Int64
	for i := range idleConns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := ae.allowed(t.Context(), []uint16{443, 443, 443, 80}[i%4], i%2 == 1)
			if err != nil {
				if failed.Add(1) < 5 {
					t.Errorf("idle connection %d: %v", i, err)
				}
				return
			}
			idleConns[i] = c
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range idleConns {
			if c != nil {
				c.Close()
			}
		}
	})
	own, _ := os.ReadDir("/proc/self/fd")
	require.Zero(t, failed.Load(), "idle connections not set up (the test process holds %d descriptors)", len(own))
	idleUsage := ae.usage(t)
	t.Logf("%d idle connections set up in %v: %v", idle, time.Since(start).Round(time.Millisecond), idleUsage)
	perConnFDs := float64(idleUsage.fds-rest.fds) / float64(idle)
	perConnMem := float64(idleUsage.rss-rest.rss) / float64(idle)
	t.Logf("per idle connection: %.2f descriptors, %.1f KiB resident", perConnFDs, perConnMem/1024)
	// docs/PERFORMANCE.md: two descriptors per idle connection, under
	// 20 KB of memory (9 KB of Go memory; resident memory counts more).
	assert.LessOrEqual(t, perConnFDs, 2.05)
	assert.LessOrEqual(t, perConnMem, 20.0*1024)

	// The churn: rate new connections a second, each answered and closed.
	var (
		mu   sync.Mutex
		lat  latencies
		errs []error
		peak held
	)
	ctx, cancel := context.WithTimeout(t.Context(), churnFor+30*time.Second)
	defer cancel()
	// Connections are started as they fall due, so that a late tick (or
	// a usage reading) is caught up at once and the rate holds.
	tick := time.NewTicker(5 * time.Millisecond)
	start = time.Now()
	nextUsage := start
	var churned sync.WaitGroup
	for n, now := 0, start; now.Sub(start) < churnFor; now = <-tick.C {
		for due := int(now.Sub(start).Seconds() * float64(rate)); n < due; n++ {
			i := n // n is the outer iteration's, which this loop advances
			churned.Go(func() {
				s := time.Now()
				c, err := ae.allowed(ctx, []uint16{443, 80}[i%2], i%4 >= 2)
				d := time.Since(s)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				lat = append(lat, d)
				closeRST(c)
			})
		}
		if now.After(nextUsage) {
			if u := ae.usage(t); u.fds > peak.fds || u.rss > peak.rss {
				peak = u
			}
			nextUsage = time.Now().Add(sized(time.Second, 10*time.Second))
		}
	}
	tick.Stop()
	churned.Wait()
	t.Logf("churn of %d/s for %v: %v (%.0f/s); peak %v", rate, churnFor, lat,
		float64(len(lat)+len(errs))/churnFor.Seconds(), peak)
	require.Empty(t, errs, "churned connections that failed (first of %d)", len(errs))
	assert.Less(t, lat.quantile(0.99), 2*time.Second)

	// The idle connections still work.
	for i, c := range idleConns {
		msg := ae.hello
		if i%4 == 3 {
			msg = headFor
		}
		_, err := e2e.RoundTrip(c, msg, 10*time.Second)
		require.NoError(t, err, "idle connection %d after the churn", i)
	}
	for _, c := range idleConns {
		closeRST(c)
	}
	after := ae.waitRest(t, rest, 30*time.Second)
	t.Logf("back at rest: %v", after)
	if soak() {
		// The heap returns to rest at the runtime's periodic collection,
		// at most two minutes after the last one.
		deadline := time.Now().Add(3 * time.Minute)
		for after.heap > rest.heap+16<<20 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Second)
			after = ae.usage(t)
		}
		t.Logf("after the periodic collection: %v", after)
		assert.LessOrEqual(t, after.heap, rest.heap+16<<20, "the heap did not come back to rest")
	}
}

// TestAbuseAcceptEMFILE lowers the filter's descriptor limit until its
// proxies cannot accept: they wait and say so (log and metric), refuse no
// connection that could be served later, and serve again once descriptors
// are free.
func TestAbuseAcceptEMFILE(t *testing.T) {
	ae := startAbuseEnv(t, nil)
	ae.timeAllowed(t, 443)
	pid := ae.filter.Pid()
	// What the filter holds at rest, read until steady (the scrape's
	// connection closes just after the answer).
	openNow := func() int {
		fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
		require.NoError(t, err)
		return len(fds)
	}
	ae.usage(t)
	fds := openNow()
	for range 50 {
		time.Sleep(50 * time.Millisecond)
		if n := openNow(); n == fds {
			break
		} else {
			fds = n
		}
	}

	// Room for a few connections beyond what is open now.
	const room = 16
	var old unix.Rlimit
	require.NoError(t, unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old))
	limit := uint64(fds + room)
	require.NoError(t, unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: old.Max}, nil))

	// Each allowed connection takes two descriptors: a few are served,
	// then the proxy cannot accept the rest, which wait in the backlog.
	var served []net.Conn
	var waiting []chan error
	reset := 0
	for range room {
		c, err := ae.dialer.DialContext(t.Context(), "tcp", target(443, false))
		require.NoError(t, err, "the kernel accepts into the backlog")
		_, err = c.Write(ae.hello)
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, err := io.ReadFull(c, make([]byte, len(ae.hello)))
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				reset++ // accepted, then reset
				c.Close()
				continue
			}
			served = append(served, c)
		case <-time.After(500 * time.Millisecond):
			waiting = append(waiting, done)
		}
	}
	t.Logf("with %d descriptors: %d served, %d reset, %d waiting", limit, len(served), reset, len(waiting))
	assert.Zero(t, reset, "a connection that could be served later was reset")
	require.NotEmpty(t, waiting, "the limit was never reached")
	ae.filter.WaitForOutput("accept failed")

	// One descriptor more: the proxy accepts a waiting connection with it
	// and has none left to dial with. The client waits for one, as those
	// in the backlog do, rather than being reset.
	require.NoError(t, unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit + 1, Max: old.Max}, nil))
	time.Sleep(1500 * time.Millisecond) // past the accept loop's longest wait

	// Free descriptors: the waiting connections are served, within the
	// longest wait (a second) and a little. Closing the served ones alone
	// may not be enough: each waiting one needs two (its socket and its
	// dial), so the limit goes back up too.
	freed := time.Now()
	for _, c := range served {
		closeRST(c)
	}
	require.NoError(t, unix.Prlimit(pid, unix.RLIMIT_NOFILE, &old, nil))
	for _, done := range waiting {
		assert.NoError(t, <-done, "a connection that waited must be served once descriptors are free")
	}
	t.Logf("the waiting connections were served %v after descriptors were freed", time.Since(freed).Round(time.Millisecond))
	assert.Less(t, time.Since(freed), 5*time.Second)
	ae.filter.WaitForOutput("accepting again")
	// The metrics server could not accept either: scraped now.
	waits := metricValues(t, ae.Env)["g0efilter_proxy_accept_waits_total"]
	assert.Positive(t, waits, "the waits are counted")
	assert.Less(t, ae.timeAllowed(t, 443), 2*time.Second)
	assert.True(t, ae.filter.Running())
}
