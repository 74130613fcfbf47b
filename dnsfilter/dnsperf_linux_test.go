package dnsfilter

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/internal/policytest"
	"github.com/g0lab/g0efilter/nftrules"
	"github.com/g0lab/g0efilter/policy"
)

// BenchmarkDNSPerf measures queries per second with dnsperf against
// g0efilter's Handler and Server and against dnsmasq doing the same job,
// in the same run, on loopback in a network namespace of its own, each
// pair with the same names, clients and load:
//
//   - local/dnsmasq: dnsmasq answers NXDOMAIN itself for names under
//     blocked.example (--address=/blocked.example/);
//   - blocked/g0efilter: g0efilter refuses the same names (they are not
//     allowlisted) with NXDOMAIN;
//   - direct/dnsmasq: dnsmasq answers the names under allowed.example
//     itself, from --host-record, as the upstream does;
//   - cached/g0efilter: g0efilter forwards the same names, allowlisted,
//     with its Cache (the filter's default size), so that after the first
//     round it answers them itself;
//   - blocked/g0efilter-pin and cached/g0efilter-pin: the same with
//     pinning on: the addresses of each allowed answer are pinned, as the
//     filter does, in a dns mode ruleset applied in a second namespace
//     (so that the benchmark's own traffic is not filtered);
//   - forward/dnsmasq: dnsmasq forwards the allowed names to an upstream,
//     with its cache off (--cache-size=0);
//   - forward/g0efilter: g0efilter forwards them without a Cache;
//   - forward/g0efilter-dial: the same with MaxSockets -1, a socket per
//     upstream query, as Upstream did before it kept sockets.
//
// g0efilter runs with what the filter adds to each query: an event through
// an events.Queue (to a sink that drops it) and the default Limits (with a
// rate no client reaches, so that it is counted and nothing refused).
//
// Each server under test runs alone on CPU 0 (taskset -c 0; g0efilter is
// a child process, the test binary run again, so GOMAXPROCS is 1 as
// dnsmasq has one thread); dnsperf runs on CPU 1 with 10 clients and up to
// 200 queries outstanding, for 5 seconds. (With 1000 outstanding, the
// first burst overflows either server's socket buffer, and each query lost
// holds one of dnsperf's slots until its timeout: the figure then measures
// dnsperf's timeouts more than the server.) The upstream is a second
// dnsmasq answering the names from --host-record, on CPU 1 beside dnsperf,
// so that CPU 0 does the filter's work only. Each case reports qps, the
// queries lost (%lost), the CPU time the server used (%cpu, of one CPU:
// below 100 the server was waiting on dnsperf or the upstream, or did not
// get the CPU) and that time per answer (cpu-µs/q). ratio reports, for
// each g0efilter case over its dnsmasq pair, the ratio of queries a second
// and, suffixed -cpu, dnsmasq's CPU time per answer over g0efilter's
// (above 1, g0efilter spends less). With -count above 1 it pairs the last
// runs, so run the command several times instead.
//
// It needs root, ip, taskset, dnsperf and dnsmasq, and two CPUs: it skips
// without them, and fails under CI=true. Run it with
//
//	for i in 1 2 3; do go test ./dnsfilter -run '^$' -bench DNSPerf -benchtime 1x; done
func BenchmarkDNSPerf(b *testing.B) {
	requireDNSPerf(b)
	ns := newNetns(b)
	dir := b.TempDir()
	blocked := queryFile(b, dir, "blocked.txt", "host%d.blocked.example")
	allowed := queryFile(b, dir, "allowed.txt", "www%d.allowed.example")

	// The upstream: dnsmasq answering the allowed names itself.
	var hostRecords []string
	for i := range perfNames {
		hostRecords = append(hostRecords, fmt.Sprintf("--host-record=www%d.allowed.example,192.0.2.%d", i, i%250+1))
	}
	upArgs := append(dnsmasqArgs(perfUpstream.Port(), "--local-ttl=300"), hostRecords...)
	startPerf(b, ns, "1", perfUpstream.Port(), upArgs, "www0.allowed.example.", dns.RcodeSuccess)

	type perfCase struct {
		name    string
		cmd     []string // the server, on perfListen
		queries string
		rcode   int // of the answers
	}
	forward := fmt.Sprintf("--server=%s#%d", perfUpstream.Addr(), perfUpstream.Port())
	box := newNetns(b) // where the pinning cases pin
	direct := append(dnsmasqArgs(perfListen.Port(), "--local-ttl=300"), hostRecords...)
	cases := []perfCase{
		{"local/dnsmasq", dnsmasqArgs(perfListen.Port(), "--address=/blocked.example/"), blocked, dns.RcodeNameError},
		{"blocked/g0efilter", g0efilterCmd(b, 0, 10000, ""), blocked, dns.RcodeNameError},
		{"blocked/g0efilter-pin", g0efilterCmd(b, 0, 10000, box), blocked, dns.RcodeNameError},
		{"direct/dnsmasq", direct, allowed, dns.RcodeSuccess},
		{"cached/g0efilter", g0efilterCmd(b, 0, 10000, ""), allowed, dns.RcodeSuccess},
		{"cached/g0efilter-pin", g0efilterCmd(b, 0, 10000, box), allowed, dns.RcodeSuccess},
		{"forward/dnsmasq", dnsmasqArgs(perfListen.Port(), forward, "--cache-size=0", "--dns-forward-max=1000"), allowed, dns.RcodeSuccess},
		{"forward/g0efilter", g0efilterCmd(b, 0, 0, ""), allowed, dns.RcodeSuccess},
		{"forward/g0efilter-dial", g0efilterCmd(b, -1, 0, ""), allowed, dns.RcodeSuccess},
	}
	res := make(map[string]perfResult)
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			pid, stop := startPerf(b, ns, "0", perfListen.Port(), c.cmd, firstName(c.queries), c.rcode)
			r := runDNSPerf(b, ns, pid, c.queries)
			stop()
			res[c.name] = r
			for b.Loop() {
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(r.qps, "qps")
			b.ReportMetric(r.lost, "%lost")
			b.ReportMetric(100*r.cpu, "%cpu")
			b.ReportMetric(1e6*r.cpu/r.qps, "cpu-µs/q")
		})
	}
	b.Run("ratio", func(b *testing.B) {
		for b.Loop() {
		}
		b.ReportMetric(0, "ns/op")
		for _, r := range []struct{ metric, filter, dnsmasq string }{
			{"blocked/local", "blocked/g0efilter", "local/dnsmasq"},
			{"blocked-pin/local", "blocked/g0efilter-pin", "local/dnsmasq"},
			{"cached/direct", "cached/g0efilter", "direct/dnsmasq"},
			{"cached-pin/direct", "cached/g0efilter-pin", "direct/dnsmasq"},
			{"forward/forward", "forward/g0efilter", "forward/dnsmasq"},
			{"dial/forward", "forward/g0efilter-dial", "forward/dnsmasq"},
		} {
			f, d := res[r.filter], res[r.dnsmasq]
			// queries a second, and CPU per query (dnsmasq's over
			// g0efilter's: above 1, g0efilter uses less), same run
			b.ReportMetric(f.qps/d.qps, r.metric)
			b.ReportMetric((d.cpu/d.qps)/(f.cpu/f.qps), r.metric+"-cpu")
		}
	})
}

// Where the servers listen in the benchmark's namespace.
var (
	perfListen   = netip.MustParseAddrPort("127.0.0.1:5300")
	perfUpstream = netip.MustParseAddrPort("127.0.0.1:5301")
)

// perfNames is the number of names in each query file.
const perfNames = 100

// perfServeEnv, set in the environment of the test binary, makes it serve
// g0efilter for BenchmarkDNSPerf instead of running tests: "LISTEN
// UPSTREAM MAXSOCKETS CACHESIZE PINNETNS", PINNETNS "-" for no pinning.
const perfServeEnv = "G0EFILTER_DNSPERF_SERVE"

// perfProfileEnv, set with perfServeEnv, names a file where the server
// writes its CPU profile.
const perfProfileEnv = "G0EFILTER_DNSPERF_CPUPROFILE"

// perfV2Env, set with perfServeEnv (by -dnsperf.v2), gives the server a
// policy that uses every entry form, 1000 of each, besides the
// benchmark's wildcard; names are then allowed by an entry with or
// without a port, as g0efilter's resolver allows them.
const perfV2Env = "G0EFILTER_DNSPERF_V2"

var perfV2 = flag.Bool("dnsperf.v2", false, "BenchmarkDNSPerf: a policy that uses every entry form")

// v2Policy is the benchmark's wildcard and 1000 entries of every other
// form, none of which matches the benchmark's names.
func v2Policy() *policy.Policy {
	p := &policy.Policy{Domains: []string{"*.allowed.example"}}
	policytest.AddEveryForm(p)
	return p
}

func TestMain(m *testing.M) {
	if spec, ok := os.LookupEnv(perfServeEnv); ok {
		os.Exit(servePerf(spec))
	}
	os.Exit(m.Run())
}

// servePerf serves g0efilter as BenchmarkDNSPerf has it: names under
// allowed.example are forwarded, any other refused; each query's event
// goes through an events.Queue, as in the filter; the Limits are the
// filter's defaults but for a rate no test client reaches. With PINNETNS,
// a dns mode ruleset is applied in that network namespace and the
// addresses of each allowed answer are pinned in it as the filter pins
// them. It returns the exit code once SIGTERM comes.
func servePerf(spec string) int {
	f := strings.Fields(spec)
	if len(f) != 5 {
		fmt.Fprintf(os.Stderr, "%s=%q: want LISTEN UPSTREAM MAXSOCKETS CACHESIZE PINNETNS\n", perfServeEnv, spec)
		return 2
	}
	listen, err1 := netip.ParseAddrPort(f[0])
	upstream, err2 := netip.ParseAddrPort(f[1])
	maxSockets, err3 := strconv.Atoi(f[2])
	cacheSize, err4 := strconv.Atoi(f[3])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: %v\n", perfServeEnv, spec, err)
		return 2
	}
	p := &policy.Policy{Domains: []string{"*.allowed.example"}}
	if os.Getenv(perfV2Env) != "" {
		p = v2Policy()
	}
	snap, err := policy.Compile(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var live policy.Holder
	live.Store(snap)
	var pol Policy = &live
	if os.Getenv(perfV2Env) != "" {
		pol = policy.Names{Holder: &live}
	}
	up := &Upstream{Servers: []netip.AddrPort{upstream}, MaxSockets: maxSockets}
	defer up.Close()
	queue := events.NewQueue(events.Discard, 4096)
	defer queue.Close(context.Background())
	limits := DefaultLimits
	limits.Rate = 1e9 // counted, never reached
	h := &Handler{Policy: pol, Upstream: up, Events: queue, Limits: limits}
	if cacheSize > 0 {
		h.Cache = NewCache(cacheSize, time.Hour)
	}
	if ns := f[4]; ns != "-" {
		pin, closePins, err := perfPinner(ns)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer closePins()
		h.OnAnswer = pin
	}
	srv := &Server{Addrs: []netip.AddrPort{listen}, Handler: h}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if path := os.Getenv(perfProfileEnv); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if err := srv.ListenAndServe(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// perfPinner applies a dns mode ruleset in the network namespace ns and
// returns an OnAnswer that pins into it as the filter does with its
// defaults (DNS_PIN_MIN_TTL=1m, DNS_PIN_GRACE=10s): for the record's TTL,
// at least a minute, plus 10s, and nothing sent for an address pinned for
// its TTL plus 10s already.
func perfPinner(ns string) (pin func(Answer), closePins func(), err error) {
	fd, err := unix.Open(filepath.Join("/run/netns", ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	conn, err := nftrules.Open(nftrules.ConnConfig{NetNS: fd})
	if err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	rs, err := nftrules.Build(nftrules.Config{Mode: nftrules.ModeDNS})
	if err == nil {
		err = conn.Apply(rs)
	}
	if err != nil {
		conn.Close()
		unix.Close(fd)
		return nil, nil, err
	}
	const minTTL, grace = time.Minute, 10 * time.Second
	pin = func(a Answer) {
		pins := make([]nftrules.Pin, 0, len(a.Addrs))
		for _, at := range a.Addrs {
			pins = append(pins, nftrules.Pin{Addr: at.Addr, Timeout: max(at.TTL, minTTL) + grace, Need: at.TTL + grace})
		}
		if err := conn.Pin(pins); err != nil {
			fmt.Fprintln(os.Stderr, "pin:", err)
		}
	}
	return pin, func() { conn.Close(); unix.Close(fd) }, nil
}

// g0efilterCmd returns the command that serves g0efilter on perfListen,
// with a Cache of cacheSize answers (0: none), pinning into the network
// namespace pinNS ("": none).
func g0efilterCmd(b *testing.B, maxSockets, cacheSize int, pinNS string) []string {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	if pinNS == "" {
		pinNS = "-"
	}
	v2 := ""
	if *perfV2 {
		v2 = "1"
	}
	return []string{"env", fmt.Sprintf("%s=%s %s %d %d %s", perfServeEnv, perfListen, perfUpstream, maxSockets, cacheSize, pinNS),
		perfV2Env + "=" + v2, exe}
}

// dnsmasqArgs returns a dnsmasq command line serving on 127.0.0.1:port,
// in the foreground, reading no configuration from the system.
func dnsmasqArgs(port uint16, extra ...string) []string {
	return append([]string{
		"dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--no-poll",
		"--pid-file=", "--user=root", "--bind-interfaces", "--listen-address=127.0.0.1",
		"--port=" + strconv.Itoa(int(port)),
	}, extra...)
}

// requireDNSPerf skips b, or fails it under CI=true, when the benchmark
// cannot run here.
func requireDNSPerf(b *testing.B) {
	b.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, cmd := range []string{"ip", "taskset", "dnsperf", "dnsmasq"} {
		if _, err := exec.LookPath(cmd); err != nil {
			missing = append(missing, cmd)
		}
	}
	var cpus unix.CPUSet
	if err := unix.SchedGetaffinity(0, &cpus); err != nil || !cpus.IsSet(0) || !cpus.IsSet(1) {
		missing = append(missing, "CPUs 0 and 1")
	}
	if len(missing) == 0 {
		return
	}
	msg := "BenchmarkDNSPerf needs " + strings.Join(missing, ", ") + " (apt-get install dnsperf dnsmasq-base)"
	if os.Getenv("CI") == "true" {
		b.Fatal(msg)
	}
	b.Skip(msg)
}

// newNetns creates a network namespace with loopback up, deleted when b
// ends, and returns its name.
func newNetns(b *testing.B) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	ns := "g0dnsperf-" + hex.EncodeToString(r[:])
	run(b, "ip", "netns", "add", ns)
	b.Cleanup(func() { run(b, "ip", "netns", "del", ns) })
	run(b, "ip", "-n", ns, "link", "set", "lo", "up")
	return ns
}

func run(b *testing.B, name string, args ...string) {
	b.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// startPerf runs cmd in ns on the CPU given and waits until it answers name
// with rcode on 127.0.0.1:port. It returns its process ID and a function
// that stops it, also called when b ends.
func startPerf(b *testing.B, ns, cpu string, port uint16, cmd []string, name string, rcode int) (pid int, stop func()) {
	b.Helper()
	c := exec.Command("ip", append([]string{"netns", "exec", ns, "taskset", "-c", cpu}, cmd...)...)
	var stderr strings.Builder
	c.Stdout, c.Stderr = &stderr, &stderr
	if err := c.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = c.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = c.Process.Kill()
			<-exited
			b.Errorf("%s did not stop on SIGTERM", cmd[0])
		}
	}
	b.Cleanup(stop)
	if err := awaitAnswer(ns, netip.AddrPortFrom(perfListen.Addr(), port), name, rcode, exited); err != nil {
		stop()
		b.Fatalf("%s: %v\n%s", strings.Join(cmd, " "), err, stderr.String())
	}
	// ip, taskset and env exec what they run: the process is the server.
	return c.Process.Pid, stop
}

// awaitAnswer asks server, in ns, for name until it answers with rcode,
// for at most 10s or until exited reports the server's end.
func awaitAnswer(ns string, server netip.AddrPort, name string, rcode int, exited <-chan error) error {
	done := make(chan error, 1)
	go func() {
		// The thread stays in ns, locked, and ends with the goroutine.
		runtime.LockOSThread()
		fd, err := unix.Open(filepath.Join("/run/netns", ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
		}
		if err != nil {
			done <- err
			return
		}
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		c := dns.Client{Timeout: 100 * time.Millisecond}
		var last error
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
			r, _, err := c.Exchange(m, server.String())
			switch {
			case err != nil:
				last = err
			case r.Rcode != rcode:
				done <- fmt.Errorf("%s answered %s, want %s", name, dns.RcodeToString[r.Rcode], dns.RcodeToString[rcode])
				return
			default:
				done <- nil
				return
			}
			if len(exited) > 0 {
				break
			}
		}
		done <- fmt.Errorf("no answer from %s: %w", server, last)
	}()
	select {
	case err := <-done:
		return err
	case err := <-exited:
		return fmt.Errorf("exited: %v", err)
	}
}

// queryFile writes a dnsperf input file of perfNames A queries, names from
// format with %d, and returns its path.
func queryFile(b *testing.B, dir, file, format string) string {
	var sb strings.Builder
	for i := range perfNames {
		fmt.Fprintf(&sb, format+" A\n", i)
	}
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// firstName returns the first name of a query file, fully qualified.
func firstName(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Scan()
	return dns.Fqdn(strings.Fields(s.Text())[0])
}

type perfResult struct {
	qps  float64
	lost float64 // per cent
	cpu  float64 // CPU time the server used, over the time dnsperf ran
}

var (
	qpsLine  = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	lostLine = regexp.MustCompile(`Queries lost:\s+\d+ \(([0-9.]+)%\)`)
)

// runDNSPerf runs dnsperf in ns on CPU 1 against perfListen, served by
// process pid, with the queries of file, and returns what it measured.
func runDNSPerf(b *testing.B, ns string, pid int, file string) perfResult {
	b.Helper()
	cpu0, start := cpuTime(b, pid), time.Now()
	out, err := exec.Command("ip", "netns", "exec", ns, "taskset", "-c", "1",
		"dnsperf", "-s", perfListen.Addr().String(), "-p", strconv.Itoa(int(perfListen.Port())),
		"-d", file, "-l", "5", "-c", "10", "-q", "200", "-t", "1").CombinedOutput()
	if err != nil {
		b.Fatalf("dnsperf: %v\n%s", err, out)
	}
	cpu := float64(cpuTime(b, pid)-cpu0) / float64(time.Since(start))
	q := qpsLine.FindSubmatch(out)
	l := lostLine.FindSubmatch(out)
	if q == nil || l == nil {
		b.Fatalf("dnsperf output not understood:\n%s", out)
	}
	res := perfResult{cpu: cpu}
	var err1, err2 error
	res.qps, err1 = strconv.ParseFloat(string(q[1]), 64)
	res.lost, err2 = strconv.ParseFloat(string(l[1]), 64)
	if err := errors.Join(err1, err2); err != nil {
		b.Fatal(err)
	}
	return res
}

// cpuTime returns the CPU time process pid has used, user and system, from
// /proc/PID/stat (in clock ticks of 10ms: USER_HZ is 100 on Linux).
func cpuTime(b *testing.B, pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name, in parentheses, from the 3rd:
	// utime and stime are the 14th and 15th.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		b.Fatal(err)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
