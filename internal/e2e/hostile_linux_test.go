//go:build linux

package e2e_test

import (
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/g0lab/g0efilter/internal/e2e"
)

const (
	recorderPort = 9000
	rawPort      = 9001
	forgedMark   = "0x6700" // the filter's default bypass mark
	arriveWithin = 5 * time.Second
	arrivePoll   = 10 * time.Millisecond
)

// dockerCaps is the CapEff of a process in a Docker container by default:
// CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP,
// NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE and SETFCAP.
const dockerCaps = 0xa80425fb

var users = []struct {
	user e2e.User
	uid  string
	amb  uint64 // the ambient set
}{
	{e2e.AsRoot, "0", 0},
	{e2e.AsNobody, "65534", dockerCaps},
}

// okLine runs the hostile program and requires it to succeed.
func okLine(t *testing.T, env *e2e.Env, as e2e.User, args ...string) string {
	t.Helper()
	ok, line := env.Hostile(t, as, args...)
	require.True(t, ok, "hostile %q as %v: %s", args, as, line)
	return line
}

// fields parses "ok k=v k=v ..." into a map.
func fields(t *testing.T, line string) map[string]string {
	t.Helper()
	rest, ok := strings.CutPrefix(line, "ok ")
	require.True(t, ok, line)
	m := map[string]string{}
	for _, f := range strings.Fields(rest) {
		k, v, ok := strings.Cut(f, "=")
		require.True(t, ok, "field %q in %s", f, line)
		m[k] = v
	}
	return m
}

func TestHostileCaps(t *testing.T) {
	env := e2e.New(t)
	for _, u := range users {
		t.Run(u.user.String(), func(t *testing.T) {
			got := fields(t, okLine(t, env, u.user, "caps"))
			assert.Equal(t, u.uid, got["uid"])
			assert.Equal(t, u.uid, got["gid"])
			capEff, err := strconv.ParseUint(got["CapEff"], 16, 64)
			require.NoError(t, err)
			assert.NotZero(t, capEff&(1<<unix.CAP_NET_RAW), "NET_RAW")
			assert.Zero(t, capEff&(1<<unix.CAP_NET_ADMIN), "NET_ADMIN")
			assert.Equal(t, fmt.Sprintf("%016x", dockerCaps), got["CapEff"])
			assert.Equal(t, fmt.Sprintf("%016x", dockerCaps), got["CapBnd"])
			assert.Equal(t, fmt.Sprintf("%016x", u.amb), got["CapAmb"])
		})
	}
}

// TestHostileReachesUpstream checks the hostile program itself: without a
// filter, everything it sends arrives upstream, marked or not, from root
// and from nobody. A test that sees nothing arrive with a filter running
// can then blame the filter.
func TestHostileReachesUpstream(t *testing.T) {
	env := e2e.New(t)
	env.Echo("tcp", fmt.Sprintf(":%d", echoPort))
	udp := env.RecordUDP(t, netip.AddrPortFrom(netip.IPv6Unspecified(), recorderPort))
	raw := env.RecordUDP(t, netip.AddrPortFrom(netip.IPv6Unspecified(), rawPort))
	upMAC := env.UpstreamMAC(t)
	require.NotEqual(t, upMAC, env.BoxMAC(t))

	var wantUDP []string
	for _, u := range users {
		for _, fam := range families {
			for _, mark := range []string{"0", forgedMark} {
				t.Run(fmt.Sprintf("%v/%s/mark=%s", u.user, fam.name, mark), func(t *testing.T) {
					line := okLine(t, env, u.user, "tcp", "-addr", hostPort(fam.blocked, echoPort), "-mark", mark)
					assert.Equal(t, `ok "ping\n"`, line, "tcp")
					line = okLine(t, env, u.user, "udp", "-addr", hostPort(fam.blocked, recorderPort), "-mark", mark)
					assert.Equal(t, `ok "pong"`, line, "udp")
					wantUDP = append(wantUDP, "ping")
				})
			}
			for _, bypass := range []bool{false, true} {
				t.Run(fmt.Sprintf("%v/%s/raw/bypass=%v", u.user, fam.name, bypass), func(t *testing.T) {
					src := e2e.Box4
					if fam.blocked.Is6() {
						src = e2e.Box6
					}
					args := []string{"raw", "-ifname", e2e.VethName, "-dstmac", upMAC,
						"-src", src.String(), "-dst", fam.blocked.String(), "-port", strconv.Itoa(rawPort)}
					if bypass {
						args = append(args, "-bypass")
					}
					before := raw.Count()
					line := okLine(t, env, u.user, args...)
					assert.Regexp(t, `^ok sent \d+ bytes$`, line)
					require.Eventually(t, func() bool { return raw.Count() > before }, arriveWithin, arrivePoll,
						"the frame did not reach the upstream socket")
					assert.Equal(t, "g0e-raw", raw.Payloads()[before])
				})
			}
		}
	}
	assert.Equal(t, wantUDP, udp.Payloads())
}

// cgroupOf returns the cgroup v2 path of process pid, relative to the
// cgroup2 mount.
func cgroupOf(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	require.NoError(t, err)
	for line := range strings.SplitSeq(string(b), "\n") {
		if path, ok := strings.CutPrefix(line, "0::"); ok {
			return path
		}
	}
	require.Failf(t, "no cgroup v2 line", "%s", b)
	return ""
}

func TestFilterCgroup(t *testing.T) {
	var dirs []string
	t.Run("env", func(t *testing.T) {
		env := e2e.New(t)
		var ids []uint64
		for i, name := range []string{"filter", "filter-2"} {
			f := env.StartFilter(t, allowBoth, nil)
			rel := cgroupOf(t, f.Pid())
			assert.Regexp(t, `^/g0e-e2e-[0-9a-f]{8}/`+regexp.QuoteMeta(name)+`$`, rel)
			assert.True(t, strings.HasSuffix(f.CgroupPath(), rel), "%s is not %s", f.CgroupPath(), rel)
			var st unix.Stat_t
			require.NoError(t, unix.Stat(f.CgroupPath(), &st))
			assert.Equal(t, st.Ino, f.CgroupID())
			ids = append(ids, f.CgroupID())
			dirs = append(dirs, f.CgroupPath())

			// The pid is the filter's, nsenter having exec'd it.
			exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", f.Pid()))
			require.NoError(t, err)
			assert.Equal(t, e2e.Binary(t), exe)

			// The workload has a cgroup of its own.
			for _, u := range users {
				line := okLine(t, env, u.user, "cgroup")
				assert.NotEqual(t, "ok "+rel, line, "hostile as %v in the filter's cgroup", u.user)
				assert.Regexp(t, `^ok /g0e-e2e-[0-9a-f]{8}/workload$`, line)
			}

			if i == 0 {
				// Stop still gets the filter's exit status.
				assert.Equal(t, 0, f.Stop())
			}
		}
		assert.NotEqual(t, ids[0], ids[1], "each filter has a fresh cgroup")
	})
	if len(dirs) == 0 {
		t.Skip("the environment was not created")
	}
	for _, dir := range dirs {
		assert.NoDirExists(t, dir, "cgroup left behind")
		assert.NoDirExists(t, dir[:strings.LastIndex(dir, "/")], "the Env's cgroup left behind")
	}
}
