package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/internal/cgroupv2"
	"github.com/g0lab/g0efilter/internal/e2e"
)

// Ports of the upstream's echo and UDP servers in the no-bypass tests.
const (
	echoPort = 7000
	udpPort  = 7001
)

// hostileEnv is a harness with an upstream TCP echo server and UDP
// recorder on a non-allowlisted address of each family, and g0efilter in
// the box with metrics on, logging events to a file.
type hostileEnv struct {
	*e2e.Env
	filter *e2e.Filter
	dns    *e2e.DNSServer
	udp    *e2e.UDPRecorder
	events string
}

func startHostileEnv(t *testing.T, mode string) *hostileEnv {
	env := e2e.New(t)
	he := &hostileEnv{Env: env, events: filepath.Join(t.TempDir(), "events.jsonl")}
	for _, a := range []netip.Addr{e2e.Upstream4[2], e2e.Upstream6[2]} {
		env.Echo("tcp", netip.AddrPortFrom(a, echoPort).String())
	}
	he.udp = env.RecordUDP(t, netip.AddrPortFrom(netip.IPv6Unspecified(), udpPort))
	he.dns = env.DNSServer(map[string][]netip.Addr{"allowed.example": {e2e.Upstream4[1]}})
	he.filter = env.StartFilter(t, "allowlist:\n  domains: [allowed.example]\n", map[string]string{
		"FILTER_MODE":   mode,
		"DNS_UPSTREAMS": e2e.Upstream4[0].String(),
		"LOG_FILE":      he.events,
		"METRICS_ADDR":  ":9464",
	})
	he.filter.WaitForOutput("ruleset installed")
	return he
}

// mark is the filter's bypass mark, read from the installed rules.
func (he *hostileEnv) mark(t *testing.T) string {
	listing, err := he.filter.Listing()
	require.NoError(t, err)
	i := strings.Index(listing, "meta mark != ")
	require.GreaterOrEqual(t, i, 0, "own chain by cgroup: %s", listing)
	return strings.Fields(listing[i+len("meta mark != "):])[0]
}

// reasons counts the events of the LOG_FILE by reason.
func (he *hostileEnv) reasons(t *testing.T) map[events.Reason]int {
	f, err := os.Open(he.events)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	out := map[events.Reason]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e struct {
			Reason events.Reason `json:"reason"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			out[e.Reason]++
		}
	}
	return out
}

// waitReason waits until at least n events with reason were logged.
func (he *hostileEnv) waitReason(t *testing.T, reason events.Reason, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return he.reasons(t)[reason] >= n },
		5*time.Second, 50*time.Millisecond, "%d events %q; have %v", n, reason, he.reasons(t))
}

var users = []e2e.User{e2e.AsRoot, e2e.AsNobody}

// TestNoBypassForgedMark: a workload at Docker's default capabilities
// sets the filter's own mark (it can read it nowhere, but here the test
// hands it over) on TCP and UDP sockets to a non-allowlisted address, over
// IPv4 and IPv6, in both modes: nothing gets out, and each attempt is an
// event. The same client without a mark is refused as ever.
func TestNoBypassForgedMark(t *testing.T) {
	for _, mode := range []string{"https", "dns"} {
		t.Run(mode, func(t *testing.T) {
			he := startHostileEnv(t, mode)
			mark := he.mark(t)
			attempts := 0
			for _, as := range users {
				for _, a := range []netip.Addr{e2e.Upstream4[2], e2e.Upstream6[2]} {
					for _, m := range []string{"0", mark, "0x6700"} {
						ok, line := he.Hostile(t, as, "tcp", "-addr", netip.AddrPortFrom(a, echoPort).String(), "-mark", m, "-timeout", "1s")
						assert.False(t, ok, "%v tcp to %v with mark %s: %s", as, a, m, line)
						ok, line = he.Hostile(t, as, "udp", "-addr", netip.AddrPortFrom(a, udpPort).String(), "-mark", m, "-timeout", "500ms")
						assert.False(t, ok, "%v udp to %v with mark %s: %s", as, a, m, line)
					}
					attempts += 2
				}
			}
			assert.Zero(t, he.udp.Count(), "no datagram arrived upstream: %v", he.udp.Payloads())
			he.waitReason(t, events.ReasonForgedMark, attempts)
			assert.True(t, he.filter.Running())
		})
	}
}

// TestNoBypassReflection: a workload at Docker's default capabilities
// forges a datagram "from" a host outside to one of the box's addresses
// (raw socket with IP_HDRINCL, IP_TRANSPARENT socket, frame written to
// loopback), IPv4 and IPv6, then "replies" to that host, hoping conntrack
// takes the reply for established. Nothing arrives, and each forgery is
// an event.
func TestNoBypassReflection(t *testing.T) {
	he := startHostileEnv(t, "https")
	spoofed, injected := 0, 0
	port := 41000
	for _, as := range users {
		for _, fam := range []struct{ box, remote netip.Addr }{
			{e2e.Box4, e2e.Upstream4[2]}, {e2e.Box6, e2e.Upstream6[2]},
		} {
			for _, how := range []string{"raw", "transparent", "loopback"} {
				port++
				ok, line := he.Hostile(t, as, "reflect", "-how", how,
					"-remote", netip.AddrPortFrom(fam.remote, udpPort).String(),
					"-local", netip.AddrPortFrom(fam.box, uint16(port)).String())
				t.Logf("%v %s %v: %s", as, how, fam.remote, line)
				if !ok {
					assert.Contains(t, line, "EPERM", "%v %s: the reply is refused, or it fails otherwise", as, how)
				}
				if how == "loopback" {
					injected++
				} else {
					spoofed++
				}
			}
		}
	}
	time.Sleep(300 * time.Millisecond) // datagrams in flight would have arrived by now
	assert.Zero(t, he.udp.Count(), "a reply to a forged datagram arrived: %v", he.udp.Payloads())
	he.waitReason(t, events.ReasonSpoofedSource, spoofed)
	he.waitReason(t, events.ReasonInjected, injected)
	assert.True(t, he.filter.Running())
}

// TestNoBypassRawFrames: frames sent through packet sockets, IPv4 and
// IPv6, with and without qdisc bypass, never arrive, and are reported;
// a device added while the filter runs is guarded too.
func TestNoBypassRawFrames(t *testing.T) {
	he := startHostileEnv(t, "https")
	box := e2e.Box4.String()
	send := func(as e2e.User, dev, dstMAC, src, dst string, bypass bool) {
		args := []string{"raw", "-ifname", dev, "-dstmac", dstMAC, "-src", src, "-dst", dst, "-port", strconv.Itoa(udpPort)}
		if bypass {
			args = append(args, "-bypass")
		}
		he.Hostile(t, as, args...)
	}
	up := he.UpstreamMAC(t)
	sent := 0
	for _, as := range users {
		for _, bypass := range []bool{false, true} {
			send(as, e2e.VethName, up, box, e2e.Upstream4[2].String(), bypass)
			send(as, e2e.VethName, up, e2e.Box6.String(), e2e.Upstream6[2].String(), bypass)
			sent += 2
		}
	}

	// A second device, as a second Compose network would add.
	const boxMAC, upMAC = "02:00:5e:18:01:01", "02:00:5e:18:01:02"
	ip := func(args ...string) {
		out, err := exec.Command("ip", args...).CombinedOutput()
		require.NoError(t, err, "ip %v: %s", args, out)
	}
	ip("-n", he.Box, "link", "add", "veth1", "address", boxMAC, "type", "veth",
		"peer", "name", "veth1", "address", upMAC, "netns", he.Upstream)
	ip("-n", he.Box, "addr", "add", "198.18.1.1/24", "dev", "veth1")
	ip("-n", he.Upstream, "addr", "add", "198.18.1.2/24", "dev", "veth1")
	ip("-n", he.Box, "link", "set", "veth1", "up")
	ip("-n", he.Upstream, "link", "set", "veth1", "up")
	second := he.RecordUDP(t, netip.MustParseAddrPort("198.18.1.2:7001"))
	require.Eventually(t, func() bool {
		listing, err := exec.Command("ip", "netns", "exec", he.Box, "nft", "list", "table", "netdev", "g0efilter").CombinedOutput()
		return err == nil && strings.Contains(string(listing), `device "veth1"`)
	}, 5*time.Second, 20*time.Millisecond, "the new device gets its egress chain")
	for _, as := range users {
		send(as, "veth1", upMAC, "198.18.1.1", "198.18.1.2", true)
		sent++
	}

	time.Sleep(300 * time.Millisecond) // frames in flight would have arrived by now
	assert.Zero(t, he.udp.Count(), "raw frames arrived: %v", he.udp.Payloads())
	assert.Zero(t, second.Count(), "raw frames arrived on the new device: %v", second.Payloads())
	require.Eventually(t, func() bool { return rawFrames(t, he) >= sent },
		5*time.Second, 50*time.Millisecond, "raw frame events count %d frames", sent)

	// The IP stack's own traffic still leaves (ARP and neighbour
	// discovery work): the filter resolves through the upstream DNS.
	out, err := exec.Command("ip", "netns", "exec", he.Box, e2e.Binary(t), "health").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "own sockets: mark and cgroup")
	assert.Contains(t, string(out), "egress guard: veth0, veth1")
	metrics := scrape(t, he)
	assert.Contains(t, metrics, `g0efilter_guarantee{guarantee="cgroup"} 1`)
	assert.Contains(t, metrics, `g0efilter_guarantee{guarantee="egress"} 1`)
}

// rawFrames adds up the frames that the raw frame events report.
func rawFrames(t *testing.T, he *hostileEnv) int {
	f, err := os.Open(he.events)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e struct {
			Reason events.Reason `json:"reason"`
			Detail string        `json:"detail"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Reason == events.ReasonRawFrame {
			var k int
			fmt.Sscanf(e.Detail, "%d", &k)
			n += k
		}
	}
	return n
}

// scrape reads the filter's metrics from the upstream namespace, as a
// Prometheus server on the container network would (the workload may not).
func scrape(t *testing.T, he *hostileEnv) string {
	var body string
	he.InUpstream(func() {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(e2e.Box4, 9464).String(), time.Second)
		require.NoError(t, err)
		defer c.Close()
		fmt.Fprintf(c, "GET /metrics HTTP/1.0\r\n\r\n")
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		var b strings.Builder
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		body = b.String()
	})
	return body
}

// TestNoBypassLocalServices: the workload reaches the proxies only through
// the redirect, and the metrics port not at all (the DNS server answers by
// the policy however it is asked: TestNoBypassDNS).
func TestNoBypassLocalServices(t *testing.T) {
	he := startHostileEnv(t, "https")
	knocks := 0
	for _, as := range users {
		for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:8443", "[::1]:8443",
			"127.0.0.1:9464", e2e.Box4.String() + ":9464", "[::1]:9464"} {
			ok, line := he.Hostile(t, as, "tcp", "-addr", addr, "-timeout", "1s")
			assert.False(t, ok, "%v to %s: %s", as, addr, line)
			assert.Contains(t, line, "refused", "%v to %s: refused at once", as, addr)
			knocks++
		}
		ok, line := he.Hostile(t, as, "udp", "-addr", "127.0.0.1:9464", "-timeout", "500ms")
		assert.False(t, ok, "%v udp to a guarded port: %s", as, line)
		knocks++
	}
	he.waitReason(t, events.ReasonLocalService, knocks)
	// The redirect still works: port 443 to an upstream address reaches
	// the TLS proxy, which refuses a client that sends no hello.
	ok, line := he.Hostile(t, e2e.AsNobody, "tcp", "-addr", netip.AddrPortFrom(e2e.Upstream4[2], 443).String(), "-timeout", "1s")
	assert.False(t, ok)
	assert.NotContains(t, line, "refused", "redirected to the proxy, not refused by the kernel: %s", line)
	assert.Contains(t, scrape(t, he), "g0efilter_decisions_total", "metrics answer from the container network")
}

// TestRunRefusesHostNamespace: run in the machine's own namespace stops
// before it loads the policy or touches a rule.
func TestRunRefusesHostNamespace(t *testing.T) {
	e2e.RequirePrivileges(t)
	// Other tests move threads of this process into namespaces: ask on a
	// thread of its own, which stays where the process started.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if host, err := hostNamespace(); err != nil || !host {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the test must run in the machine's own namespace under CI=true (host=%v, err=%v)", host, err)
		}
		t.Skip("not in the machine's own network namespace")
	}
	// A policy path that does not exist: were the check missing, run
	// would stop at the policy, before installing anything, with another
	// message.
	run := func(env ...string) (string, error) {
		cmd := exec.Command(e2e.Binary(t), "run")
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "POLICY_PATH=/nonexistent/policy.yaml"}, env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run()
	require.Error(t, err)
	assert.Contains(t, out, "refusing to install rules in the machine's own network namespace")
	assert.Contains(t, out, "ALLOW_HOST_NAMESPACE=true")
	assert.NotContains(t, out, "policy does not load", "stopped before the policy")

	out, err = run("ALLOW_HOST_NAMESPACE=true")
	require.Error(t, err)
	assert.Contains(t, out, "machine's own network namespace (ALLOW_HOST_NAMESPACE=true)")
	assert.Contains(t, out, "policy does not load; no rules installed")
}

// TestNoBypassDNS: in both modes, by default, no question about a name
// that is not allowlisted leaves the namespace, whichever resolver the
// workload asks, over UDP or TCP; allowed names and single-label (Compose
// service) names are asked upstream.
func TestNoBypassDNS(t *testing.T) {
	for _, mode := range []string{"https", "dns"} {
		t.Run(mode, func(t *testing.T) {
			he := startHostileEnv(t, mode)
			ask := func(server, network, name string) int {
				c, err := he.Dial(network, server, 2*time.Second)
				require.NoError(t, err)
				defer c.Close()
				m := new(dns.Msg)
				m.SetQuestion(dns.Fqdn(name), dns.TypeA)
				r, _, err := (&dns.Client{Net: network, Timeout: 2 * time.Second}).ExchangeWithConn(m, &dns.Conn{Conn: c})
				require.NoError(t, err, "%s %s %s", network, server, name)
				return r.Rcode
			}
			for _, server := range []string{
				netip.AddrPortFrom(e2e.Upstream4[0], 53).String(), // the real resolver
				netip.AddrPortFrom(e2e.Upstream4[2], 53).String(), // any other address
				"127.0.0.1:53",
				netip.AddrPortFrom(e2e.Upstream6[0], 53).String(),
			} {
				for _, network := range []string{"udp", "tcp"} {
					assert.Equal(t, dns.RcodeNameError, ask(server, network, "data-to-carry-out.evil.example"), "%s %s", network, server)
					assert.Equal(t, dns.RcodeSuccess, ask(server, network, "allowed.example"), "%s %s", network, server)
					ask(server, network, "db") // answered or not, it may go upstream
				}
			}
			var asked []string
			for _, q := range he.dns.Queries() {
				asked = append(asked, q.Name)
			}
			assert.NotContains(t, asked, "data-to-carry-out.evil.example.", "a refused name never leaves")
			assert.Contains(t, asked, "allowed.example.")
			assert.Contains(t, asked, "db.", "single-label names are asked upstream")
			he.waitReason(t, events.ReasonLocalName, 8)
		})
	}
}

// TestRunWithoutCgroup: where the filter has no cgroup of its own (here
// it runs in the root cgroup, which every process not placed elsewhere
// shares), it refuses to start by default, before it installs anything;
// with REQUIRE_GUARANTEES set empty it runs on the random mark alone and
// says so, in its log and in health.
func TestRunWithoutCgroup(t *testing.T) {
	env := e2e.New(t)
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte(policyOne), 0o644))
	_, mount, err := cgroupv2.Self()
	require.NoError(t, err, "cgroup v2 needed")
	root, err := os.Open(mount.Point)
	require.NoError(t, err)
	defer root.Close()
	start := func(extra ...string) (*exec.Cmd, *safeBuffer) {
		cmd := exec.Command("ip", "netns", "exec", env.Box, e2e.Binary(t), "run")
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "POLICY_PATH=" + path, "DNS_UPSTREAMS=" + e2e.Upstream4[0].String()}, extra...)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(root.Fd())}
		out := &safeBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd, out
	}

	cmd, out := start()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("g0efilter did not refuse to start")
	}
	assert.Contains(t, out.String(), "REQUIRE_GUARANTEES asks for cgroup")
	assert.Contains(t, out.String(), "root cgroup")
	assert.Contains(t, out.String(), "no rules installed")
	tables, err := env.Tables()
	require.NoError(t, err)
	assert.Empty(t, tables, "nothing installed")

	_, out = start("REQUIRE_GUARANTEES=")
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "ruleset installed") },
		20*time.Second, 50*time.Millisecond, "started: %s", out)
	assert.Contains(t, out.String(), "own sockets told apart by a random mark only")
	health, err := exec.Command("ip", "netns", "exec", env.Box, e2e.Binary(t), "health").CombinedOutput()
	require.NoError(t, err, "%s", health)
	assert.Contains(t, string(health), "own sockets: mark only")
	// The mark alone still lets the filter's own sockets out, and only
	// them: a mark of 0x6700 from the workload is not the filter's.
	ok, line := env.Hostile(t, e2e.AsNobody, "tcp", "-addr", netip.AddrPortFrom(e2e.Upstream4[2], 9).String(), "-mark", "0x6700", "-timeout", "1s")
	assert.False(t, ok, "%s", line)
}

// safeBuffer is a bytes.Buffer for a process's writes and the test's
// reads at once.
type safeBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunSharedCgroup: a filter whose cgroup already holds another
// process (a workload started in the same cgroup would pass for the
// filter once it had its mark) refuses to start, by default.
func TestRunSharedCgroup(t *testing.T) {
	env := e2e.New(t)
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte(policyOne), 0o644))
	_, mount, err := cgroupv2.Self()
	require.NoError(t, err, "cgroup v2 needed")
	dir := filepath.Join(mount.Point, fmt.Sprintf("g0e-shared-%d-%d", os.Getpid(), time.Now().UnixNano()))
	require.NoError(t, os.Mkdir(dir, 0o755))
	cg, err := os.Open(dir)
	require.NoError(t, err)
	defer cg.Close()
	into := func(cmd *exec.Cmd) *exec.Cmd {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
		return cmd
	}
	other := into(exec.Command("sleep", "30"))
	require.NoError(t, other.Start())
	t.Cleanup(func() {
		_ = other.Process.Kill()
		_ = other.Wait()
		assert.NoError(t, os.Remove(dir))
	})

	cmd := into(exec.Command("nsenter", "--net=/run/netns/"+env.Box, "--", e2e.Binary(t), "run"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "POLICY_PATH=" + path, "DNS_UPSTREAMS=" + e2e.Upstream4[0].String()}
	ctx := time.AfterFunc(20*time.Second, func() { _ = cmd.Process.Kill() })
	defer ctx.Stop()
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "g0efilter started in a shared cgroup: %s", out)
	assert.Contains(t, string(out), fmt.Sprintf("also holds the processes [%d]", other.Process.Pid))
	assert.Contains(t, string(out), "no rules installed")
	tables, err := env.Tables()
	require.NoError(t, err)
	assert.Empty(t, tables, "nothing installed")
}
