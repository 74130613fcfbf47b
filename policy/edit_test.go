package policy

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var updateEditGolden = flag.Bool("update-edit", false, "rewrite the expected files in testdata/edit")

// editCase adds entry to a copy of testdata/edit/<in>.in.yaml and expects
// testdata/edit/<name>.out.yaml.
type editCase struct {
	name, in string
	ip       bool
	entry    string
}

var editCases = []editCase{
	{name: "block", in: "block", entry: "Example.ORG."},
	{name: "mode", in: "mode", entry: "example.org"},
	{name: "mode-ip", in: "mode", ip: true, entry: "tcp/192.0.2.7:5432"},
	{name: "block-ip", in: "block", ip: true, entry: "192.0.2.0/24"},
	{name: "block-covered-by-wildcard", in: "block", entry: "dl-cdn.alpinelinux.org"},
	{name: "block-plain", in: "block-plain", entry: "new.example.org"},
	{name: "block-plain-wildcard", in: "block-plain", entry: "*.example.org"},
	{name: "block-single", in: "block-single", entry: "example.org"},
	{name: "block-single-ip", in: "block-single", ip: true, entry: "2001:db8::/48"},
	{name: "block-dash-at-key", in: "block-dash-at-key", ip: true, entry: "9.9.9.9"},
	{name: "block-dash-at-key-domain", in: "block-dash-at-key", entry: "example.org"},
	{name: "block-wide-gap", in: "block-wide-gap", entry: "example.org"},
	{name: "flow", in: "flow", ip: true, entry: "::FFFF:192.0.2.1"},
	{name: "flow-domain", in: "flow", entry: "example.org"},
	{name: "flow-empty", in: "flow-empty", ip: true, entry: "192.0.2.1"},
	{name: "flow-empty-domain", in: "flow-empty", entry: "*"},
	{name: "flow-multiline", in: "flow-multiline", entry: "example.org"},
	{name: "flow-multiline-ip", in: "flow-multiline", ip: true, entry: "192.0.2.1"},
	{name: "flow-mapping", in: "flow-mapping", ip: true, entry: "2001:DB8::1"},
	{name: "flow-mapping-missing-key", in: "flow-mapping-missing-key", ip: true, entry: "192.0.2.1"},
	{name: "allowlist-empty-flow", in: "allowlist-empty-flow", entry: "example.org"},
	{name: "null-empty", in: "null-empty", ip: true, entry: "192.0.2.1"},
	{name: "null-tilde", in: "null-tilde", ip: true, entry: "192.0.2.1"},
	{name: "null-word", in: "null-word", entry: "example.org"},
	{name: "null-last", in: "null-last", ip: true, entry: "192.0.2.1"},
	{name: "missing-key", in: "missing-key", ip: true, entry: "192.0.2.1"},
	{name: "missing-key-flow-sibling", in: "missing-key-flow-sibling", entry: "example.org"},
	{name: "allowlist-null", in: "allowlist-null", entry: "example.org"},
	{name: "allowlist-tilde", in: "allowlist-tilde", entry: "example.org"},
	{name: "missing-allowlist", in: "missing-allowlist", entry: "example.org"},
	{name: "missing-allowlist-flow", in: "missing-allowlist-flow", ip: true, entry: "192.0.2.1"},
	{name: "no-final-newline", in: "no-final-newline", entry: "example.org"},
	{name: "no-final-newline-flow", in: "no-final-newline-flow", entry: "example.org"},
	{name: "crlf", in: "crlf", entry: "example.org"},
	{name: "crlf-ip", in: "crlf", ip: true, entry: "192.0.2.1"},
	{name: "crlf-missing-key", in: "crlf-missing-key", ip: true, entry: "192.0.2.1"},
	{name: "bom", in: "bom", ip: true, entry: "192.0.2.1"},
	{name: "document-end", in: "document-end", entry: "example.org"},
	{name: "multiline-item", in: "multiline-item", entry: "example.org"},
}

func (c editCase) add(e *Editor) (bool, error) {
	if c.ip {
		return e.AddIP(c.entry)
	}
	return e.AddDomain(c.entry)
}

// copyEditInput copies testdata/edit/<in>.in.yaml to a new temporary file and
// returns its path and content.
func copyEditInput(t *testing.T, in string) (string, []byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "edit", in+".in.yaml"))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path, data
}

func TestEditorGolden(t *testing.T) {
	for _, c := range editCases {
		t.Run(c.name, func(t *testing.T) {
			path, _ := copyEditInput(t, c.in)
			e := &Editor{Path: path}
			added, err := c.add(e)
			require.NoError(t, err)
			assert.True(t, added)
			got, err := os.ReadFile(path)
			require.NoError(t, err)

			golden := filepath.Join("testdata", "edit", c.name+".out.yaml")
			if *updateEditGolden {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got))

			// Adding again is a no-op.
			added, err = c.add(e)
			require.NoError(t, err)
			assert.False(t, added)
		})
	}
}

func TestEditorDuplicate(t *testing.T) {
	tests := []struct {
		name  string
		ip    bool
		entry string
	}{
		{name: "same spelling", entry: "github.com"},
		{name: "case and trailing dot", entry: "GitHub.COM."},
		{name: "wildcard", entry: "*.AlpineLinux.org"},
		{name: "address as /32", ip: true, entry: "1.1.1.1/32"},
		{name: "IPv4-mapped address", ip: true, entry: "::ffff:1.1.1.1"},
		{name: "IPv6 prefix in upper case", ip: true, entry: "2001:DB8::/32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, before := copyEditInput(t, "block")
			past := time.Now().Add(-time.Hour).Truncate(time.Second)
			require.NoError(t, os.Chtimes(path, past, past))

			added, err := editCase{ip: tt.ip, entry: tt.entry}.add(&Editor{Path: path})
			require.NoError(t, err)
			assert.False(t, added)
			assertFileUnchanged(t, path, before)
			info, err := os.Stat(path)
			require.NoError(t, err)
			assert.True(t, info.ModTime().Equal(past), "mtime changed to %v", info.ModTime())
		})
	}
}

func TestEditorRefuses(t *testing.T) {
	const good = "allowlist:\n  ips: [\"1.1.1.1\"]\n"
	tests := []struct {
		name   string
		file   string
		ip     bool
		entry  string
		wantIs error  // when not nil, the error wraps it
		wantIn string // the error mentions this
	}{
		{name: "invalid domain", file: good, entry: "https://example.com/", wantIs: ErrDomain, wantIn: `"https://example.com/"`},
		{name: "IP as a domain", file: good, entry: "192.0.2.1", wantIs: ErrDomain},
		{name: "invalid IP", file: good, ip: true, entry: "192.0.2.1:0", wantIs: ErrIP, wantIn: `"192.0.2.1:0"`},
		{name: "host bits set", file: good, ip: true, entry: "10.1.0.0/8", wantIs: ErrIP},
		{name: "invalid entry in file", file: "allowlist:\n  ips: [\"1.1.1.1\", \"nope\"]\n", entry: "example.org", wantIs: ErrIP, wantIn: ":2:"},
		{name: "unknown key in file", file: "allowlist:\n  hosts: []\n", entry: "example.org", wantIs: ErrUnknownKey},
		{name: "syntax error in file", file: "allowlist:\n  ips: [\"1.1.1.1\"\n", entry: "example.org", wantIs: ErrSyntax},
		{name: "empty file", file: "", entry: "example.org", wantIs: ErrEmpty},
		{name: "comments only", file: "# nothing\n", entry: "example.org", wantIs: ErrEmpty},
		{name: "empty value in a flow mapping", file: "allowlist: {ips}\n", ip: true, entry: "192.0.2.1", wantIn: "not supported"},
		{name: "anchored list", file: "allowlist:\n  ips: &resolvers [\"1.1.1.1\"]\n", ip: true, entry: "192.0.2.1", wantIn: "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "policy.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tt.file), 0o644))

			added, err := editCase{ip: tt.ip, entry: tt.entry}.add(&Editor{Path: path})
			require.Error(t, err)
			assert.False(t, added)
			if tt.wantIs != nil {
				assert.ErrorIs(t, err, tt.wantIs)
			}
			assert.Contains(t, err.Error(), tt.wantIn)
			assertFileUnchanged(t, path, []byte(tt.file))
			entries, err := os.ReadDir(filepath.Dir(path))
			require.NoError(t, err)
			assert.Len(t, entries, 1, "a temporary file was left behind")
		})
	}
}

func TestEditorMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	added, err := (&Editor{Path: path}).AddDomain("example.org")
	assert.False(t, added)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.NoFileExists(t, path)
}

func TestEditorKeepsModeAndSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real", "policy.yaml")
	require.NoError(t, os.Mkdir(filepath.Dir(real), 0o755))
	require.NoError(t, os.WriteFile(real, []byte("allowlist: {}\n"), 0o640))
	link := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.Symlink(filepath.Join("real", "policy.yaml"), link))

	added, err := (&Editor{Path: link}).AddDomain("example.org")
	require.NoError(t, err)
	assert.True(t, added)

	info, err := os.Lstat(link)
	require.NoError(t, err)
	assert.Equal(t, fs.ModeSymlink, info.Mode().Type(), "the link was replaced")
	info, err = os.Stat(real)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o640), info.Mode().Perm())
	data, err := os.ReadFile(real)
	require.NoError(t, err)
	assert.Equal(t, "allowlist: {domains: [\"example.org\"]}\n", string(data))
	entries, err := os.ReadDir(filepath.Dir(real))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "a temporary file was left behind")
}

func TestEditorConcurrentAdds(t *testing.T) {
	path, _ := copyEditInput(t, "block")
	e := &Editor{Path: path}
	domains := []string{"one.example", "two.example", "three.example", "four.example"}
	var wg sync.WaitGroup
	errs := make([]error, len(domains))
	for i, d := range domains {
		wg.Go(func() {
			_, errs[i] = e.AddDomain(d)
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	p, err := ReadFile(path)
	require.NoError(t, err)
	assert.ElementsMatch(t, append([]string{"github.com", "*.alpinelinux.org"}, domains...), p.Domains)
}

func TestEditorRedoesAfterConcurrentChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte("allowlist:\n  domains:\n    - \"github.com\"\n"), 0o644))
	const changed = "allowlist:\n  domains:\n    - \"github.com\"\n    - \"gitlab.com\" # added meanwhile\n"
	writes := 0
	e := &Editor{Path: path, beforeWrite: func() {
		if writes++; writes == 1 {
			require.NoError(t, os.WriteFile(path, []byte(changed), 0o644))
		}
	}}

	added, err := e.AddDomain("example.org")
	require.NoError(t, err)
	assert.True(t, added)
	assert.Equal(t, 2, writes, "the edit was not redone")
	assertFileUnchanged(t, path, []byte(changed+"    - \"example.org\"\n"))
}

func TestEditorGivesUpWhenFileKeepsChanging(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte("allowlist: {}\n"), 0o644))
	var last []byte
	n := 0
	e := &Editor{Path: path, beforeWrite: func() {
		n++
		last = fmt.Appendf(nil, "allowlist:\n  ips: [\"192.0.2.%d\"]\n", n)
		require.NoError(t, os.WriteFile(path, last, 0o644))
	}}

	added, err := e.AddDomain("example.org")
	assert.False(t, added)
	assert.ErrorContains(t, err, "kept changing")
	assert.Equal(t, editAttempts, n)
	assertFileUnchanged(t, path, last)
}

func TestMustWriteInPlace(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&os.LinkError{Op: "rename", Err: syscall.EBUSY}, true},
		{&os.LinkError{Op: "rename", Err: syscall.EXDEV}, true},
		{&fs.PathError{Op: "open", Err: syscall.EACCES}, true},
		{&fs.PathError{Op: "open", Err: syscall.EPERM}, true},
		{&fs.PathError{Op: "open", Err: syscall.EROFS}, true},
		{&fs.PathError{Op: "write", Err: syscall.ENOSPC}, false},
		{&fs.PathError{Op: "open", Err: syscall.ENOENT}, false},
		{errors.New("something else"), false},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			assert.Equal(t, tt.want, mustWriteInPlace(tt.err))
		})
	}
}

func TestOverwriteFileRefusesToShorten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	old := []byte("allowlist: {}\n")
	require.NoError(t, os.WriteFile(path, old, 0o644))
	assert.Error(t, overwriteFile(path, old, old[:4]))
	assertFileUnchanged(t, path, old)
}

// TestEditorBindMountedFile edits a file that is a bind mount of its own, as
// "./policy.yaml:/app/policy.yaml" in Docker makes it, which can only be
// written in place; and a file on a read-only mount, as in a Kubernetes
// ConfigMap volume, which cannot be written at all.
func TestEditorBindMountedFile(t *testing.T) {
	requireMountPrivileges(t)
	host := t.TempDir()
	app := t.TempDir()
	hostFile := filepath.Join(host, "policy.yaml")
	appFile := filepath.Join(app, "policy.yaml")
	data, err := os.ReadFile(filepath.Join("testdata", "edit", "block.in.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(hostFile, data, 0o644))
	require.NoError(t, os.WriteFile(appFile, nil, 0o644))
	bindMount(t, hostFile, appFile)

	// The premise: replacing the file by rename is impossible.
	tmp := filepath.Join(app, "policy.yaml.new")
	require.NoError(t, os.WriteFile(tmp, data, 0o644))
	require.ErrorIs(t, os.Rename(tmp, appFile), syscall.EBUSY)
	require.NoError(t, os.Remove(tmp))

	added, err := (&Editor{Path: appFile}).AddDomain("Example.ORG.")
	require.NoError(t, err)
	assert.True(t, added)
	want, err := os.ReadFile(filepath.Join("testdata", "edit", "block.out.yaml"))
	require.NoError(t, err)
	assertFileUnchanged(t, appFile, want)
	assertFileUnchanged(t, hostFile, want) // the host's file, not a copy, was edited
	entries, err := os.ReadDir(app)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "a temporary file was left behind")

	t.Run("read-only", func(t *testing.T) {
		runMount(t, "-o", "remount,bind,ro", appFile)
		added, err := (&Editor{Path: appFile}).AddDomain("another.example.org")
		assert.False(t, added)
		assert.ErrorIs(t, err, syscall.EROFS)
		assert.ErrorContains(t, err, "read-only file system")
		assertFileUnchanged(t, hostFile, want)
	})
}

// requireMountPrivileges skips the test unless it can mount file systems.
// Under CI=true it fails instead: privileged tests must run there.
func requireMountPrivileges(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "linux" && os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root on Linux, and CI=true requires it to run")
	}
	t.Skip("needs root on Linux to make bind mounts")
}

// bindMount mounts src on dst and unmounts it when the test ends.
func bindMount(t *testing.T, src, dst string) {
	t.Helper()
	runMount(t, "--bind", src, dst)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dst).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dst, err, out)
		}
	})
}

// runMount runs mount(8). It uses the command rather than syscall.Mount,
// which exists only on Linux, so that the package's tests build everywhere.
func runMount(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func assertFileUnchanged(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
}

// FuzzEditorAdd adds an entry to arbitrary file content. Either the edit is
// refused, or it is a no-op because the policy has the entry, or the result
// parses to the old policy with the entry appended, and differs from the old
// content only by inserted bytes (or a null such as "~" replaced).
func FuzzEditorAdd(f *testing.F) {
	for _, c := range editCases {
		data, err := os.ReadFile(filepath.Join("testdata", "edit", c.in+".in.yaml"))
		require.NoError(f, err)
		f.Add(data, c.entry, c.ip)
	}
	f.Add([]byte("allowlist:\n  ips: [\"1.1.1.1\"] # [\n  domains: ['a''b', \"c\\\"d\"]\n"), "example.org", false)
	f.Add([]byte("allowlist: {ips: [], domains: [# c\n a.example, ]}"), "b.example", false)

	f.Fuzz(func(t *testing.T, data []byte, entry string, ip bool) {
		newAddition := domainAddition
		if ip {
			newAddition = ipAddition
		}
		a, err := newAddition(entry)
		if err != nil {
			return
		}

		edited, added, err := edit("fuzz.yaml", data, a)
		old, parseErr := Parse("fuzz.yaml", data)
		switch {
		case err != nil:
			assert.Nil(t, edited)
			assert.False(t, added)
		case !added:
			require.NoError(t, parseErr)
			assert.True(t, a.in(old))
			assert.Nil(t, edited)
		default:
			require.NoError(t, parseErr)
			got, err := Parse("fuzz.yaml", edited)
			require.NoError(t, err, "edited file:\n%s", edited)
			assert.Equal(t, a.appendTo(old), got)
			assertOnlyInserted(t, data, edited)
		}
	})
}

// assertOnlyInserted asserts that edited is data with bytes inserted at one
// place, or with a null ("~", "null") replaced by longer text.
func assertOnlyInserted(t *testing.T, data, edited []byte) {
	t.Helper()
	require.Greater(t, len(edited), len(data))
	prefix := 0
	for prefix < len(data) && data[prefix] == edited[prefix] {
		prefix++
	}
	suffix := 0
	for suffix < len(data)-prefix && data[len(data)-1-suffix] == edited[len(edited)-1-suffix] {
		suffix++
	}
	replaced := string(data[prefix : len(data)-suffix])
	assert.True(t, replaced == "" || strings.Contains("~ null Null NULL", replaced), "replaced %q", replaced)
}

// TestEditorGeneratedLayouts adds entries to policy files written in
// layouts drawn at random from those the Editor supports, and checks that
// every edit succeeds, means what it should, and keeps the line endings.
func TestEditorGeneratedLayouts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		data := randomPolicyFile(r)
		var a addition
		var err error
		if r.IntN(2) == 0 {
			a, err = ipAddition(randomIP(r))
		} else {
			a, err = domainAddition(randomDomain(r))
		}
		require.NoError(t, err)
		old, err := Parse("generated.yaml", data)
		require.NoError(t, err, "file %d:\n%s", i, data)

		edited, added, err := edit("generated.yaml", data, a)
		require.NoError(t, err, "adding %q to file %d:\n%s", a.value, i, data)
		if a.in(old) {
			assert.False(t, added)
			continue
		}
		require.True(t, added)
		got, err := Parse("generated.yaml", edited)
		require.NoError(t, err)
		require.Equal(t, a.appendTo(old), got, "adding %q to file %d:\n%s", a.value, i, data)
		assertOnlyInserted(t, data, edited)
		if bytes.Contains(data, []byte("\r\n")) {
			assert.Equal(t, bytes.Count(edited, []byte("\n")), bytes.Count(edited, []byte("\r\n")), "a bare line feed in:\n%q", edited)
		}
	}
}

// randomPolicyFile writes a random policy in a random layout: lists in
// block or flow style, null or missing; comments; quoting; indentation;
// line endings; with or without a final line break.
func randomPolicyFile(r *rand.Rand) []byte {
	pick := func(choices ...string) string { return choices[r.IntN(len(choices))] }
	eol := pick("\n", "\r\n")
	indent := pick("  ", "    ")
	dash := indent + pick("", "  ")
	gap := pick(" ", "   ")
	quote := func(v string) string {
		switch q := pick("plain", "'", `"`); {
		case q == "plain" && !strings.HasPrefix(v, "*"):
			return v
		case q == "'":
			return "'" + v + "'"
		}
		return `"` + v + `"`
	}
	comment := func() string { return pick("", "", "  # note") }

	var b strings.Builder
	line := func(s string) { b.WriteString(s + eol) }
	if r.IntN(3) == 0 {
		line("# g0efilter policy")
	}
	line("allowlist:" + comment())
	keys := []string{keyIPs, keyDomains}
	r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	for _, key := range keys {
		var items []string
		for range r.IntN(4) {
			item := randomDomain(r)
			if key == keyIPs {
				item = randomIP(r)
			}
			items = append(items, quote(item))
		}
		switch style := r.IntN(6); {
		case style == 0:
			// missing
		case style == 1:
			line(indent + key + ":" + comment())
		case style == 2:
			line(indent + key + ": " + pick("~", "null") + comment())
		case style == 3 || len(items) == 0:
			line(indent + key + ": [" + strings.Join(items, ", ") + "]" + comment())
		default:
			line(indent + key + ":" + comment())
			for _, item := range items {
				if r.IntN(4) == 0 {
					line(dash + "# about the next item")
				}
				line(dash + "-" + gap + item + comment())
			}
			if r.IntN(3) == 0 {
				line(dash + "# - \"disabled.example\"")
			}
		}
		if r.IntN(3) == 0 {
			line("")
		}
	}
	if r.IntN(3) == 0 {
		line("# end")
	}
	text := b.String()
	if r.IntN(4) == 0 {
		text = strings.TrimSuffix(text, eol)
	}
	return []byte(text)
}

func randomDomain(r *rand.Rand) string {
	labels := []string{"github", "com", "example", "org", "api", "cdn", "xn--bcher-kva", "a_b", "x1"}
	n := 2 + r.IntN(2)
	name := make([]string, n)
	for i := range name {
		name[i] = labels[r.IntN(len(labels))]
	}
	name[n-1] = []string{"com", "org", "net"}[r.IntN(3)]
	d := strings.Join(name, ".")
	if r.IntN(4) == 0 {
		d = "*." + d
	}
	return d
}

func randomIP(r *rand.Rand) string {
	switch r.IntN(4) {
	case 0:
		return fmt.Sprintf("192.0.2.%d", r.IntN(4))
	case 1:
		return fmt.Sprintf("10.%d.0.0/16", r.IntN(4))
	case 2:
		return fmt.Sprintf("2001:db8::%x", r.IntN(4))
	}
	return fmt.Sprintf("2001:db8:%x::/48", r.IntN(4))
}

func ExampleEditor() {
	dir, err := os.MkdirTemp("", "policy")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "policy.yaml")
	err = os.WriteFile(path, []byte(`allowlist:
  ips: [] # none yet
  domains:
    - "github.com" # code

    # Package mirrors.
    - "*.alpinelinux.org"
`), 0o644)
	if err != nil {
		panic(err)
	}

	e := &Editor{Path: path}
	added, err := e.AddDomain("Example.ORG.")
	fmt.Println(added, err)
	added, err = e.AddDomain("example.org") // the same name
	fmt.Println(added, err)
	added, err = e.AddIP("192.0.2.1/32")
	fmt.Println(added, err)
	data, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	fmt.Print(string(data))
	// Output:
	// true <nil>
	// false <nil>
	// true <nil>
	// allowlist:
	//   ips: ["192.0.2.1"] # none yet
	//   domains:
	//     - "github.com" # code
	//
	//     # Package mirrors.
	//     - "*.alpinelinux.org"
	//     - "example.org"
}

// TestEditorKeepsOwner replaces a file owned by another user, as root may
// when it edits a policy on a host directory mount, and checks that the
// file keeps its owner.
func TestEditorKeepsOwner(t *testing.T) {
	requireMountPrivileges(t) // root on Linux, the same privilege chown needs
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte("allowlist: {}\n"), 0o644))
	const nobody = 65534
	require.NoError(t, os.Chown(path, nobody, nobody))

	added, err := (&Editor{Path: path}).AddDomain("example.org")
	require.NoError(t, err)
	assert.True(t, added)

	info, err := os.Stat(path)
	require.NoError(t, err)
	st := info.Sys().(*syscall.Stat_t)
	assert.Equal(t, uint32(nobody), st.Uid)
	assert.Equal(t, uint32(nobody), st.Gid)
}
