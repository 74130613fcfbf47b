//go:build linux

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const (
	nsPrefix = "g0e-sbx-"
	netnsDir = "/run/netns" // where ip netns keeps its names
	etcNetns = "/etc/netns" // what ip netns exec bind-mounts over /etc
)

// listSandboxNamespaces returns the names of the network namespaces whose
// name starts with nsPrefix.
func listSandboxNamespaces() ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), nsPrefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// netnsEtc is the /etc/netns/<box> directory: ip netns exec bind-mounts
// each file in it over the one of the same name in /etc, for commands run
// in the box.
type netnsEtc struct {
	dir        string
	madeParent bool // /etc/netns did not exist before
}

// writeNetnsEtc creates /etc/netns/<box> with a resolv.conf that points at
// the sandbox's DNS server and, when the machine's nsswitch.conf asks
// systemd-resolved for host names (which would answer from the machine's
// namespace, not the box's), an nsswitch.conf whose hosts line is "files
// dns". Everything is removed by remove.
func writeNetnsEtc(box string) (*netnsEtc, error) {
	e := &netnsEtc{dir: filepath.Join(etcNetns, box)}
	if _, err := os.Stat(etcNetns); errors.Is(err, os.ErrNotExist) {
		e.madeParent = true
	}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return e, err
	}
	resolv := fmt.Sprintf("# written by the g0efilter sandbox for %s; removed when it stops\nnameserver %s\nnameserver %s\n",
		box, dnsAddr4, dnsAddr6)
	if err := os.WriteFile(filepath.Join(e.dir, "resolv.conf"), []byte(resolv), 0o644); err != nil {
		return e, err
	}
	if ns, ok := nsswitchFilesDNS("/etc/nsswitch.conf"); ok {
		if err := os.WriteFile(filepath.Join(e.dir, "nsswitch.conf"), ns, 0o644); err != nil {
			return e, err
		}
	}
	return e, nil
}

// nsswitchFilesDNS returns the nsswitch.conf at path with its hosts line
// replaced by "hosts: files dns", and true, if that line uses the resolve
// module (systemd-resolved); otherwise false.
func nsswitchFilesDNS(path string) ([]byte, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	var out bytes.Buffer
	changed := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) > 0 && fields[0] == "hosts:" && strings.Contains(line, "resolve") {
			line = "hosts: files dns # the g0efilter sandbox: the box's resolv.conf, not systemd-resolved"
			changed = true
		}
		out.WriteString(line + "\n")
	}
	return out.Bytes(), changed && sc.Err() == nil
}

// remove deletes the directory, and /etc/netns if it made it and it is
// empty (another sandbox may be using it).
func (e *netnsEtc) remove() error {
	err := os.RemoveAll(e.dir)
	if e.madeParent {
		_ = os.Remove(etcNetns) // fails, harmlessly, if not empty
	}
	return err
}
