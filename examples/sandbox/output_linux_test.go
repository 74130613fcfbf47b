//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/internal/netnstest"
	"github.com/g0lab/g0efilter/internal/testbed"
)

// envAsMain makes the test binary run the sandbox's main on its own
// stdout, for TestSandboxStopsWhenOutputCloses.
const envAsMain = "G0E_SANDBOX_AS_MAIN"

// TestSandboxStopsWhenOutputCloses runs the sandbox as a process whose
// output is a pipe, and closes the pipe's reading end once the sandbox is
// up, as "| head" does when it has its lines, or with Ctrl-C (SIGINT to
// both) through "| tee": the sandbox stops and leaves nothing behind.
func TestSandboxStopsWhenOutputCloses(t *testing.T) {
	if args := os.Getenv(envAsMain); args != "" {
		os.Exit(mainCode(strings.Fields(args), os.Stdout, os.Stderr))
	}
	netnstest.Require(t, "ip")
	dir := t.TempDir()
	bins := map[string]string{"g0efilter": filterPackage, "dashboard": dashboardPackage}
	for name, pkg := range bins {
		bins[name] = filepath.Join(dir, name)
		require.NoError(t, goBuild(t.Context(), bins[name], pkg))
	}
	for _, tt := range []struct {
		name   string
		sigint bool
	}{
		{"pipe closed", false},
		{"Ctrl-C through tee", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			require.NoError(t, err)
			defer r.Close()
			cmd := exec.Command(os.Args[0], "-test.run", "^TestSandboxStopsWhenOutputCloses$")
			cmd.Env = append(os.Environ(), envAsMain+"=-port 0 -interval 500ms -duration "+(upTimeout+time.Minute).String()+
				" -g0efilter "+bins["g0efilter"]+" -dashboard "+bins["dashboard"])
			cmd.Stdout, cmd.Stderr = w, t.Output()
			require.NoError(t, cmd.Start())
			w.Close()
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()

			// The names it made, from what it prints, up to the
			// instructions' first line.
			var box, netNS, tmp string
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				line := sc.Text()
				t.Log(line)
				if rest, ok := strings.CutPrefix(line, "sandbox: making namespaces "); ok {
					box, netNS, _ = strings.Cut(rest, " and ")
				}
				if rest, ok := strings.CutPrefix(line, "  Files in "); ok {
					tmp = strings.TrimSuffix(rest, ":")
				}
				if strings.Contains(line, "Ctrl-C stops everything") {
					break
				}
			}
			t.Cleanup(func() {
				// Should it still run, or have left something: end it.
				_ = cmd.Process.Signal(syscall.SIGTERM)
				for _, ns := range []string{box, netNS} {
					if ns != "" {
						_ = testbed.DeleteNamespace(ns)
					}
				}
				if box != "" {
					_ = os.RemoveAll(filepath.Join(etcNetns, box))
				}
				if strings.HasPrefix(tmp, os.TempDir()) {
					_ = os.RemoveAll(tmp)
				}
			})
			require.NotEmpty(t, box, "no namespaces named in the output")
			require.NotEmpty(t, tmp, "no directory named in the output")
			require.DirExists(t, tmp)

			r.Close()
			if tt.sigint {
				require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
			}
			select {
			case err := <-exited:
				assert.NoError(t, err, "a closed output is a stop like Ctrl-C")
			case <-time.After(30 * time.Second):
				t.Fatal("the sandbox still runs 30s after its output closed")
			}
			after, err := listSandboxNamespaces()
			require.NoError(t, err)
			assert.False(t, slices.Contains(after, box) || slices.Contains(after, netNS), "namespaces left behind: %v", after)
			assert.NoDirExists(t, filepath.Join(etcNetns, box))
			assert.NoDirExists(t, tmp)
			cgroups, _ := filepath.Glob(filepath.Join(cgroupMount(t), fmt.Sprintf("g0e-sbx-%d-*", cmd.Process.Pid)))
			assert.Empty(t, cgroups, "cgroups left behind")
		})
	}
}

// cgroupMount is where the sandbox makes its processes' cgroups.
func cgroupMount(t *testing.T) string {
	mount, err := testbed.Cgroup2Mount()
	require.NoError(t, err)
	return mount
}
