// Package policy parses, validates and compiles g0efilter's allowlist, and
// keeps the live copy that the filter's components read.
//
// A policy lists the IP addresses and prefixes (IPv4 and IPv6) and the
// domain names that a workload may reach. Domains are exact names
// ("github.com"), wildcards ("*.alpinelinux.org", which matches names below
// alpinelinux.org at any depth but not alpinelinux.org itself), or "*",
// which allows every name and is flagged by [Policy.AllowsAnyDomain].
// An entry may be limited to a protocol and ports ("udp/9.9.9.9:53",
// "tcp/github.com:22", "*.example.com:8443"; see [ParseAddrEntry],
// [ParseNameEntry]): those go to [Policy.AddrPorts] and [Policy.NamePorts],
// which [Snapshot.Services], [Snapshot.MatchHostPort] and
// [Snapshot.MatchNamePorts] answer for. A denylist, in the plain forms,
// wins over everything.
//
// Typical usage:
//
//	p, err := policy.Loader{Path: "/app/policy.yaml"}.Load()
//	if err != nil {
//		return err // names the file, line and value of every bad entry
//	}
//	snap, err := policy.Compile(p)
//	if err != nil {
//		return err
//	}
//	var live policy.Holder
//	live.Store(snap)
//	...
//	if rule, ok := live.MatchHost(sni); ok {
//		// allowed by rule
//	}
//
// # Normalisation
//
// Every name is normalised once, when it is parsed: lower case, no trailing
// dot, internationalised names in punycode. Matching then treats its input as
// hostile: it folds case, ignores one trailing dot and refuses anything that
// is not a valid host name, without allocating for ASCII names.
//
// # Precedence
//
// A [Loader] takes comma-separated lists (ALLOWLIST_IPS, ALLOWLIST_DOMAINS in
// the g0efilter binary) that replace the file's list of the same kind. The
// package never reads the environment; the caller passes the values.
//
// # Audit mode
//
// A policy is enforced or audited ([Mode]). The file's top-level "mode:
// audit" wins over [Loader.Mode] (ENFORCE in the g0efilter binary), so a
// switch is an edit, applied live and atomically with the lists it comes
// with. [Snapshot.Audit] tells the filter's components to decide as usual,
// report what they would refuse and let it through.
//
// # Reloading
//
// A [Snapshot] is immutable. A [Holder] publishes the current one through an
// atomic pointer, so readers take no lock and a reload never races a
// decision. A [Watcher] follows the policy file — through editors that
// rename, Kubernetes ConfigMap symlink swaps and Docker single-file bind
// mounts, which send no events — and delivers each new snapshot that loads.
// A policy that fails to load is reported and never replaces a good one; a
// snapshot that the caller fails to apply is delivered again, with
// back-off, until it is applied or the file changes.
//
// # Editing
//
// An [Editor] adds a domain or an address to the policy file, as a remote
// unblock does, changing nothing else in it: comments, order and layout
// stay, duplicates are not added, and the result is checked to mean the old
// policy plus the new entry before it is written. The write cannot leave a
// truncated file, and works on a single-file bind mount, where a file cannot
// be renamed over.
package policy
