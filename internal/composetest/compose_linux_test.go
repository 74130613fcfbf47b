//go:build linux

package composetest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/internal/localca"
)

// label marks every container, network and image this test makes, for the
// sweep at the end.
const label = "org.g0efilter.test=composetest"

// runLabel marks what this run makes, so that its sweep leaves another
// run's containers and networks alone (two checkouts may test at once
// on one engine).
var runLabel = fmt.Sprintf("org.g0efilter.test.run=%d-%d", os.Getpid(), time.Now().UnixNano())

// Names of the stand-in internet: allowed by the policy, allowed by its
// wildcard, blocked, added by a live edit, added by a remote unblock.
const (
	nameAllowed  = "allowed.test"
	nameWildcard = "api.allowed.test"
	nameBlocked  = "blocked.test"
	nameEdited   = "edited.test"
	nameUnblock  = "unblock.test"
	filterHost   = "g0efilter-demo" // hostname: in examples/docker-compose.yml
)

const policyText = `allowlist:
  domains:
    - "allowed.test"
    - "*.allowed.test"
`

// repoRoot is the module's root, two levels up from this package.
func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// requireDocker skips without an engine and docker-compose, or fails under
// CI=true, where this test must run.
func requireDocker(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msg := ""
	if out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		msg = fmt.Sprintf("no Docker engine answers: %v: %s", err, bytes.TrimSpace(out))
	} else if _, err := exec.LookPath("docker-compose"); err != nil {
		msg = "no docker-compose"
	}
	if msg == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; under CI=true this test must run")
	}
	t.Skip(msg)
}

// run runs a command with a bound on its time and returns its output.
func run(t *testing.T, timeout time.Duration, dir string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustRun(t *testing.T, timeout time.Duration, dir string, name string, args ...string) string {
	t.Helper()
	out, err := run(t, timeout, dir, name, args...)
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
	return out
}

// randByte returns a random number in [lo, hi).
func randInt(lo, hi int64) int64 {
	n, err := rand.Int(rand.Reader, big.NewInt(hi-lo))
	if err != nil {
		panic(err)
	}
	return lo + n.Int64()
}

// freePort returns a TCP port free on the host's loopback just now.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// stack is one Compose project of the test.
type stack struct {
	t        *testing.T
	root     string
	project  string
	files    []string
	env      []string
	dir      string // the test's files: certificates, policy, override
	siteAddr string // the stand-in internet's only address
	dashPort int
}

func (s *stack) compose(timeout time.Duration, args ...string) (string, error) {
	s.t.Helper()
	return s.composeIn(timeout, "", args...)
}

// composeIn is compose with stdin as the command's standard input.
func (s *stack) composeIn(timeout time.Duration, stdin string, args ...string) (string, error) {
	s.t.Helper()
	full := []string{"-p", s.project}
	for _, f := range s.files {
		full = append(full, "-f", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker-compose", append(full, args...)...)
	cmd.Dir = filepath.Join(s.root, "examples")
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// container returns the id of service's container.
func (s *stack) container(service string) string {
	s.t.Helper()
	out, err := s.compose(time.Minute, "ps", "-q", service)
	require.NoError(s.t, err, out)
	id := strings.TrimSpace(out)
	require.NotEmpty(s.t, id, "no container for %s", service)
	return id
}

// probe runs the probe in service's container and returns its line and
// whether it said ok.
func (s *stack) probe(service string, args ...string) (bool, string) {
	s.t.Helper()
	out, _ := run(s.t, time.Minute, "", "docker", append([]string{"exec", s.container(service), "/usr/local/bin/probe"}, args...)...)
	out = strings.TrimSpace(out)
	return strings.HasPrefix(out, "ok "), out
}

func (s *stack) logs(service string) string {
	out, _ := s.compose(time.Minute, "logs", "--no-color", service)
	return out
}

// waitHealthy waits until service's container reports healthy.
func (s *stack) waitHealthy(service string, within time.Duration) {
	s.t.Helper()
	id := s.container(service)
	deadline := time.Now().Add(within)
	status := ""
	for time.Now().Before(deadline) {
		out, _ := run(s.t, 20*time.Second, "", "docker", "inspect", "-f", "{{.State.Health.Status}}", id)
		if status = strings.TrimSpace(out); status == "healthy" {
			return
		}
		time.Sleep(time.Second)
	}
	s.t.Fatalf("%s not healthy within %s (last: %q)\n%s", service, within, status, s.logs(service))
}

// eventually retries fn every 500ms until it returns true or within
// passes; it reports the last detail on failure.
func eventually(t *testing.T, within time.Duration, what string, fn func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	detail := ""
	for i := 0; i < 1000 && time.Now().Before(deadline); i++ {
		var ok bool
		if ok, detail = fn(); ok {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s; last: %s", what, within, detail)
}

// buildImages builds the product's images with the script CI and the
// README use, and the test image with testnet, probe and hostile.
func buildImages(t *testing.T, root, tag string) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command(filepath.Join(root, "scripts", "build-images.sh"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "TAG="+tag, "VERSION=composetest")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build-images.sh:\n%s", out)
	t.Cleanup(func() {
		run(t, time.Minute, "", "docker", "rmi", "g0efilter:"+tag, "g0efilter-dashboard:"+tag, "g0efilter-composetest:"+tag)
	})

	ctx := t.TempDir()
	for pkg, bin := range map[string]string{
		"./internal/composetest/testnet": "testnet",
		"./internal/composetest/probe":   "probe",
		"./internal/e2e/hostile":         "hostile",
	} {
		c := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(ctx, bin), pkg)
		c.Dir = root
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := c.CombinedOutput()
		require.NoError(t, err, "go build %s:\n%s", pkg, out)
	}
	df := "FROM scratch\nLABEL " + label + "\nCOPY testnet probe hostile /usr/local/bin/\n"
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(df), 0o644))
	mustRun(t, 5*time.Minute, ctx, "docker", "build", "-q", "-t", "g0efilter-composetest:"+tag, ".")
	t.Logf("images built in %s", time.Since(start).Round(time.Second))
}

// writeCerts writes the test CA (ca.pem) and the sites' certificate and
// key (site.crt, site.key) into dir.
func writeCerts(t *testing.T, dir string) {
	ca, err := localca.New("g0efilter composetest CA", 24*time.Hour)
	require.NoError(t, err)
	leaf, err := ca.Issue(nameAllowed, nameWildcard, nameBlocked, nameEdited, nameUnblock)
	require.NoError(t, err)
	var chain []byte
	for _, der := range leaf.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	key, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.pem"), ca.PEM(), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "site.crt"), chain, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "site.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o644))
}

// engineWritesExtServers reports whether this engine writes the
// "# ExtServers:" line into a container's resolv.conf on a user-defined
// network (Docker Engine 25 and later).
func engineWritesExtServers(t *testing.T, image, subnet string) (bool, string) {
	net := "g0e-ct-probe-" + strings.ReplaceAll(subnet[7:], "/", "-")
	mustRun(t, time.Minute, "", "docker", "network", "create", "--label", label, "--label", runLabel, "--internal", "--subnet", subnet, net)
	defer run(t, time.Minute, "", "docker", "network", "rm", net)
	// The image has no cat: the probe reads the file as its "CA file",
	// which fails and prints nothing useful; use docker cp instead.
	id := strings.TrimSpace(mustRun(t, time.Minute, "", "docker", "create", "--label", label, "--label", runLabel, "--network", net,
		"--dns", "198.18.0.53", image, "/usr/local/bin/probe", "sleep"))
	defer run(t, time.Minute, "", "docker", "rm", "-f", id)
	mustRun(t, time.Minute, "", "docker", "start", id)
	tr := tar.NewReader(strings.NewReader(mustRun(t, time.Minute, "", "docker", "cp", id+":/etc/resolv.conf", "-")))
	_, err := tr.Next()
	require.NoError(t, err)
	b, err := io.ReadAll(tr)
	require.NoError(t, err)
	return strings.Contains(string(b), "# ExtServers:"), string(b)
}

func TestCompose(t *testing.T) {
	requireDocker(t)
	root := repoRoot(t)
	suffix := fmt.Sprintf("%d%d", os.Getpid()%1000, randInt(100, 999))
	tag := "ct" + suffix
	project := "g0ect" + suffix
	t.Cleanup(func() { sweep(t) })

	start := time.Now()
	buildImages(t, root, tag)
	testImage := "g0efilter-composetest:" + tag

	// Subnets of our own in 198.18.0.0/15: one /24 for the stand-in
	// internet, one for the Compose default network, one for the probe of
	// the engine's resolv.conf.
	third := randInt(16, 80) * 3
	inetNet := fmt.Sprintf("198.18.%d.0/24", third)
	defNet := fmt.Sprintf("198.18.%d.0/24", third+1)
	probeNet := fmt.Sprintf("198.18.%d.0/24", third+2)
	site := fmt.Sprintf("198.18.%d.10", third)
	inet6 := fmt.Sprintf("fd00:18:%d::/64", third)
	site6 := fmt.Sprintf("fd00:18:%d::10", third)

	// The stand-in internet has IPv6 too: made here, since Compose 1.29
	// cannot ask for it (enable_ipv6 needs the version 2 file format), and
	// named in the override as an external network. Removed after the
	// stack (cleanups run last first).
	inetName := project + "_inet"
	mustRun(t, time.Minute, "", "docker", "network", "create", "--internal", "--ipv6",
		"--subnet", inetNet, "--subnet", inet6, "--label", label, "--label", runLabel, inetName)
	t.Cleanup(func() {
		if out, err := run(t, time.Minute, "", "docker", "network", "rm", inetName); err != nil {
			t.Errorf("network rm %s: %v\n%s", inetName, err, out)
		}
	})

	modern, resolv := engineWritesExtServers(t, testImage, probeNet)
	t.Logf("engine writes ExtServers: %v\n%s", modern, resolv)

	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	writeCerts(t, dir)
	policyDir := filepath.Join(dir, "policy")
	require.NoError(t, os.Mkdir(policyDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(policyDir, "policy.yaml"), []byte(policyText), 0o644))

	// On an engine that writes no ExtServers line (before 25), the
	// filter's resolv.conf is given as Engine 25 writes it for `dns:`, so
	// that the filter's default choice of upstreams is what runs.
	filterResolv := ""
	if !modern {
		filterResolv = filepath.Join(dir, "resolv.conf")
		text := fmt.Sprintf("nameserver 127.0.0.11\noptions ndots:0\n\n# Based on host file: '/etc/resolv.conf' (internal resolver)\n# ExtServers: [%s]\n# Overrides: [nameservers]\n", site)
		require.NoError(t, os.WriteFile(filterResolv, []byte(text), 0o644))
	}

	s := &stack{t: t, root: root, project: project, dir: dir, siteAddr: site, dashPort: freePort(t)}
	// The two steps the README asks of a user before "up": the same
	// strong key for the filters and the dashboard (the examples' are
	// placeholders, which stop the dashboard), and an account.
	key := randomKey(t)
	override := overrideFile(tag, dir, policyDir, filterResolv, site, site6, inetName, defNet, key)
	overridePath := filepath.Join(dir, "override.yml")
	require.NoError(t, os.WriteFile(overridePath, []byte(override), 0o644))
	s.files = []string{filepath.Join(root, "examples", "docker-compose.yml"), overridePath}
	s.env = []string{fmt.Sprintf("DASHBOARD_PORT=%d", s.dashPort)}

	t.Cleanup(func() {
		if t.Failed() {
			for _, svc := range []string{"g0efilter", "g0efilter-dns", "dashboard", "site"} {
				t.Logf("logs of %s:\n%s", svc, s.logs(svc))
			}
		}
		out, err := s.compose(3*time.Minute, "down", "-v", "--remove-orphans", "--timeout", "5")
		if err != nil {
			t.Errorf("down -v: %v\n%s", err, out)
		}
		checkNothingLeft(t, project)
	})
	const admin, adminPassword = "admin", "a long enough password for the test"
	out, err := s.composeIn(2*time.Minute, adminPassword+"\n", "run", "--rm", "-T", "dashboard", "adduser", admin, "operator")
	require.NoError(t, err, "adduser:\n%s", out)
	out, err = s.compose(5*time.Minute, "up", "-d")
	require.NoError(t, err, "up:\n%s", out)
	for _, svc := range []string{"g0efilter", "g0efilter-dns", "dashboard"} {
		s.waitHealthy(svc, 90*time.Second)
	}
	t.Logf("stack up and healthy after %s", time.Since(start).Round(time.Second))
	assert.Contains(t, s.logs("g0efilter"), "Docker's ExtServers", "the filter chose its upstreams from resolv.conf")

	workloads := []string{"workload", "workload-root", "workload-user"}
	ca := "/certs/ca.pem"
	siteHTTPS, siteHTTP := net.JoinHostPort(site, "443"), net.JoinHostPort(site, "80")

	t.Run("default capabilities", func(t *testing.T) {
		const netAdmin, netRaw = 12, 13 // capability numbers
		for _, w := range []string{"workload-root", "workload-user"} {
			out, _ := run(t, time.Minute, "", "docker", "exec", s.container(w), "/usr/local/bin/hostile", "caps")
			bnd := capSet(t, out, "CapBnd")
			assert.NotZero(t, bnd&(1<<netRaw), "%s: Docker's default bounding set has NET_RAW: %s", w, out)
			assert.Zero(t, bnd&(1<<netAdmin), "%s: never NET_ADMIN: %s", w, out)
			if w == "workload-root" {
				assert.NotZero(t, capSet(t, out, "CapEff")&(1<<netRaw), "root holds NET_RAW: %s", out)
			}
			t.Logf("%s: %s", w, strings.TrimSpace(out))
		}
	})

	t.Run("DNS https mode", func(t *testing.T) {
		for _, w := range workloads {
			ok, line := s.probe(w, "dns", nameAllowed)
			assert.True(t, ok && strings.Contains(line, "NOERROR "+site), "%s: %s resolves: %s", w, nameAllowed, line)
			ok, line = s.probe(w, "resolve", nameWildcard)
			assert.True(t, ok && strings.Contains(line, site), "%s: %s resolves (Go's resolver): %s", w, nameWildcard, line)
			ok, line = s.probe(w, "dns", nameBlocked)
			assert.True(t, ok && strings.Contains(line, "NXDOMAIN"), "%s: %s refused: %s", w, nameBlocked, line)
			ok, line = s.probe(w, "resolve", "dashboard")
			assert.True(t, ok, "%s: the Compose service name resolves: %s", w, line)
		}
	})

	t.Run("DNS dns mode", func(t *testing.T) {
		ok, line := s.probe("workload-dns", "dns", nameAllowed)
		assert.True(t, ok && strings.Contains(line, "NOERROR "+site), "%s", line)
		ok, line = s.probe("workload-dns", "dns", nameBlocked)
		assert.True(t, ok && strings.Contains(line, "NXDOMAIN"), "%s", line)
		ok, line = s.probe("workload-dns", "resolve", "dashboard")
		assert.True(t, ok, "the Compose service name resolves: %s", line)
		ok, line = s.probe("workload-dns", "get", "https://"+nameAllowed+"/", ca)
		assert.True(t, ok && strings.Contains(line, "200 site="+nameAllowed), "%s", line)
		ok, line = s.probe("workload-dns", "tcp", siteHTTP)
		assert.True(t, ok, "dns mode pins the allowed answer's address: %s", line)
	})

	t.Run("HTTPS and HTTP by name", func(t *testing.T) {
		for _, w := range workloads {
			ok, line := s.probe(w, "get", "https://"+nameAllowed+"/", ca)
			assert.True(t, ok && strings.Contains(line, "200 site="+nameAllowed+" proto=https"), "%s: %s", w, line)
			ok, line = s.probe(w, "get", "http://"+nameWildcard+"/")
			assert.True(t, ok && strings.Contains(line, "200 site="+nameWildcard+" proto=http"), "%s: %s", w, line)
			// Blocked names, sent to the sites' real address.
			ok, line = s.probe(w, "get", "https://"+nameBlocked+"/", ca, siteHTTPS)
			assert.False(t, ok, "%s: https://%s must be refused: %s", w, nameBlocked, line)
			ok, line = s.probe(w, "get", "http://"+nameBlocked+"/", "-", siteHTTP)
			assert.False(t, ok, "%s: http://%s must be refused: %s", w, nameBlocked, line)
		}
	})

	t.Run("direct address and QUIC refused", func(t *testing.T) {
		for _, w := range workloads {
			ok, line := s.probe(w, "tcp", net.JoinHostPort(site, "7000"))
			assert.False(t, ok, "%s: a direct connection must be refused: %s", w, line)
			ok, line = s.probe(w, "udp", siteHTTPS)
			assert.False(t, ok, "%s: QUIC (UDP 443) must be refused: %s", w, line)
		}
		// The echo works for a client that is not behind the filter.
		ok, line := s.probe("site", "udp", "127.0.0.1:443")
		assert.True(t, ok, "control: the UDP echo answers: %s", line)
		logs := s.logs("site")
		assert.NotContains(t, logs, "tcp connection from", "no direct connection reached the site")
		assert.Equal(t, 1, strings.Count(logs, "udp echo"), "only the control's datagram reached the site:\n%s", logs)
		assert.NotContains(t, logs, "dns "+nameBlocked, "a blocked name never reached the authoritative server")
	})

	t.Run("IPv6", func(t *testing.T) {
		site6HTTPS := net.JoinHostPort(site6, "443")
		for _, w := range workloads {
			ok, line := s.probe(w, "dns", nameAllowed, "AAAA")
			assert.True(t, ok && strings.Contains(line, "NOERROR "+site6), "%s: %s resolves to IPv6: %s", w, nameAllowed, line)
			ok, line = s.probe(w, "get", "https://"+nameAllowed+"/", ca, site6HTTPS)
			assert.True(t, ok && strings.Contains(line, "200 site="+nameAllowed+" proto=https"), "%s: HTTPS over IPv6: %s", w, line)
			ok, line = s.probe(w, "get", "https://"+nameBlocked+"/", ca, site6HTTPS)
			assert.False(t, ok, "%s: a blocked name over IPv6: %s", w, line)
			ok, line = s.probe(w, "tcp", net.JoinHostPort(site6, "7000"))
			assert.False(t, ok, "%s: a direct IPv6 connection: %s", w, line)
			ok, line = s.probe(w, "udp", site6HTTPS)
			assert.False(t, ok, "%s: QUIC over IPv6: %s", w, line)
		}
		// Resolved right before, so that the pin has not expired however
		// slowly the steps above ran.
		ok, line := s.probe("workload-dns", "dns", nameAllowed, "AAAA")
		assert.True(t, ok && strings.Contains(line, "NOERROR "+site6), "dns mode: %s resolves to IPv6: %s", nameAllowed, line)
		ok, line = s.probe("workload-dns", "get", "https://"+nameAllowed+"/", ca, site6HTTPS)
		assert.True(t, ok && strings.Contains(line, "200 site="+nameAllowed), "dns mode, IPv6: %s", line)
	})

	// The no-bypass issue's hostile workload, at Docker's default
	// capabilities as root and as a user: a forged mark, raw frames,
	// forged sources and a frame injected on loopback, none of which
	// reach the site, and the filter's guarantees as it states them.
	t.Run("hostile workload", func(t *testing.T) {
		filter := s.container("g0efilter")
		out, _ := run(t, time.Minute, "", "docker", "exec", filter, "/usr/local/bin/g0efilter", "health")
		assert.Contains(t, out, "own sockets: mark and cgroup", "the filter tells its sockets apart by cgroup in a container: %s", out)
		assert.Contains(t, out, "egress guard: eth", out)
		box := strings.TrimSpace(mustRun(t, time.Minute, "", "docker", "inspect", "-f",
			`{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}`, filter))
		siteMAC := strings.TrimSpace(mustRun(t, time.Minute, "", "docker", "inspect", "-f",
			`{{range .NetworkSettings.Networks}}{{.MacAddress}}{{end}}`, s.container("site")))
		require.NotEmpty(t, siteMAC)
		var boxInet string
		for _, a := range strings.Fields(box) {
			if pfx := netip.MustParsePrefix(inetNet); pfx.Contains(netip.MustParseAddr(a)) {
				boxInet = a
			}
		}
		require.NotEmpty(t, boxInet, "the filter's address on the stand-in internet (%s): %s", inetNet, box)
		boxInet6 := strings.TrimSpace(mustRun(t, time.Minute, "", "docker", "inspect", "-f",
			`{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}`, filter))
		require.NotEmpty(t, boxInet6, "the filter's IPv6 address on the stand-in internet")
		hostile := func(w string, args ...string) string {
			out, _ := run(t, time.Minute, "", "docker", append([]string{"exec", s.container(w), "/usr/local/bin/hostile"}, args...)...)
			return strings.TrimSpace(out)
		}
		before := strings.Count(s.logs("site"), "udp echo")
		port := 42000
		for _, w := range []string{"workload-root", "workload-user"} {
			for _, mark := range []string{"0x6700", "0x5eed1234"} {
				line := hostile(w, "tcp", "-addr", net.JoinHostPort(site, "7000"), "-mark", mark, "-timeout", "1s")
				assert.True(t, strings.HasPrefix(line, "err"), "%s: forged mark %s: %s", w, mark, line)
			}
			// Out of both of the filter's devices: one is on the stand-in
			// internet (Docker does not say which).
			for _, dev := range []string{"eth0", "eth1"} {
				for _, bypass := range []string{"", "-bypass"} {
					for _, dst := range [][2]string{{boxInet, site}, {boxInet6, site6}} {
						args := []string{"raw", "-ifname", dev, "-dstmac", siteMAC, "-src", dst[0], "-dst", dst[1], "-port", "443"}
						if bypass != "" {
							args = append(args, bypass)
						}
						t.Logf("%s raw %s %s to %s: %s", w, dev, bypass, dst[1], hostile(w, args...))
					}
				}
			}
			for _, how := range []string{"raw", "transparent", "loopback"} {
				for _, ends := range [][2]string{{siteHTTPS, boxInet}, {net.JoinHostPort(site6, "443"), boxInet6}} {
					port++
					t.Logf("%s reflect %s to %s: %s", w, how, ends[0], hostile(w, "reflect", "-how", how,
						"-remote", ends[0], "-local", net.JoinHostPort(ends[1], strconv.Itoa(port))))
				}
			}
		}
		time.Sleep(500 * time.Millisecond) // datagrams in flight would have arrived by now
		assert.Equal(t, before, strings.Count(s.logs("site"), "udp echo"), "nothing reached the site's UDP echo:\n%s", s.logs("site"))
		assert.NotContains(t, s.logs("site"), "tcp connection from", "no forged mark reached the site")
	})

	dash := fmt.Sprintf("http://127.0.0.1:%d", s.dashPort)
	browser := signIn(t, dash, admin, adminPassword)
	httpGet := func(url string) (string, error) { return getWith(browser, url) }
	t.Run("dashboard", func(t *testing.T) {
		eventually(t, 30*time.Second, "the dashboard shows allowed and blocked decisions", func() (bool, string) {
			body, err := httpGet(dash + "/api/v1/logs")
			if err != nil {
				return false, err.Error()
			}
			return strings.Contains(body, nameAllowed) && strings.Contains(body, nameBlocked), body[:min(len(body), 300)]
		})
		for _, w := range workloads {
			ok, line := s.probe(w, "get", "http://dashboard:8081/health")
			assert.False(t, ok, "%s: the workload must not reach the dashboard: %s", w, line)
		}
	})

	t.Run("policy edit live", func(t *testing.T) {
		ok, line := s.probe("workload", "dns", nameEdited)
		require.True(t, ok && strings.Contains(line, "NXDOMAIN"), "before the edit: %s", line)
		// Saved as editors do: a new file renamed over the old one.
		tmp := filepath.Join(policyDir, ".policy.yaml.new")
		require.NoError(t, os.WriteFile(tmp, []byte(policyText+"    - \""+nameEdited+"\"\n"), 0o644))
		require.NoError(t, os.Rename(tmp, filepath.Join(policyDir, "policy.yaml")))
		edited := time.Now()
		eventually(t, 15*time.Second, "the edit is live", func() (bool, string) {
			ok, line := s.probe("workload", "get", "https://"+nameEdited+"/", ca)
			return ok, line
		})
		t.Logf("edit live after %s", time.Since(edited).Round(100*time.Millisecond))
	})

	t.Run("remote unblock", func(t *testing.T) {
		ok, line := s.probe("workload", "dns", nameUnblock)
		require.True(t, ok && strings.Contains(line, "NXDOMAIN"), "before the unblock: %s", line)
		body, _ := json.Marshal(map[string]string{"hostname": filterHost, "target": nameUnblock})
		req, err := http.NewRequest(http.MethodPost, dash+"/api/v1/unblocks", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", dash)
		req.Header.Set("X-Csrf-Token", csrfToken(t, browser, dash))
		resp, err := browser.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Less(t, resp.StatusCode, 300, "%s", b)
		eventually(t, 30*time.Second, "the unblocked name works", func() (bool, string) {
			return s.probe("workload", "get", "https://"+nameUnblock+"/", ca)
		})
		pol, err := os.ReadFile(filepath.Join(policyDir, "policy.yaml"))
		require.NoError(t, err)
		assert.Contains(t, string(pol), nameUnblock, "the filter added it to the policy file")
	})

	t.Run("restart of the filter", func(t *testing.T) {
		filter := s.container("g0efilter")
		mustRun(t, time.Minute, "", "docker", "stop", "-t", "5", filter)
		// While it is down, nothing leaves the workload.
		for _, w := range workloads {
			ok, line := s.probe(w, "get", "https://"+nameAllowed+"/", ca, siteHTTPS)
			assert.False(t, ok, "%s: nothing leaves while the filter is down: %s", w, line)
			ok, line = s.probe(w, "udp", siteHTTPS)
			assert.False(t, ok, "%s: %s", w, line)
		}
		mustRun(t, time.Minute, "", "docker", "start", filter)
		s.waitHealthy("g0efilter", 60*time.Second)
		// A container that joined the old namespace stays in it: Compose
		// restarts the workloads to join the new one.
		out, err := s.compose(2*time.Minute, "restart", "-t", "2", "workload", "workload-root", "workload-user")
		require.NoError(t, err, out)
		for _, w := range workloads {
			eventually(t, 30*time.Second, w+": allowed traffic works after the restart", func() (bool, string) {
				return s.probe(w, "get", "https://"+nameAllowed+"/", ca)
			})
			ok, line := s.probe(w, "get", "https://"+nameBlocked+"/", ca, siteHTTPS)
			assert.False(t, ok, "%s: still blocked: %s", w, line)
		}
		out, _ = run(t, time.Minute, "", "docker", "exec", filter, "/usr/local/bin/g0efilter", "health")
		assert.Contains(t, out, "ok: ruleset installed", out)
		assert.Equal(t, 2, strings.Count(s.logs("g0efilter"), "msg=\"ruleset installed\""), "one ruleset installed per start")
	})
	t.Logf("total %s", time.Since(start).Round(time.Second))
}

// capSet returns the capability set name ("CapEff") from hostile caps'
// line.
func capSet(t *testing.T, line, name string) uint64 {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			n, err := strconv.ParseUint(v, 16, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("no %s in %q", name, line)
	return 0
}

// randomKey returns a filter key of 32 random bytes, in hex.
func randomKey(t *testing.T) string {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// signIn signs in at the dashboard's login form and returns a client that
// carries the session, after checking that the API refuses a client
// without one.
func signIn(t *testing.T, base, user, password string) *http.Client {
	t.Helper()
	_, err := getWith(&http.Client{Timeout: 10 * time.Second}, base+"/api/v1/logs")
	require.Error(t, err, "the dashboard's API without a session")
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := c.PostForm(base+"/login", url.Values{"user": {user}, "password": {password}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "signed in")
	return c
}

// csrfToken returns the session's CSRF token, as the page reads it.
func csrfToken(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	body, err := getWith(c, base+"/api/v1/info")
	require.NoError(t, err)
	var info struct {
		CSRF string `json:"csrf_token"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &info))
	require.NotEmpty(t, info.CSRF, "%s", body)
	return info.CSRF
}

func getWith(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), err
}

// checkNothingLeft fails the test when a container, network or volume of
// the project survived `down -v`.
func checkNothingLeft(t *testing.T, project string) {
	for _, kind := range []string{"container", "network", "volume"} {
		args := []string{kind, "ls", "-q", "--filter", "label=com.docker.compose.project=" + project}
		if kind == "container" {
			args = []string{"ps", "-aq", "--filter", "label=com.docker.compose.project=" + project}
		}
		out, err := run(t, time.Minute, "", "docker", args...)
		if assert.NoError(t, err, out) {
			assert.Empty(t, strings.TrimSpace(out), "down -v left %ss of %s behind", kind, project)
		}
	}
}

// sweep removes whatever this run made, whatever happened.
func sweep(t *testing.T) {
	out, _ := run(t, time.Minute, "", "docker", "ps", "-aq", "--filter", "label="+runLabel)
	if ids := strings.Fields(out); len(ids) > 0 {
		run(t, time.Minute, "", "docker", append([]string{"rm", "-f", "-v"}, ids...)...)
	}
	out, _ = run(t, time.Minute, "", "docker", "network", "ls", "-q", "--filter", "label="+runLabel)
	if ids := strings.Fields(out); len(ids) > 0 {
		run(t, time.Minute, "", "docker", append([]string{"network", "rm"}, ids...)...)
	}
}

// overrideFile is the Compose override of the test: images built here, a
// stand-in internet ("inet", internal: no route anywhere else) with the
// test sites, the filter's dns: pointed at their DNS server, explicit
// subnets, a writable policy directory, quick health checks, and workloads
// at Docker's default capabilities as root and not, plus a second filter
// in dns mode with a workload of its own. resolv, if not "", is mounted as
// the filters' /etc/resolv.conf.
func overrideFile(tag, dir, policyDir, resolv, site, site6, inetName, defNet, key string) string {
	img := "g0efilter-composetest:" + tag
	runKey, runValue, _ := strings.Cut(runLabel, "=")
	lbl := "      org.g0efilter.test: composetest\n      " + runKey + ": \"" + runValue + "\"\n"
	health := func(test string) string {
		return "    healthcheck:\n      test: [\"CMD\", " + test + "]\n      interval: 2s\n      timeout: 5s\n      retries: 3\n      start_period: 5s\n"
	}
	resolvMount := ""
	if resolv != "" {
		resolvMount = "      - " + resolv + ":/etc/resolv.conf:ro\n"
	}
	filterCommon := "    dns: [" + site + "]\n    networks: [default, inet]\n    labels:\n" + lbl +
		health(`"/usr/local/bin/g0efilter", "health"`)
	workload := func(name, netns, user string) string {
		return "  " + name + ":\n    image: " + img + "\n    network_mode: \"service:" + netns + "\"\n" +
			"    user: \"" + user + "\"\n    entrypoint: [\"/usr/local/bin/probe\"]\n    command: [\"sleep\"]\n" +
			"    depends_on:\n      " + netns + ":\n        condition: service_healthy\n" +
			"    volumes:\n      - " + dir + ":/certs:ro\n    labels:\n" + lbl
	}
	return `services:
  g0efilter:
    image: g0efilter:` + tag + `
    environment:
      ENABLE_REMOTE_UNBLOCK: "true"
      UNBLOCK_POLL_INTERVAL: 1s
      DASHBOARD_START_DELAY: 1s
      DASHBOARD_API_KEY: ` + key + `
    volumes:
      - ` + policyDir + `:/app/policy
` + resolvMount + filterCommon + `
  g0efilter-dns:
    image: g0efilter:` + tag + `
    hostname: g0efilter-dns
    env_file: .env
    environment:
      FILTER_MODE: dns
      DASHBOARD_START_DELAY: 1s
      DASHBOARD_API_KEY: ` + key + `
    cap_drop: [ALL]
    cap_add: [NET_ADMIN]
    security_opt: ["no-new-privileges:true"]
    read_only: true
    tmpfs: ["/tmp:size=16m,mode=1777"]
    volumes:
      - ` + policyDir + `:/app/policy:ro
` + resolvMount + filterCommon + `
  dashboard:
    image: g0efilter-dashboard:` + tag + `
    environment:
      ENABLE_UNBLOCKS: "true"
      API_KEY: ` + key + `
    labels:
` + lbl + health(`"/usr/local/bin/dashboard", "health"`) + `
  workload:
    image: ` + img + `
    entrypoint: ["/usr/local/bin/probe"]
    command: ["sleep"]
    volumes:
      - ` + dir + `:/certs:ro
    labels:
` + lbl + workload("workload-root", "g0efilter", "0:0") + workload("workload-user", "g0efilter", "65534:65534") +
		workload("workload-dns", "g0efilter-dns", "0:0") + `
  site:
    image: ` + img + `
    command: ["/usr/local/bin/testnet", "-names", "` + strings.Join([]string{nameAllowed, nameWildcard, nameBlocked, nameEdited, nameUnblock}, ",") +
		`", "-a", "` + site + `", "-aaaa", "` + site6 + `", "-cert", "/certs/site.crt", "-key", "/certs/site.key"]
    networks:
      inet:
        ipv4_address: ` + site + `
        ipv6_address: ` + site6 + `
    volumes:
      - ` + dir + `:/certs:ro
    labels:
` + lbl + `
networks:
  default:
    labels:
` + lbl + `    ipam:
      config:
        - subnet: ` + defNet + `
  inet:
    external: true
    name: ` + inetName + `

volumes:
  dashboard-data:
    labels:
` + lbl
}
