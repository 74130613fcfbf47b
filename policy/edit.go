package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// The lists of a policy file.
const (
	keyIPs     = "ips"
	keyDomains = "domains"
)

// editAttempts bounds how often an edit is redone from scratch when the file
// changes between reading and writing it.
const editAttempts = 3

// errChanged reports a file that changed while it was being edited.
var errChanged = errors.New("policy: file changed while being edited")

// Editor adds entries to a policy file the way a careful person would: it
// inserts one line, or a few bytes, and leaves the rest of the file as it
// was, comments, order, quoting and line endings included. Remote unblocking
// uses it. Set Path; an Editor must not be copied after first use.
//
// An edit is refused, and the file left alone, when the entry is invalid,
// when the file does not parse (an Editor never repairs a file), or when the
// layout is one it does not handle. Whatever the layout, the edited text is
// parsed before it is written, and it is written only if it reads as the old
// policy with the new entry appended to its list: an edit cannot change
// anything else.
//
// # Writing
//
// The new content goes to a temporary file in the same directory, which is
// synced and renamed over the old one, and the directory is then synced: a
// crash leaves the old file or the new one. The file keeps its permission
// bits, but takes the owner of the process. If the path is a symlink, the
// file it points to is replaced and the link kept.
//
// When the file cannot be replaced, because it is a mount point of its own
// (a Docker single-file bind mount: rename fails with EBUSY), because the
// rename would cross devices (EXDEV), or because the directory is not
// writable (EACCES, EPERM, EROFS), the file is overwritten in place instead:
// one write at offset 0, without truncating, then a sync. An edit only makes
// the file longer, so every old byte is overwritten and the file never gets
// shorter. A power loss during that write can leave a mix of old and new
// bytes; such a file almost surely fails to parse, and a [Watcher] then keeps
// the previous policy in force. A read-only file system, such as a
// Kubernetes ConfigMap volume, cannot be edited at all; the error says so.
//
// # Concurrency
//
// Edits through one Editor are serialised. Right before writing, the file is
// read again; if it changed since the edit began (someone else edited it),
// the edit is redone from the new content, a few times at most. Processes
// editing the same file are not otherwise coordinated.
type Editor struct {
	// Path is the policy file.
	Path string

	mu sync.Mutex
	// beforeWrite, set by tests, runs between making an edit and checking
	// that the file has not changed before writing it.
	beforeWrite func()
}

// AddDomain adds a domain entry (see [ParseNameEntry]) to
// allowlist.domains, in its canonical form. It reports added=false, and
// leaves the file alone, when the list already holds the pattern in any
// spelling ("Example.COM." is "example.com"). An exact name is added even when
// a wildcard already covers it: it is a different rule, which stays when the
// wildcard goes. When err is not nil, added is false, though the entry may
// have reached the file if only syncing its directory failed.
func (e *Editor) AddDomain(domain string) (added bool, err error) {
	a, err := domainAddition(domain)
	if err != nil {
		return false, &Error{Source: e.Path, Field: "allowlist." + keyDomains, Value: domain, Err: err}
	}
	return e.add(a)
}

// AddIP adds an address entry (see [ParseAddrEntry]) to allowlist.ips,
// in its canonical form: a single address is written without a prefix
// length. It reports added=false, and leaves the file alone, when the list
// already holds the same prefix in any spelling. A prefix that another entry
// contains is still added. When err is not nil, added is false, as for
// [Editor.AddDomain].
func (e *Editor) AddIP(entry string) (added bool, err error) {
	a, err := ipAddition(entry)
	if err != nil {
		return false, &Error{Source: e.Path, Field: "allowlist." + keyIPs, Value: entry, Err: err}
	}
	return e.add(a)
}

func (e *Editor) add(a addition) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for range editAttempts {
		data, err := os.ReadFile(e.Path)
		if err != nil {
			return false, fmt.Errorf("policy: %w", err)
		}
		edited, added, err := edit(e.Path, data, a)
		if err != nil || !added {
			return false, err
		}
		if e.beforeWrite != nil {
			e.beforeWrite()
		}
		err = writeEdit(e.Path, data, edited)
		if errors.Is(err, errChanged) {
			continue
		}
		return err == nil, err
	}
	return false, fmt.Errorf("policy: %s kept changing while being edited; not edited", e.Path)
}

// addition is one canonical entry to add to one list.
type addition struct {
	key   string   // keyIPs or keyDomains
	value string   // the entry as written to the file
	addr  AddrRule // the entry, for keyIPs
	name  NameRule // the entry, for keyDomains
}

func domainAddition(domain string) (addition, error) {
	r, err := ParseNameEntry(domain)
	value := r.Pattern
	if !r.Ports.All() {
		value = r.String()
	}
	return addition{key: keyDomains, value: value, name: r}, err
}

func ipAddition(entry string) (addition, error) {
	r, err := ParseAddrEntry(entry)
	return addition{key: keyIPs, value: r.String(), addr: r}, err
}

// plain reports whether the entry has neither a protocol nor a port.
func (a addition) plain() bool {
	if a.key == keyIPs {
		return a.addr.Proto == AnyProto && a.addr.Ports.All()
	}
	return a.name.Proto == AnyProto && a.name.Ports.All()
}

// in reports whether p already has the entry.
func (a addition) in(p *Policy) bool {
	switch {
	case a.key == keyIPs && a.plain():
		return slices.Contains(p.IPs, a.addr.Prefix)
	case a.key == keyIPs:
		return slices.Contains(p.AddrPorts, a.addr)
	case a.plain():
		return slices.Contains(p.Domains, a.value)
	}
	return slices.Contains(p.NamePorts, a.name)
}

// appendTo returns a copy of p with the entry appended to its list.
func (a addition) appendTo(p *Policy) *Policy {
	q := &Policy{
		IPs: slices.Clone(p.IPs), Domains: slices.Clone(p.Domains),
		DenyIPs: slices.Clone(p.DenyIPs), DenyDomains: slices.Clone(p.DenyDomains),
		AddrPorts: slices.Clone(p.AddrPorts), NamePorts: slices.Clone(p.NamePorts),
		Mode: p.Mode,
	}
	switch {
	case a.key == keyIPs && a.plain():
		q.IPs = append(q.IPs, a.addr.Prefix)
	case a.key == keyIPs:
		q.AddrPorts = append(q.AddrPorts, a.addr)
	case a.plain():
		q.Domains = append(q.Domains, a.value)
	default:
		q.NamePorts = append(q.NamePorts, a.name)
	}
	return q
}

// edit returns data, the text of the policy file named source, with the
// entry added, or added=false when the policy already has it.
func edit(source string, data []byte, a addition) (edited []byte, added bool, err error) {
	old, err := Parse(source, data)
	if err != nil {
		return nil, false, err
	}
	if a.in(old) {
		return nil, false, nil
	}
	root, err := decodeOne(source, data)
	if err != nil {
		return nil, false, err
	}
	p := placer{text: newText(data), key: a.key, value: a.value}
	s, err := p.root(root)
	if err != nil {
		return nil, false, fmt.Errorf("policy: cannot add %q to %s: %w", a.value, source, err)
	}
	edited = s.apply(data)
	// The safety net: the edit must mean exactly "append the entry", and
	// leave every other list as it was.
	got, err := Parse(source, edited)
	if want := a.appendTo(old); err != nil || !reflect.DeepEqual(got, want) {
		return nil, false, fmt.Errorf("policy: cannot add %q to %s: this layout of the file is not supported", a.value, source)
	}
	return edited, true, nil
}

// splice replaces data[at:end] with text.
type splice struct {
	at, end int
	text    string
}

func insertAt(at int, text string) splice { return splice{at: at, end: at, text: text} }

func (s splice) apply(data []byte) []byte {
	out := make([]byte, 0, len(data)+len(s.text)-(s.end-s.at))
	out = append(out, data[:s.at]...)
	out = append(out, s.text...)
	return append(out, data[s.end:]...)
}

// text is the content of a policy file, indexed by line the way yaml.v3
// counts lines and columns: lines end at "\r\n", "\r", "\n", U+0085, U+2028
// or U+2029, columns count characters, and a leading byte order mark does
// not count.
type text struct {
	data   []byte
	starts []int  // offset of the first byte of each line; starts[0] is line 1
	ends   []int  // offset of the line break ending each line, or len(data)
	eol    string // the file's line break, for new lines
}

// newText indexes data.
func newText(data []byte) *text {
	t := &text{data: data, eol: "\n"}
	start := 0
	if bytes.HasPrefix(data, []byte("\uFEFF")) {
		start = len("\uFEFF")
	}
	t.starts = append(t.starts, start)
	for i := start; i < len(data); {
		n := breakLen(data[i:])
		if n == 0 {
			i++
			continue
		}
		if len(t.ends) == 0 && (data[i] == '\r' || data[i] == '\n') {
			t.eol = string(data[i : i+n])
		}
		t.ends = append(t.ends, i)
		i += n
		t.starts = append(t.starts, i)
	}
	t.ends = append(t.ends, len(data))
	return t
}

// breakLen returns the length of the line break that b starts with, or 0.
func breakLen(b []byte) int {
	switch {
	case bytes.HasPrefix(b, []byte("\r\n")):
		return 2
	case len(b) > 0 && (b[0] == '\r' || b[0] == '\n'):
		return 1
	case bytes.HasPrefix(b, []byte("\u0085")):
		return len("\u0085")
	case bytes.HasPrefix(b, []byte("\u2028")), bytes.HasPrefix(b, []byte("\u2029")):
		return len("\u2028")
	}
	return 0
}

// offset returns the offset of the character at a yaml.v3 line and column.
func (t *text) offset(line, column int) (int, error) {
	if line < 1 || line > len(t.starts) {
		return 0, fmt.Errorf("line %d is out of range", line)
	}
	off, end := t.starts[line-1], t.ends[line-1]
	for range column - 1 {
		if off >= end {
			break
		}
		_, size := utf8.DecodeRune(t.data[off:end])
		off += size
	}
	if off >= end {
		return 0, fmt.Errorf("line %d has no column %d", line, column)
	}
	return off, nil
}

// lastContent returns the last line in [from, end) with more than blanks,
// a comment or a document end marker, or from when there is none.
func (t *text) lastContent(from, end int) int {
	for line := min(end-1, len(t.starts)); line > from; line-- {
		raw := t.data[t.starts[line-1]:t.ends[line-1]]
		s := bytes.TrimLeft(raw, " \t")
		docEnd := bytes.HasPrefix(raw, []byte("...")) && (len(raw) == 3 || raw[3] == ' ' || raw[3] == '\t')
		if len(s) > 0 && s[0] != '#' && !docEnd {
			return line
		}
	}
	return from
}

// afterLine returns a splice that adds lines after line.
func (t *text) afterLine(line int, lines ...string) splice {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(t.eol)
		b.WriteString(l)
	}
	return insertAt(t.ends[line-1], b.String())
}

// atEnd returns a splice that adds lines at the end of the file.
func (t *text) atEnd(lines ...string) splice {
	var b strings.Builder
	if t.starts[len(t.starts)-1] < len(t.data) {
		b.WriteString(t.eol) // the last line has no line break
	}
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString(t.eol)
	}
	return insertAt(len(t.data), b.String())
}

// flowEnd scans the flow collection whose bracket is at open and returns the
// offsets of its closing bracket and of its last significant byte before
// that: the end of its last item, a trailing ',', or open itself when the
// collection is empty.
func (t *text) flowEnd(open int) (last, closing int, err error) {
	d := t.data
	depth := 0
	last = open
	for i := open; i < len(d); i++ {
		switch c := d[i]; {
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			if depth--; depth == 0 {
				return last, i, nil
			}
		case (c == '"' || c == '\'') && t.startsToken(i):
			end := closingQuote(d, i)
			if end < 0 {
				return 0, 0, errors.New("unterminated quoted value")
			}
			i = end
		case c == '#' && t.afterSpace(i):
			i = t.ends[t.lineOf(i)-1] - 1 // skip the comment up to its line break
			continue
		case c == ' ' || c == '\t':
			continue
		case breakLen(d[i:]) > 0:
			i += breakLen(d[i:]) - 1
			continue
		}
		last = i
	}
	return 0, 0, errors.New("unterminated flow collection")
}

// lineOf returns the line holding offset off.
func (t *text) lineOf(off int) int {
	return sort.SearchInts(t.starts, off+1)
}

// afterSpace reports whether the byte at off follows a blank or a line
// break, or starts the file.
func (t *text) afterSpace(off int) bool {
	if off == 0 {
		return true
	}
	c := t.data[off-1]
	return c == ' ' || c == '\t' || t.starts[t.lineOf(off)-1] == off
}

// startsToken reports whether the byte at off, in a flow collection, starts
// a value rather than continuing a plain one.
func (t *text) startsToken(off int) bool {
	return t.afterSpace(off) || strings.IndexByte("[{,", t.data[off-1]) >= 0
}

// closingQuote returns the offset of the quote that ends the quoted value
// starting at open, or -1.
func closingQuote(d []byte, open int) int {
	q := d[open]
	for i := open + 1; i < len(d); i++ {
		switch {
		case q == '"' && d[i] == '\\':
			i++
		case d[i] != q:
		case q == '\'' && i+1 < len(d) && d[i+1] == '\'':
			i++ // '' is an escaped quote
		default:
			return i
		}
	}
	return -1
}

// placer works out where and how an entry goes into a parsed policy file.
// The file has already passed [Parse], so the document's shape is known:
// a mapping with an "allowlist" mapping of lists, any of which may be null
// or missing.
type placer struct {
	*text
	key   string // the list: keyIPs or keyDomains
	value string // the entry
}

// root places the entry in the document.
func (p *placer) root(root *yaml.Node) (splice, error) {
	end := len(p.starts) + 1
	if root.Kind == yaml.MappingNode {
		if k, v, next := lookup(root, "allowlist"); k != nil {
			if next != nil {
				end = next.Line
			}
			return p.allowlist(root, k, v, end)
		}
		if isFlow(root) {
			return p.flowAppend(root, "allowlist: "+p.flowMapping())
		}
		return p.atEnd(p.newAllowlist(root.Column - 1)...), nil
	}
	if root.Value != "" { // "~" or "null"
		return p.replaceNull(root, "{allowlist: "+p.flowMapping()+"}")
	}
	return p.atEnd(p.newAllowlist(0)...), nil
}

// allowlist places the entry in the value v of the allowlist key k of the
// mapping m. The value's text ends before line end.
func (p *placer) allowlist(m, k, v *yaml.Node, end int) (splice, error) {
	switch {
	case v.Kind == yaml.MappingNode:
		return p.inAllowlist(v, end)
	case !isNull(v):
		return splice{}, errors.New("allowlist is not a mapping")
	case v.Value != "":
		return p.replaceNull(v, p.flowMapping())
	case isFlow(m):
		return splice{}, errors.New("an empty allowlist in a flow mapping is not supported")
	}
	return p.afterLine(k.Line, p.newList(k.Column+1, nil)...), nil
}

// inAllowlist places the entry in the allowlist mapping m, whose text ends
// before line end.
func (p *placer) inAllowlist(m *yaml.Node, end int) (splice, error) {
	k, v, next := lookup(m, p.key)
	if k == nil {
		if isFlow(m) {
			return p.flowAppend(m, p.key+": "+p.flowList(m))
		}
		last := m.Content[len(m.Content)-2]
		return p.afterLine(p.lastContent(last.Line, end), p.newList(m.Column-1, m)...), nil
	}
	if next != nil {
		end = next.Line
	}
	switch {
	case v.Kind == yaml.SequenceNode && isFlow(v):
		return p.flowAppend(v, p.item(m))
	case v.Kind == yaml.SequenceNode:
		return p.appendBlockItem(m, v, end), nil
	case !isNull(v):
		return splice{}, fmt.Errorf("allowlist.%s is not a list", p.key)
	case v.Value != "":
		return p.replaceNull(v, p.flowList(m))
	case isFlow(m):
		return splice{}, fmt.Errorf("an empty allowlist.%s in a flow mapping is not supported", p.key)
	}
	return p.afterLine(k.Line, p.firstItem(k.Column-1, m)), nil
}

// appendBlockItem adds an item after the last one of the block list seq, in
// the mapping m, whose text ends before line end. The new item copies the
// dash's column and the blanks after it from the last item.
func (p *placer) appendBlockItem(m, seq *yaml.Node, end int) splice {
	last := seq.Content[len(seq.Content)-1]
	gap := " "
	dash, dashErr := p.offset(last.Line, seq.Column)
	item, itemErr := p.offset(last.Line, last.Column)
	if dashErr == nil && itemErr == nil && p.data[dash] == '-' && item > dash+1 {
		if blanks := p.data[dash+1 : item]; len(bytes.Trim(blanks, " \t")) == 0 {
			gap = string(blanks)
		}
	}
	line := strings.Repeat(" ", seq.Column-1) + "-" + gap + p.item(m)
	return p.afterLine(p.lastContent(last.Line, end), line)
}

// newAllowlist returns the lines of a new allowlist key, indented by
// indent, holding the list with the entry.
func (p *placer) newAllowlist(indent int) []string {
	return append([]string{strings.Repeat(" ", indent) + "allowlist:"}, p.newList(indent+2, nil)...)
}

// newList returns the lines of a new key, indented by indent, holding the
// list with the entry, in the allowlist mapping m (nil for a new one).
func (p *placer) newList(indent int, m *yaml.Node) []string {
	return []string{strings.Repeat(" ", indent) + p.key + ":", p.firstItem(indent, m)}
}

// firstItem returns the line of the entry as the first item of a block list
// whose key, in the allowlist mapping m (nil for a new one), is indented by
// indent. The dash's indentation relative to the key is copied from another
// block list of m if there is one, else it is 2.
func (p *placer) firstItem(indent int, m *yaml.Node) string {
	dash := 2
	for key, list := range lists(m) {
		if !isFlow(list) && list.Column >= key.Column {
			dash = list.Column - key.Column
			break
		}
	}
	return strings.Repeat(" ", indent+dash) + "- " + p.item(m)
}

// flowMapping returns an allowlist mapping in flow style holding the entry.
func (p *placer) flowMapping() string {
	return "{" + p.key + ": " + p.flowList(nil) + "}"
}

// flowList returns a list in flow style holding the entry, in the allowlist
// mapping m (nil for a new one).
func (p *placer) flowList(m *yaml.Node) string { return "[" + p.item(m) + "]" }

// item returns the entry quoted like the last item of its list in the
// allowlist mapping m (nil for a new one), or else of the other list:
// double quotes, single quotes, or none when the entry reads the same
// without. With nothing to copy, it uses double quotes.
func (p *placer) item(m *yaml.Node) string {
	style := yaml.DoubleQuotedStyle
	for key, list := range lists(m) {
		if len(list.Content) == 0 {
			continue
		}
		style = list.Content[len(list.Content)-1].Style
		if key.Value == p.key {
			break
		}
	}
	switch {
	case style&yaml.SingleQuotedStyle != 0:
		return "'" + p.value + "'"
	case style&^yaml.TaggedStyle == 0 && plainSafe(p.value):
		return p.value
	}
	return `"` + p.value + `"`
}

// plainSafe reports whether v, unquoted, reads as the string v as a list
// item in both block and flow style. "*.example.com" does not (it starts
// like an alias), nor does "2001:db8::" in block style.
func plainSafe(v string) bool {
	for _, doc := range []string{"- " + v, "[" + v + "]"} {
		var n yaml.Node
		if yaml.Unmarshal([]byte(doc), &n) != nil || len(n.Content) != 1 {
			return false
		}
		if list := n.Content[0]; list.Kind != yaml.SequenceNode || len(list.Content) != 1 {
			return false
		}
		if item := n.Content[0].Content[0]; item.Kind != yaml.ScalarNode || item.Tag != "!!str" || item.Style != 0 || item.Value != v {
			return false
		}
	}
	return true
}

// replaceNull returns a splice that replaces the null written as n ("~",
// "null") with s, which is always longer.
func (p *placer) replaceNull(n *yaml.Node, s string) (splice, error) {
	off, err := p.offset(n.Line, n.Column)
	if err != nil {
		return splice{}, err
	}
	if !bytes.HasPrefix(p.data[off:], []byte(n.Value)) {
		return splice{}, fmt.Errorf("line %d: a tagged or anchored null is not supported", n.Line)
	}
	return splice{at: off, end: off + len(n.Value), text: s}, nil
}

// flowAppend returns a splice that adds item at the end of the flow
// collection n: after the last item on its line or, when the collection
// has one item per line with a trailing comma, on a line of its own.
func (p *placer) flowAppend(n *yaml.Node, item string) (splice, error) {
	open, err := p.offset(n.Line, n.Column)
	if err != nil {
		return splice{}, err
	}
	if c := p.data[open]; c != '[' && c != '{' {
		return splice{}, fmt.Errorf("line %d: a tagged or anchored collection is not supported", n.Line)
	}
	last, closing, err := p.flowEnd(open)
	if err != nil {
		return splice{}, fmt.Errorf("line %d: %w", n.Line, err)
	}
	switch line := p.lineOf(last); {
	case last == open:
		return insertAt(open+1, item), nil
	case p.data[last] != ',':
		return insertAt(last+1, ", "+item), nil
	case p.lineOf(open) < line && line < p.lineOf(closing):
		raw := p.data[p.starts[line-1]:p.ends[line-1]]
		indent := raw[:len(raw)-len(bytes.TrimLeft(raw, " \t"))]
		return p.afterLine(line, string(indent)+item+","), nil
	}
	return insertAt(last+1, " "+item), nil
}

// lookup finds key in the mapping m and returns its key and value nodes,
// and the key that follows them, if any.
func lookup(m *yaml.Node, key string) (k, v, next *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != key {
			continue
		}
		if i+2 < len(m.Content) {
			next = m.Content[i+2]
		}
		return m.Content[i], m.Content[i+1], next
	}
	return nil, nil, nil
}

// lists yields the keys of the mapping m whose values are lists, with the
// lists. A nil m has none.
func lists(m *yaml.Node) iter.Seq2[*yaml.Node, *yaml.Node] {
	return func(yield func(key, list *yaml.Node) bool) {
		if m == nil {
			return
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i+1].Kind == yaml.SequenceNode && !yield(m.Content[i], m.Content[i+1]) {
				return
			}
		}
	}
}

func isFlow(n *yaml.Node) bool { return n.Style&yaml.FlowStyle != 0 }

// writeEdit replaces old, the content of the file at path, with data. It
// returns errChanged, and writes nothing, if the file no longer holds old.
func writeEdit(path string, old, data []byte) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	info, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	current, err := os.ReadFile(real)
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	if !bytes.Equal(current, old) {
		return errChanged
	}
	switch err = replaceFile(real, data, info); {
	case err == nil:
		err = syncDir(filepath.Dir(real))
	case mustWriteInPlace(err):
		err = overwriteFile(real, old, data)
	}
	switch {
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("policy: cannot write %s, which is on a read-only file system (a Kubernetes ConfigMap volume is; edit its source instead): %w", path, err)
	case err != nil:
		return fmt.Errorf("policy: cannot write %s: %w", path, err)
	}
	return nil
}

// mustWriteInPlace reports whether err, from replacing a file by renaming
// a new one over it, means that the file can only be overwritten in place.
func mustWriteInPlace(err error) bool {
	for _, errno := range []syscall.Errno{
		syscall.EBUSY,  // the file is a mount point (a single-file bind mount)
		syscall.EXDEV,  // the rename would cross devices
		syscall.EACCES, // the directory is not writable
		syscall.EPERM,  // the directory is not writable, or sticky
		syscall.EROFS,  // the file system is read-only; overwriting will fail too, and say so
	} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// replaceFile writes data to a new file beside path, with the permission
// bits and (where the system has them) the owner of the file described by
// info, syncs it and renames it over path. When the owner cannot be kept,
// it fails with EPERM, which sends the caller to an edit in place.
func replaceFile(path string, data []byte, info fs.FileInfo) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(info.Mode().Perm())
	}
	if err == nil {
		err = keepOwner(tmp, info)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if closeErr := d.Close(); err == nil {
		err = closeErr
	}
	return err
}

// overwriteFile writes data over old, the content of the file at path, in
// place, for a file that cannot be replaced. data must be at least as long
// as old, so that the write covers every old byte and the file never gets
// shorter: it is neither truncated first nor left truncated by a crash.
func overwriteFile(path string, old, data []byte) error {
	if len(data) < len(old) {
		return errors.New("an edit in place must not make the file shorter")
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	return err
}

// Append returns data, the text of the policy file named source, with the
// entries added to allowlist.ips and allowlist.domains as an [Editor]
// would add them, one by one, and writes nothing: a preview of edits for
// a person to review. Entries the policy already has are left out.
func Append(source string, data []byte, ips, domains []string) ([]byte, error) {
	for i, entry := range slices.Concat(ips, domains) {
		add, key := ipAddition, keyIPs
		if i >= len(ips) {
			add, key = domainAddition, keyDomains
		}
		a, err := add(entry)
		if err != nil {
			return nil, &Error{Source: source, Field: "allowlist." + key, Value: entry, Err: err}
		}
		edited, added, err := edit(source, data, a)
		if err != nil {
			return nil, err
		}
		if added {
			data = edited
		}
	}
	return data, nil
}
