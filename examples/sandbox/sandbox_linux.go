//go:build linux

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/g0lab/g0efilter/internal/localca"
	"github.com/g0lab/g0efilter/internal/nsdial"
	"github.com/g0lab/g0efilter/internal/testbed"
)

const (
	filterPackage    = "github.com/g0lab/g0efilter/cmd/g0efilter"
	dashboardPackage = "github.com/g0lab/g0efilter/cmd/dashboard"

	readyTimeout = 30 * time.Second
	readyPoll    = 100 * time.Millisecond
	boxDialers   = 4 // threads in the box for the forwarder and the traffic
)

// sandbox holds what a run made, to undo it in reverse order.
type sandbox struct {
	out   io.Writer
	undos []undo
}

type undo struct {
	what string
	fn   func() error
}

// onTeardown registers fn to run at teardown, before those registered
// earlier.
func (s *sandbox) onTeardown(what string, fn func() error) {
	s.undos = append(s.undos, undo{what, fn})
}

// teardown undoes everything, latest first, and joins the errors; a step
// that fails does not stop the others.
func (s *sandbox) teardown() error {
	var errs []error
	for i := len(s.undos) - 1; i >= 0; i-- {
		if err := s.undos[i].fn(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.undos[i].what, err))
		}
	}
	s.undos = nil
	return errors.Join(errs...)
}

func (s *sandbox) printf(format string, args ...any) {
	fmt.Fprintf(s.out, "sandbox: "+format+"\n", args...)
}

// run starts the sandbox, waits until ctx ends (or cfg.Duration passes, or
// a process exits), and tears everything down, on every path.
func run(ctx context.Context, cfg config) (err error) {
	if os.Geteuid() != 0 {
		return errors.New(needsRoot(exec.LookPath))
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("needs ip (iproute2) in PATH")
	}
	s := &sandbox{out: cfg.Out}
	if s.out == nil {
		s.out = io.Discard
	}
	defer func() {
		// Ctrl-C while starting is a stop like any other.
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			err = nil
		}
		if len(s.undos) == 0 {
			return
		}
		s.printf("stopping: processes, servers, namespaces, files")
		terr := s.teardown()
		if terr == nil {
			s.printf("stopped; nothing left behind")
		}
		err = errors.Join(err, terr)
	}()

	// The machine's end of the dashboard first: a port in use fails the
	// run before anything else is made.
	listen := cfg.Listen
	if listen == "" {
		listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(defaultHostPort))
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen for the dashboard on the machine: %w (another sandbox or dashboard? try -port)", err)
	}
	s.onTeardown("close "+listen, func() error { _ = ln.Close(); return nil })

	dir, err := os.MkdirTemp("", "g0e-sandbox-")
	if err != nil {
		return err
	}
	s.onTeardown("remove "+dir, func() error {
		if cfg.Keep {
			s.printf("kept %s", dir)
			return nil
		}
		return os.RemoveAll(dir)
	})
	path := func(name string) string { return filepath.Join(dir, name) }

	authority, err := localca.New("g0efilter sandbox CA", certValidity)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path(fileCA), authority.PEM(), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(path(filePolicy), []byte(policyYAML), 0o644); err != nil {
		return err
	}

	filterBin, dashBin, err := s.binaries(ctx, cfg, dir)
	if err != nil {
		return err
	}

	suffix, err := randomHex(4)
	if err != nil {
		return err
	}
	box, netNS := nsPrefix+suffix+"-box", nsPrefix+suffix+"-net"
	if old, _ := listSandboxNamespaces(); len(old) > 0 {
		s.printf("note: namespaces of another sandbox exist (%s); if none is running, delete them with: ip netns del NAME",
			strings.Join(old, ", "))
	}
	s.printf("making namespaces %s and %s", box, netNS)
	made := func(name string) {
		s.onTeardown("delete namespace "+name, func() error { return testbed.DeleteNamespace(name) })
	}
	err = testbed.MakePair(box, netNS, onLink(boxAddr4, boxAddr6),
		onLink(siteAddr4, rawAddr4, dnsAddr4, siteAddr6, rawAddr6, dnsAddr6), made)
	if err != nil {
		return err
	}

	if err := s.startServers(netNS, authority, path(fileSitesLog)); err != nil {
		return err
	}

	etc, err := writeNetnsEtc(box)
	if etc != nil {
		s.onTeardown("remove "+etc.dir, etc.remove)
	}
	if err != nil {
		return err
	}

	dialer, err := nsdial.New(testbed.NetnsPath(box), net.Dialer{}, boxDialers)
	if err != nil {
		return err
	}
	s.onTeardown("end the box's dialing threads", func() error { dialer.Close(); return nil })
	// The probe and the dashboard's forwarder come from the stand-in
	// internet, as through a published port.
	outside, err := nsdial.New(testbed.NetnsPath(netNS), net.Dialer{}, 2)
	if err != nil {
		return err
	}
	s.onTeardown("end the stand-in internet's dialing threads", func() error { outside.Close(); return nil })
	probe := &http.Client{
		Transport: &http.Transport{DialContext: outside.DialContext, DisableKeepAlives: true},
		Timeout:   2 * time.Second,
	}
	published := func(port uint16) string { return netip.AddrPortFrom(boxAddr4, port).String() }

	apiKey, err := randomHex(32)
	if err != nil {
		return err
	}
	// An operator account with a password of this run, printed below.
	password, err := randomHex(12)
	if err != nil {
		return err
	}
	adduser := exec.CommandContext(ctx, dashBin, "adduser", sandboxUser, "operator")
	adduser.Env = []string{"USERS_FILE=" + path(fileUsers)}
	adduser.Stdin = strings.NewReader(password + "\n")
	if out, err := adduser.CombinedOutput(); err != nil {
		return fmt.Errorf("dashboard adduser: %w: %s", err, out)
	}
	dash, err := s.start("dashboard", box, path(fileDashLog), dashBin, []string{
		"PORT=" + fmt.Sprintf(":%d", dashboardPort),
		"AUTH=local",
		"USERS_FILE=" + path(fileUsers),
		"API_KEY=" + apiKey,
		"ENABLE_UNBLOCKS=true",
		"LOG_LEVEL=INFO",
	})
	if err != nil {
		return err
	}
	if err := waitReady(ctx, probe, "http://"+published(dashboardPort)+"/health", dash); err != nil {
		return err
	}
	filter, err := s.start("g0efilter", box, path(fileFilterLog), filterBin, []string{
		"FILTER_MODE=https",
		"POLICY_PATH=" + path(filePolicy),
		"DNS_UPSTREAMS=" + dnsAddr4.String() + "," + dnsAddr6.String(),
		"DASHBOARD_HOST=http://" + boxDashboardAddr,
		"DASHBOARD_API_KEY=" + apiKey,
		"DASHBOARD_START_DELAY=0s",
		"ENABLE_REMOTE_UNBLOCK=true",
		"UNBLOCK_POLL_INTERVAL=" + unblockPoll,
		"HOSTNAME=" + filterHostname,
		"LOG_FILE=" + path(fileEvents),
		// Metrics answer only once the ruleset is installed: the
		// readiness check below.
		"METRICS_ADDR=" + fmt.Sprintf(":%d", boxMetricsPort),
		"LOG_LEVEL=INFO",
	}, "run")
	if err != nil {
		return err
	}
	if err := waitReady(ctx, probe, "http://"+published(boxMetricsPort)+"/metrics", filter); err != nil {
		return err
	}

	fwd := &forwarder{
		Listener: ln,
		Target:   published(dashboardPort),
		Dial:     outside.DialContext,
		Log:      slog.New(slog.NewTextHandler(s.out, nil)),
	}
	fwd.Start()
	s.onTeardown("stop the forwarder", func() error { fwd.Close(); return nil })

	trafficLog, err := os.OpenFile(path(fileTraffic), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	tctx, stopTraffic := context.WithCancel(context.Background())
	var twg sync.WaitGroup
	gen := &traffic{Dial: dialer.DialContext, Roots: authority.Pool(), Interval: cfg.Interval, Log: trafficLog}
	twg.Go(func() { gen.Run(tctx) })
	s.onTeardown("stop the traffic", func() error {
		stopTraffic()
		twg.Wait()
		return trafficLog.Close()
	})

	info := Info{Dashboard: "http://" + ln.Addr().String(), Box: box, Net: netNS, Dir: dir, User: sandboxUser, Password: password,
		Filter: filterBin}
	fmt.Fprint(s.out, instructions(info, cfg.Interval, cfg.RootPrefix))
	if cfg.Ready != nil {
		cfg.Ready(info)
	}

	var timeout <-chan time.Time
	if cfg.Duration > 0 {
		timer := time.NewTimer(cfg.Duration)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-ctx.Done():
		return nil
	case <-timeout:
		return nil
	case <-dash.Done():
		return dash.Exited()
	case <-filter.Done():
		return filter.Exited()
	}
}

// binaries returns the g0efilter and dashboard binaries: those cfg names,
// or built into dir.
func (s *sandbox) binaries(ctx context.Context, cfg config, dir string) (filterBin, dashBin string, err error) {
	filterBin, dashBin = cfg.FilterBin, cfg.DashboardBin
	switch {
	case filterBin == "" && dashBin == "":
		s.printf("building g0efilter and the dashboard (go build; -g0efilter and -dashboard take prebuilt ones)")
	case filterBin == "":
		s.printf("building g0efilter (go build)")
	case dashBin == "":
		s.printf("building the dashboard (go build)")
	}
	var wg sync.WaitGroup
	var errs [2]error
	if filterBin == "" {
		filterBin = filepath.Join(dir, "g0efilter")
		wg.Go(func() { errs[0] = goBuild(ctx, filterBin, filterPackage) })
	}
	if dashBin == "" {
		dashBin = filepath.Join(dir, "dashboard")
		wg.Go(func() { errs[1] = goBuild(ctx, dashBin, dashboardPackage) })
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return "", "", err
	}
	// ip netns exec runs them from the same directory, but absolute
	// paths read better in the logs.
	for _, bin := range []*string{&filterBin, &dashBin} {
		abs, err := filepath.Abs(*bin)
		if err != nil {
			return "", "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", "", err
		}
		*bin = abs
	}
	return filterBin, dashBin, nil
}

// goBuild builds pkg into out. It needs go in PATH and the working
// directory inside this module.
func goBuild(ctx context.Context, out, pkg string) error {
	if _, err := exec.LookPath("go"); err != nil {
		return errors.New(`go is not in PATH (under sudo, run: sudo env "PATH=$PATH" ...), or pass -g0efilter and -dashboard`)
	}
	if err := testbed.GoBuild(ctx, out, pkg); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w\n(run the sandbox from inside the repository)", err)
	}
	return nil
}

// startServers starts the web sites, the direct-IP target and the DNS
// server in the net namespace, each on its own addresses only.
func (s *sandbox) startServers(netNS string, ca *localca.CA, errLogPath string) error {
	errLog, err := os.OpenFile(errLogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	srv := &testbed.Servers{NS: netNS, ErrorLog: errLog}
	s.onTeardown("stop the test sites and the DNS server", func() error {
		srv.Close()
		return errLog.Close()
	})
	sites, err := testbed.NewSites(ca, siteNames()...)
	if err != nil {
		return err
	}
	records := map[string][]netip.Addr{}
	for _, name := range siteNames() {
		records[name] = []netip.Addr{siteAddr4, siteAddr6}
	}
	zone := testbed.NewZone(records)
	at := func(a netip.Addr, port uint16) string { return netip.AddrPortFrom(a, port).String() }
	for _, a := range []netip.Addr{siteAddr4, siteAddr6} {
		if err := srv.HTTP(at(a, 80), sites, nil); err != nil {
			return err
		}
		if err := srv.HTTP(at(a, 443), sites, sites.TLSConfig()); err != nil {
			return err
		}
	}
	for _, a := range []netip.Addr{rawAddr4, rawAddr6} {
		if err := srv.HTTP(at(a, rawPort), rawHandler(), nil); err != nil {
			return err
		}
	}
	for _, a := range []netip.Addr{dnsAddr4, dnsAddr6} {
		if err := srv.DNS(at(a, 53), zone); err != nil {
			return err
		}
	}
	return nil
}

// start starts a process in the box, in a cgroup of its own, and
// registers its stop. The filter tells its own sockets apart by their
// cgroup: it must not share one with the commands run in the box.
func (s *sandbox) start(name, box, logPath, bin string, env []string, args ...string) (*process, error) {
	mount, err := testbed.Cgroup2Mount()
	if err != nil {
		return nil, fmt.Errorf("%s needs a cgroup of its own, and so a cgroup v2 mount: %w", name, err)
	}
	cg, err := testbed.NewCgroup(filepath.Join(mount, fmt.Sprintf("g0e-sbx-%d-%s", os.Getpid(), name)))
	if err != nil {
		return nil, fmt.Errorf("cgroup for %s: %w", name, err)
	}
	s.onTeardown("remove cgroup "+cg.Path, cg.Remove)
	p, err := startProcess(name, box, logPath, cg, env, bin, args...)
	if err != nil {
		return nil, err
	}
	s.onTeardown("stop "+name, p.Stop)
	return p, nil
}

// waitReady polls url through c until it answers 200, p exits, ctx ends
// or readyTimeout passes.
func waitReady(ctx context.Context, c *http.Client, url string, p *process) error {
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	var last error
	for {
		resp, err := c.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.Done():
			return p.Exited()
		case <-deadline.C:
			return fmt.Errorf("%s not ready after %v (%v); the end of %s:\n%s", p.name, readyTimeout, last, p.logPath, p.logTail())
		case <-tick.C:
		}
	}
}

// onLink returns addrs as prefixes of the veth pair's subnets.
func onLink(addrs ...netip.Addr) []netip.Prefix {
	ps := make([]netip.Prefix, len(addrs))
	for i, a := range addrs {
		bits := prefixLen6
		if a.Is4() {
			bits = prefixLen4
		}
		ps[i] = netip.PrefixFrom(a, bits)
	}
	return ps
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
