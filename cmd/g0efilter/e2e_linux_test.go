package main

import (
	"os"
	"os/exec"
	"regexp"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/internal/e2e"
)

func TestMain(m *testing.M) { os.Exit(e2e.Main(m)) }

// ruleset returns "nft list ruleset" run in the namespace ns.
func ruleset(ns string) (string, error) {
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "ruleset").CombinedOutput()
	return string(out), err
}

const (
	policyOne = "allowlist:\n  ips:\n    - \"198.18.0.3\"\n  domains:\n    - \"github.com\"\n"
	policyTwo = "allowlist:\n  ips:\n    - \"198.18.0.3\"\n    - \"198.18.0.4\"\n  domains:\n    - \"github.com\"\n"
)

// TestRunInNetNS runs "g0efilter run" in a box namespace of the end-to-end
// harness: the installed table is what dry-run prints, a policy edit
// reaches the set, a broken edit changes nothing, SIGTERM leaves the rules
// installed, and a second run replaces them cleanly.
func TestRunInNetNS(t *testing.T) {
	env := e2e.New(t)

	health := func() (string, error) {
		out, err := exec.Command("ip", "netns", "exec", env.Box, e2e.Binary(t), "health").CombinedOutput()
		return string(out), err
	}
	out, err := health()
	require.Error(t, err, "no ruleset yet: %s", out)
	assert.Contains(t, out, "no table inet g0efilter")

	p := env.StartFilter(t, policyOne, nil)
	p.WaitForSet("198.18.0.3")
	out, err = health()
	require.NoError(t, err, "%s", out)
	wantHealth := "ok: ruleset installed\nmode: enforce\nown sockets: mark and cgroup\negress guard: veth0\n"
	if hasAFXDP() {
		wantHealth += "AF_XDP: " + afXDPWarning + "\n"
	}
	assert.Equal(t, wantHealth, out)
	listing, err := ruleset(env.Box)
	require.NoError(t, err)

	// The kernel's listing is what dry-run prints for the same policy, run
	// where the filter runs (its namespace and cgroup), but for the mark,
	// chosen at random.
	cg, err := os.Open(p.CgroupPath())
	require.NoError(t, err)
	defer cg.Close()
	dry := exec.Command("nsenter", "--net=/run/netns/"+env.Box, "--", e2e.Binary(t), "dry-run")
	dry.Env = []string{"PATH=" + os.Getenv("PATH"), "POLICY_PATH=" + p.PolicyPath()}
	dry.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	want, err := dry.Output()
	require.NoError(t, err)
	marks := regexp.MustCompile(`meta mark (!= )?0x[0-9a-f]{8}`)
	assert.Equal(t, marks.ReplaceAllString(string(want), "meta mark ${1}MARK"), marks.ReplaceAllString(listing, "meta mark ${1}MARK"))
	assert.Contains(t, listing, "socket cgroupv2 level")
	assert.Contains(t, listing, `device "veth0"`)

	// A reload adds 198.18.0.4 to the set.
	p.SetPolicy(policyTwo)
	p.WaitForSet("198.18.0.4")
	p.WaitForOutput("policy reloaded")
	reloaded, err := p.Listing()
	require.NoError(t, err)

	// A broken policy is reported; the sets stay and the filter runs on.
	p.SetPolicy("allowlist:\n  ips:\n    - \"300.0.0.1\"\n")
	p.WaitForOutput("policy not reloaded")
	after, err := p.Listing()
	require.NoError(t, err)
	assert.Equal(t, reloaded, after, "a broken policy must not change the rules")
	assert.True(t, p.Running(), "g0efilter must survive a broken policy")

	// SIGTERM: a clean exit, and the rules stay installed (fail closed).
	assert.Equal(t, 0, p.Stop())
	assert.Contains(t, p.Output(), "the rules stay installed")
	after, err = p.Listing()
	require.NoError(t, err, "the table must stay after exit")
	assert.Equal(t, reloaded, after)

	// A second run replaces the tables: one of each, the same rules but
	// for its own mark and cgroup.
	p2 := env.StartFilter(t, policyTwo, nil)
	p2.WaitForOutput("ruleset installed")
	tables, err := env.Tables()
	require.NoError(t, err)
	assert.Equal(t, "table inet g0efilter\ntable netdev g0efilter\n", tables)
	after, err = p2.Listing()
	require.NoError(t, err)
	own := regexp.MustCompile(`(meta mark (!= )?0x[0-9a-f]{8})|(cgroupv2 level \d+ \d+)`)
	assert.Equal(t, own.ReplaceAllString(reloaded, "OWN"), own.ReplaceAllString(after, "OWN"))
	assert.NotEqual(t, reloaded, after, "a new mark and cgroup")
	assert.Equal(t, 0, p2.Stop())
}
