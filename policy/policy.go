package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Policy is a parsed, normalised allowlist. Every entry has been validated;
// duplicates are removed and the first spelling's position kept.
//
// A Policy is plain data. [Compile] turns it into a [Snapshot] that answers
// "is this allowed?".
type Policy struct {
	// IPs are the allowlisted addresses and prefixes, IPv4 and IPv6. A single
	// address is a /32 or /128 prefix.
	IPs []netip.Prefix
	// Domains are the allowlisted names in canonical form (see
	// [NormalizeDomain]): "example.com", "*.example.com" or [AnyDomain].
	Domains []string
	// DenyIPs and DenyDomains are the denylist, in the same forms but for
	// [AnyDomain]. They win over the allowlist: a denied address inside an
	// allowed prefix, or a denied name under an allowed wildcard, is
	// refused.
	DenyIPs     []netip.Prefix
	DenyDomains []string
	// AddrPorts are the allowlisted address entries with a protocol, a
	// port or both ("udp/1.1.1.1:53"); they allow that alone.
	AddrPorts []AddrRule
	// NamePorts are the allowlisted domain entries with a port, and maybe
	// a protocol ("tcp/github.com:22", "*.example.com:8443"); see
	// [NameRule] for what they allow.
	NamePorts []NameRule
	// Mode is Enforce or Audit; zero states none (see [Loader.Mode]).
	// In a file it is the top-level key "mode".
	Mode Mode
}

// AllowsAnyDomain reports whether the policy contains [AnyDomain], which lets
// every domain name through. Tools should make this visible: it disables
// name-based filtering.
func (p *Policy) AllowsAnyDomain() bool {
	return slices.Contains(p.Domains, AnyDomain)
}

// Parse reads a policy document in YAML:
//
//	allowlist:
//	  ips:
//	    - "1.1.1.1"
//	    - "2001:db8::/32"
//	    - "udp/9.9.9.9:53"              # one protocol, one port
//	    - "tcp/[2001:db8::7]:8000-8099" # a range
//	  domains:
//	    - "github.com"
//	    - "*.alpinelinux.org"
//	    - "tcp/github.com:22"           # by name on another port
//	    - "*.example.com:8443"          # TLS on 8443
//	denylist:
//	  ips: ["169.254.169.254"]
//	  domains: ["*.evil.example.com"]
//
// See [ParseAddrEntry] and [ParseNameEntry] for the entries. The denylist
// takes addresses and names alone: what it denies, it denies on every
// port.
// source names the document in errors (usually the file path). Unknown keys,
// values of the wrong type and invalid entries are all reported, each with its
// line, as an [ErrorList]; a document with any mistake yields no Policy.
// An empty document is an error ([ErrEmpty]); "allowlist: {}" allows nothing.
func Parse(source string, data []byte) (*Policy, error) {
	root, err := decodeOne(source, data)
	if err != nil {
		return nil, err
	}
	d := decoder{source: source}
	p := d.document(root)
	if err := d.errs.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// ReadFile reads and parses the policy file at path.
func ReadFile(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return Parse(path, data)
}

// ParseIPList parses a comma-separated list of addresses and prefixes, such
// as the value of DENYLIST_IPS, with the same validation as the file. Blank
// items are skipped. source names the list in errors. Entries with a
// protocol or a port are errors here: see [Loader] for lists that take
// them.
func ParseIPList(source, list string) ([]netip.Prefix, error) {
	var (
		errs ErrorList
		ips  []netip.Prefix
	)
	for i, item := range splitList(list) {
		r, err := ParseAddrEntry(item)
		if err == nil && (r.Proto != AnyProto || !r.Ports.All()) {
			err = reason(ErrIP, "a protocol or port is not allowed here; write %s", AddrRule{Prefix: r.Prefix})
		}
		if err != nil {
			errs = append(errs, &Error{Source: source, Field: itemField(i), Value: item, Err: err})
			continue
		}
		ips = appendUnique(ips, r.Prefix)
	}
	return ips, errs.err()
}

// ParseDomainList parses a comma-separated list of domain patterns, such as
// the value of DENYLIST_DOMAINS, with the same validation as the file. Blank
// items are skipped. source names the list in errors. Entries with a
// protocol or a port are errors here: see [Loader] for lists that take
// them.
func ParseDomainList(source, list string) ([]string, error) {
	var (
		errs    ErrorList
		domains []string
	)
	for i, item := range splitList(list) {
		r, err := ParseNameEntry(item)
		if err == nil && (r.Proto != AnyProto || !r.Ports.All()) {
			err = reason(ErrDomain, "a protocol or port is not allowed here; write %s", r.Pattern)
		}
		d := r.Pattern
		if err != nil {
			errs = append(errs, &Error{Source: source, Field: itemField(i), Value: item, Err: err})
			continue
		}
		domains = appendUnique(domains, d)
	}
	return domains, errs.err()
}

// parseAddrList parses an allowlist of address entries, with or without
// protocols and ports.
func parseAddrList(source, list string) ([]netip.Prefix, []AddrRule, error) {
	var (
		errs  ErrorList
		ips   []netip.Prefix
		rules []AddrRule
		items []int // the item of each rule
	)
	for i, item := range splitList(list) {
		r, err := ParseAddrEntry(item)
		switch {
		case err != nil:
			errs = append(errs, &Error{Source: source, Field: itemField(i), Value: item, Err: err})
		case r.Proto == AnyProto && r.Ports.All():
			ips = appendUnique(ips, r.Prefix)
		case !slices.Contains(rules, r):
			rules = append(rules, r)
			items = append(items, i)
		}
	}
	if _, bad, err := services(rules); err != nil {
		errs = append(errs, &Error{Source: source, Field: itemField(items[bad]), Value: rules[bad].String(), Err: err})
	}
	return ips, rules, errs.err()
}

// parseNameList parses an allowlist of domain entries, with or without
// protocols and ports.
func parseNameList(source, list string) ([]string, []NameRule, error) {
	var (
		errs    ErrorList
		domains []string
		rules   []NameRule
	)
	for i, item := range splitList(list) {
		r, err := ParseNameEntry(item)
		switch {
		case err != nil:
			errs = append(errs, &Error{Source: source, Field: itemField(i), Value: item, Err: err})
		case r.Proto == AnyProto && r.Ports.All():
			domains = appendUnique(domains, r.Pattern)
		default:
			rules = appendUnique(rules, r)
		}
	}
	return domains, rules, errs.err()
}

// splitList splits a comma-separated list, trimming items and dropping
// blank ones.
func splitList(list string) []string {
	var items []string
	for item := range strings.SplitSeq(list, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

func itemField(i int) string { return fmt.Sprintf("item %d", i+1) }

func appendUnique[T comparable](list []T, v T) []T {
	if slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}

// List is a comma-separated allowlist given outside the policy file, such as
// an environment variable.
type List struct {
	// Name identifies the list in errors, such as "ALLOWLIST_IPS".
	Name string
	// Value is the comma-separated list.
	Value string
}

// Loader loads a policy from a file and optional lists that replace the
// file's entries of the same kind ("the environment wins"). It reads nothing
// but what its fields name; the caller decides where the lists come from.
type Loader struct {
	// Path is the policy file. It is not read when both IPs and Domains are
	// set. Empty means no file: the lists that are not set stay empty.
	Path string
	// IPs, when not nil, replaces the file's allowlist.ips, entries with
	// protocols and ports included.
	IPs *List
	// Domains, when not nil, replaces the file's allowlist.domains,
	// entries with protocols and ports included.
	Domains *List
	// DenyIPs and DenyDomains, when not nil, replace the file's
	// denylist.ips and denylist.domains. When the file is not read (IPs
	// and Domains are both set), they are the only denylist.
	DenyIPs, DenyDomains *List
	// Mode is the policy's mode when the file states none (ENFORCE in the
	// g0efilter binary): a file's "mode" wins, so that switching between
	// audit and enforce is an edit, applied live like any other.
	Mode Mode
}

// Load reads the sources and returns the combined policy. Mistakes from every
// source are reported together.
func (l Loader) Load() (*Policy, error) {
	var data []byte
	if l.readsFile() {
		var err error
		if data, err = os.ReadFile(l.Path); err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
	}
	return l.load(data)
}

// readsFile reports whether loading needs the file at Path.
func (l Loader) readsFile() bool {
	return l.Path != "" && (l.IPs == nil || l.Domains == nil)
}

// load combines data, the content of the file when readsFile, with the
// lists.
func (l Loader) load(data []byte) (*Policy, error) {
	p := &Policy{}
	if l.readsFile() {
		fp, err := Parse(l.Path, data)
		if err != nil {
			return nil, err
		}
		p = fp
	}
	var errs []error
	if l.IPs != nil {
		ips, rules, err := parseAddrList(l.IPs.Name, l.IPs.Value)
		p.IPs, p.AddrPorts = ips, rules
		errs = append(errs, err)
	}
	if l.Domains != nil {
		domains, rules, err := parseNameList(l.Domains.Name, l.Domains.Value)
		p.Domains, p.NamePorts = domains, rules
		errs = append(errs, err)
	}
	if l.DenyIPs != nil {
		ips, err := ParseIPList(l.DenyIPs.Name, l.DenyIPs.Value)
		p.DenyIPs = ips
		errs = append(errs, err)
	}
	if l.DenyDomains != nil {
		domains, err := ParseDomainList(l.DenyDomains.Name, l.DenyDomains.Value)
		if slices.Contains(domains, AnyDomain) {
			err = errors.Join(err, &Error{Source: l.DenyDomains.Name, Value: AnyDomain,
				Err: reason(ErrDomain, `"*" would deny every name: leave the names out of the allowlist instead`)})
		}
		p.DenyDomains = domains
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if p.Mode == "" {
		p.Mode = l.Mode
	}
	return p, nil
}

// decodeOne parses data as exactly one YAML document and returns its root.
func decodeOne(source string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ErrorList{{Source: source, Err: reason(ErrEmpty, "no policy document (to allow nothing, write \"allowlist: {}\")")}}
		}
		return nil, syntaxError(source, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(source, err)
	default:
		return nil, ErrorList{{Source: source, Line: extra.Line, Err: reason(ErrSyntax, "more than one YAML document")}}
	}
	return doc.Content[0], nil
}

// syntaxError turns a yaml.v3 error ("yaml: line 3: did not find expected
// key") into an [Error] carrying the line.
//
// yaml.v3 counts lines from 1 for the errors of its scanner, but from 0 for
// those of its parser (which name the line where the broken collection
// starts, or the problem's), and it leaves out line 0 altogether. So the
// line of a parser error is moved down by one, and a scanner or parser
// error without a line is on the first.
func syntaxError(source string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if _, scanErr := fmt.Sscanf(n, "%d", &line); scanErr == nil {
				msg = after
			}
		}
	}
	switch {
	case yamlParserProblems[msg]:
		line++
	case line == 0 && yamlScannerProblem(msg):
		line = 1
	}
	return ErrorList{{Source: source, Line: line, Err: reason(ErrSyntax, "%s", msg)}}
}

// yamlParserProblems are the messages of yaml.v3's parser errors.
var yamlParserProblems = map[string]bool{
	"did not find expected key":              true,
	"did not find expected '-' indicator":    true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected node content":     true,
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// yamlScannerProblem reports whether msg is the message of one of yaml.v3's
// scanner errors, which all have a position (unlike errors reading the
// input, such as invalid UTF-8).
func yamlScannerProblem(msg string) bool {
	for _, prefix := range []string{"found ", "did not find ", "could not find ", "mapping ", "block sequence ", "exceeded max depth"} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}

// decoder walks a YAML tree, collecting every mistake.
type decoder struct {
	source string
	errs   ErrorList
}

func (d *decoder) fail(n *yaml.Node, field, value string, err error) {
	d.errs = append(d.errs, &Error{Source: d.source, Line: n.Line, Field: field, Value: value, Err: err})
}

func (d *decoder) document(root *yaml.Node) *Policy {
	p := &Policy{}
	for key, value := range d.mapping(root, "") {
		switch key.Value {
		case "allowlist":
			d.list(value, false, p)
		case "denylist":
			d.list(value, true, p)
		case "mode":
			m, err := ParseMode(value.Value)
			if err == nil && (value.Kind != yaml.ScalarNode || isNull(value) || m == "") {
				err = errModeValue
			}
			if err != nil {
				d.fail(value, "mode", scalarValue(value), err)
				continue
			}
			p.Mode = m
		default:
			d.fail(key, key.Value, "", unknownKey(key.Value, "allowlist", "denylist", "mode"))
		}
	}
	return p
}

// list decodes the allowlist or the denylist (p's deny fields when deny).
func (d *decoder) list(n *yaml.Node, deny bool, p *Policy) {
	name, ips, domains := "allowlist", &p.IPs, &p.Domains
	if deny {
		name, ips, domains = "denylist", &p.DenyIPs, &p.DenyDomains
	}
	for key, value := range d.mapping(n, name) {
		field := name + "." + key.Value
		switch key.Value {
		case "ips":
			type line struct {
				*yaml.Node
				index int
			}
			var lines []line // the item of each rule
			for i, item := range d.sequence(value, field) {
				r, err := ParseAddrEntry(item.Value)
				plain := r.Proto == AnyProto && r.Ports.All()
				if err == nil && deny && !plain {
					err = reason(ErrIP, "the denylist takes an address or prefix alone: it denies every port; write %s", AddrRule{Prefix: r.Prefix})
				}
				switch {
				case err != nil:
					d.fail(item, fmt.Sprintf("%s[%d]", field, i), item.Value, err)
				case plain:
					*ips = appendUnique(*ips, r.Prefix)
				case !slices.Contains(p.AddrPorts, r):
					p.AddrPorts = append(p.AddrPorts, r)
					lines = append(lines, line{item, i})
				}
			}
			if _, bad, err := services(p.AddrPorts); err != nil && !deny {
				d.fail(lines[bad].Node, fmt.Sprintf("%s[%d]", field, lines[bad].index), lines[bad].Value, err)
			}
		case "domains":
			for i, item := range d.sequence(value, field) {
				r, err := ParseNameEntry(item.Value)
				plain := r.Proto == AnyProto && r.Ports.All()
				switch {
				case err != nil:
				case deny && !plain:
					err = reason(ErrDomain, "the denylist takes a name alone: it denies every port; write %s", r.Pattern)
				case deny && r.Pattern == AnyDomain:
					err = reason(ErrDomain, `"*" would deny every name: leave the names out of the allowlist instead`)
				}
				switch {
				case err != nil:
					d.fail(item, fmt.Sprintf("%s[%d]", field, i), item.Value, err)
				case plain:
					*domains = appendUnique(*domains, r.Pattern)
				default:
					p.NamePorts = appendUnique(p.NamePorts, r)
				}
			}
		default:
			d.fail(key, field, "", unknownKey(key.Value, "ips", "domains"))
		}
	}
}

// mapping yields the key and value nodes of a mapping node. A null node is an
// empty mapping. Non-string keys, duplicate keys and other node kinds are
// reported.
func (d *decoder) mapping(n *yaml.Node, field string) func(yield func(key, value *yaml.Node) bool) {
	return func(yield func(key, value *yaml.Node) bool) {
		if isNull(n) {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.fail(n, orRoot(field), "", reason(ErrType, "expected a mapping, found %s", describe(n)))
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.fail(k, orRoot(field), "", reason(ErrType, "expected a key, found %s", describe(k)))
				continue
			}
			if line, dup := seen[k.Value]; dup {
				d.fail(k, join(field, k.Value), "", reason(ErrDuplicateKey, "first given on line %d", line))
				continue
			}
			seen[k.Value] = k.Line
			if !yield(k, v) {
				return
			}
		}
	}
}

// sequence yields the scalar items of a sequence node with their index. A
// null node is an empty sequence. Anything but non-null scalars is reported.
func (d *decoder) sequence(n *yaml.Node, field string) func(yield func(int, *yaml.Node) bool) {
	return func(yield func(int, *yaml.Node) bool) {
		if isNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.fail(n, field, scalarValue(n), reason(ErrType, "expected a list, found %s", describe(n)))
			return
		}
		for i, item := range n.Content {
			if item.Kind != yaml.ScalarNode || isNull(item) {
				d.fail(item, fmt.Sprintf("%s[%d]", field, i), "", reason(ErrType, "expected a string, found %s", describe(item)))
				continue
			}
			if !yield(i, item) {
				return
			}
		}
	}
}

// unknownKey explains a key that is not one of known, suggesting the one it
// most likely misspells.
func unknownKey(key string, known ...string) error {
	folded := strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(key))
	for _, k := range known {
		if folded == k || strings.HasPrefix(k, folded) || strings.HasPrefix(folded, k) {
			return reason(ErrUnknownKey, "did you mean %q?", k)
		}
	}
	return reason(ErrUnknownKey, "expected %s", quoteAll(known))
}

func quoteAll(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = fmt.Sprintf("%q", k)
	}
	return strings.Join(q, " or ")
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func scalarValue(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}

// describe names a node's kind for error messages.
func describe(n *yaml.Node) string {
	switch {
	case isNull(n):
		return "nothing"
	case n.Kind == yaml.ScalarNode:
		return "a single value"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.AliasNode:
		return "an alias (aliases are not supported)"
	default:
		return "an unexpected node"
	}
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func orRoot(field string) string {
	if field == "" {
		return "document"
	}
	return field
}
