package suggest

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"

	"github.com/g0lab/g0efilter/policy"
)

// Write writes entries as a policy document, each on a line of its own
// with its [Entry.Comment], after header (lines of "# " comments; may be
// empty).
func Write(w io.Writer, header string, entries []Entry) error {
	bw := bufio.NewWriter(w)
	for line := range strings.Lines(header) {
		fmt.Fprintf(bw, "# %s\n", strings.TrimRight(line, "\n"))
	}
	var ips, domains []Entry
	for _, e := range entries {
		if e.IP {
			ips = append(ips, e)
		} else {
			domains = append(domains, e)
		}
	}
	if len(entries) == 0 {
		bw.WriteString("allowlist: {}\n")
		return bw.Flush()
	}
	bw.WriteString("allowlist:\n")
	for _, list := range []struct {
		key     string
		entries []Entry
	}{{"ips", ips}, {"domains", domains}} {
		if len(list.entries) == 0 {
			continue
		}
		width := 0
		for _, e := range list.entries {
			width = max(width, len(e.Value)+2)
		}
		fmt.Fprintf(bw, "  %s:\n", list.key)
		for _, e := range list.entries {
			fmt.Fprintf(bw, "    - %-*s # %s\n", width, `"`+e.Value+`"`, e.Comment())
		}
	}
	return bw.Flush()
}

// Missing returns the entries whose observations snap does not all allow
// already: what a policy lacks. A wildcard keeps only the names it lacks
// in Covers. dnsMode is the filter's mode, where a name allows every port.
func Missing(entries []Entry, snap *policy.Snapshot, dnsMode bool) []Entry {
	var out []Entry
	for _, e := range entries {
		if len(e.Covers) > 0 {
			var lacking []string
			for _, n := range e.Covers {
				if _, ok := snap.MatchHost(n); !ok {
					lacking = append(lacking, n)
				}
			}
			if len(lacking) > 0 {
				e.Covers = lacking
				out = append(out, e)
			}
			continue
		}
		if !allows(snap, e, dnsMode) {
			out = append(out, e)
		}
	}
	return out
}

// allows reports whether snap allows what an entry without Covers stands
// for.
func allows(snap *policy.Snapshot, e Entry, dnsMode bool) bool {
	if e.IP {
		r, err := policy.ParseAddrEntry(e.Value)
		if err != nil {
			return false
		}
		a := r.Prefix.Addr()
		if _, ok := snap.MatchAddr(a); ok {
			return true
		}
		_, ok := snap.MatchAddrPort(a, r.Proto, r.Ports.First)
		return ok
	}
	r, err := policy.ParseNameEntry(e.Value)
	if err != nil {
		return false
	}
	_, plain := snap.MatchHost(r.Pattern)
	switch {
	case r.Ports.All():
		return plain
	case dnsMode && plain:
		return true
	case r.Proto == policy.AnyProto && plain && (r.Ports.First == 443 || r.Ports.First == 80):
		return true
	}
	proto := r.Proto
	if proto == policy.AnyProto {
		proto = policy.TCP
	}
	_, ok := snap.MatchHostPort(r.Pattern, proto, r.Ports.First)
	return ok
}

// Lists splits entries into the values of the policy's ips and domains.
func Lists(entries []Entry) (ips, domains []string) {
	for _, e := range entries {
		if e.IP {
			ips = append(ips, e.Value)
		} else {
			domains = append(domains, e.Value)
		}
	}
	return ips, domains
}

// unicodeNames shows internationalised names in Unicode, for comments.
func unicodeNames(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n
		if _, err := netip.ParseAddr(n); err == nil || !strings.Contains(n, "xn--") {
			continue
		}
		if u, err := idna.Lookup.ToUnicode(n); err == nil {
			out[i] = u
		}
	}
	return out
}
