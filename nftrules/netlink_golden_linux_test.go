package nftrules

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The netlink messages that a Conn sends, for a ruleset in each mode and
// the updates and pins that follow, compared with testdata/netlink/*.txt
// (go test -update rewrites them). No kernel is involved: the tests run
// without privileges, and a changed rule, set or element shows as a diff
// of the message that carries it.

// recorder stands in for the kernel behind a netlink connection: it keeps
// the batches sent and acknowledges every message.
type recorder struct {
	batches [][]netlink.Message
}

func (r *recorder) dial(req []netlink.Message) ([]netlink.Message, error) {
	if req == nil {
		// A receive: the acknowledgement (errno 0) that each message
		// of a batch asks for.
		return []netlink.Message{{Header: netlink.Header{Type: netlink.Error}, Data: make([]byte, 4)}}, nil
	}
	batch := make([]netlink.Message, len(req))
	for i, m := range req {
		batch[i] = netlink.Message{Header: m.Header, Data: slices.Clone(m.Data)}
	}
	r.batches = append(r.batches, batch)
	return nil, nil
}

// recordingConn returns a Conn whose batches go to a recorder. It opens
// its netlink connection on first use, as a Conn does after a failed
// batch, so that only the dial differs from one that Open returns.
func recordingConn(t *testing.T) (*Conn, *transcript) {
	rec := &recorder{}
	c := &Conn{opts: []nftables.ConnOption{nftables.AsLasting(), nftables.WithTestDial(rec.dial)}}
	t.Cleanup(func() { _ = c.Close() })
	return c, &transcript{rec: rec, setIDs: map[uint32]int{}}
}

func TestNetlinkGolden(t *testing.T) {
	v4 := pfx("1.1.1.1/32", "10.0.0.0/24", "10.0.1.0/24", "192.168.0.0/16")
	v6 := pfx("2001:db8::/32", "2606:4700:4700::1111/128")
	for name, run := range map[string]func(t *testing.T, c *Conn, tr *transcript){
		"https": func(t *testing.T, c *Conn, tr *transcript) {
			rs, err := Build(Config{Allow4: v4, Allow6: v6,
				Deny4: pfx("10.0.0.128/25"), Deny6: pfx("2001:db8:dead::/48"),
				FilterDNS: true, BypassMark: 0x5eed1234, NflogGroup: 7,
				OwnCgroup: 4242, OwnCgroupLevel: 2, Devices: []string{"eth0"},
				GuardPorts: []uint16{9090}, GuardAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.11")}})
			require.NoError(t, err)
			require.NoError(t, c.Apply(rs))
			tr.step("Apply")

			require.NoError(t, c.UpdateLists(Lists{
				Allow4: pfx("1.1.1.1/32", "10.0.0.0/24", "10.0.1.0/24", "192.168.0.0/17"),
				Allow6: v6, Deny4: pfx("10.0.0.128/25"), Deny6: pfx("2001:db8:dead::/48"),
			}))
			tr.step("UpdateLists, one prefix of allow4 changed: the difference")

			require.NoError(t, c.UpdateLists(Lists{Allow4: pfx("8.8.8.8/32"), Allow6: pfx("::/0")}))
			tr.step("UpdateLists, every set changed: flush and refill")

			require.NoError(t, c.UpdateSets(pfx("8.8.8.8/32"), pfx("::/0")))
			tr.step("UpdateSets, nothing changed")

			require.NoError(t, c.AddEgress("eth1"))
			tr.step("AddEgress eth1")
			require.NoError(t, c.AddEgress("eth1"))
			tr.step("AddEgress eth1 again")

			require.ErrorIs(t, c.Pin([]Pin{{Addr: netip.MustParseAddr("192.0.2.1"), Timeout: time.Minute}}), ErrNoPinnedSets)
			tr.step("Pin in https mode: refused")

			require.NoError(t, c.Close())
			tr.step("Close: the rules stay")
			require.ErrorIs(t, c.Apply(rs), net.ErrClosed)
			tr.step("Apply after Close: refused")
		},
		"dns": func(t *testing.T, c *Conn, tr *transcript) {
			rs, err := Build(Config{Mode: ModeDNS, Allow4: v4, Allow6: v6, DNSPort: 5353,
				AllowLogPrefix: "allowed: ", OwnCgroup: 4242, OwnCgroupLevel: 3,
				Devices: []string{"eth0"}, GuardAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.11")}})
			require.NoError(t, err)
			require.NoError(t, c.Apply(rs))
			tr.step("Apply")

			a := netip.MustParseAddr("192.0.2.1")
			require.NoError(t, c.Pin([]Pin{
				{Addr: a, Timeout: 10 * time.Minute},
				{Addr: netip.MustParseAddr("2001:db8::1"), Timeout: 90 * time.Second},
				{Addr: netip.MustParseAddr("::ffff:192.0.2.2"), Timeout: 0},
				{Addr: netip.MustParseAddr("192.0.2.3"), Timeout: time.Minute},
				{Addr: netip.MustParseAddr("192.0.2.3"), Timeout: 2 * time.Minute},
				{Addr: netip.MustParseAddr("192.0.2.4"), Timeout: 48 * time.Hour},
			}))
			tr.step("Pin: IPv4, IPv6, mapped, twice, below and above the bounds")

			require.NoError(t, c.Pin([]Pin{{Addr: a, Timeout: 10 * time.Minute, Need: 5 * time.Minute}}))
			tr.step("Pin again, pinned long enough already")

			require.NoError(t, c.Pin([]Pin{
				{Addr: a, Timeout: 10 * time.Minute, Need: 5 * time.Minute},
				{Addr: netip.MustParseAddr("2001:db8::2"), Timeout: time.Minute},
			}))
			tr.step("Pin one pinned and one new address")

			require.NoError(t, c.UpdateSets(pfx("1.1.1.1/32"), nil))
			tr.step("UpdateSets")

			require.NoError(t, c.Close())
			tr.step("Close: the rules stay")
		},
	} {
		t.Run(name, func(t *testing.T) {
			c, tr := recordingConn(t)
			run(t, c, tr)
			got := tr.b.String()
			path := filepath.Join("testdata", "netlink", name+".txt")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run go test -update to create it")
			if got != string(want) {
				t.Errorf("%s differs (go test -update rewrites it):\n%s", path, firstDiff(string(want), got))
			}
		})
	}
}

// firstDiff shows the first line where got differs from want, under the
// step and the message it belongs to: the whole texts run to thousands of
// lines.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(wl) && i < len(gl) && wl[i] == gl[i] {
		i++
	}
	var step, msg, of string
	for _, l := range gl[:i] {
		switch {
		case strings.HasPrefix(l, "== "):
			step, msg, of = l, "", ""
		case l != "" && !strings.HasPrefix(l, " "):
			msg, of = l, ""
		case strings.HasPrefix(l, "  chain ") || strings.HasPrefix(l, "  set ") || strings.HasPrefix(l, "  name "):
			of = strings.TrimSpace(l)
		}
	}
	if of != "" {
		msg += ", " + of
	}
	line := func(ls []string) string {
		if i < len(ls) {
			return ls[i]
		}
		return "(end)"
	}
	return fmt.Sprintf("line %d, %s, %s\nwant: %s\n got: %s", i+1, step, msg, line(wl), line(gl))
}

// transcript writes the batches that a recorder received, one attribute a
// line.
type transcript struct {
	rec  *recorder
	seen int // batches written so far
	b    strings.Builder
	// setIDs numbers the set ids of a batch (which google/nftables
	// draws from a counter of its own) in the order of their sets.
	setIDs map[uint32]int
}

// step writes under heading the batches received since the last step.
func (tr *transcript) step(heading string) {
	fmt.Fprintf(&tr.b, "== %s\n", heading)
	if tr.seen == len(tr.rec.batches) {
		tr.b.WriteString("(nothing sent)\n")
	}
	for _, batch := range tr.rec.batches[tr.seen:] {
		for _, m := range batch {
			tr.message(m)
		}
	}
	tr.seen = len(tr.rec.batches)
	tr.b.WriteString("\n")
}

// Message types, by their number in the nftables subsystem.
var msgNames = map[int]string{
	unix.NFT_MSG_NEWTABLE: "newtable", unix.NFT_MSG_DELTABLE: "deltable",
	unix.NFT_MSG_NEWCHAIN: "newchain", unix.NFT_MSG_DELCHAIN: "delchain",
	unix.NFT_MSG_NEWRULE: "newrule", unix.NFT_MSG_DELRULE: "delrule",
	unix.NFT_MSG_NEWSET: "newset", unix.NFT_MSG_DELSET: "delset",
	unix.NFT_MSG_NEWSETELEM: "newsetelem", unix.NFT_MSG_DELSETELEM: "delsetelem",
	unix.NFT_MSG_NEWOBJ: "newobj", unix.NFT_MSG_DELOBJ: "delobj",
}

// msgAttrs is the attribute context of each message type's payload.
var msgAttrs = map[int]string{
	unix.NFT_MSG_NEWTABLE: "table", unix.NFT_MSG_DELTABLE: "table",
	unix.NFT_MSG_NEWCHAIN: "chain", unix.NFT_MSG_DELCHAIN: "chain",
	unix.NFT_MSG_NEWRULE: "rule", unix.NFT_MSG_DELRULE: "rule",
	unix.NFT_MSG_NEWSET: "set", unix.NFT_MSG_DELSET: "set",
	unix.NFT_MSG_NEWSETELEM: "elemlist", unix.NFT_MSG_DELSETELEM: "elemlist",
	unix.NFT_MSG_NEWOBJ: "obj", unix.NFT_MSG_DELOBJ: "obj",
}

var familyNames = map[byte]string{
	unix.NFPROTO_UNSPEC: "unspec", unix.NFPROTO_INET: "inet", unix.NFPROTO_IPV4: "ip",
	unix.NFPROTO_IPV6: "ip6", unix.NFPROTO_NETDEV: "netdev", unix.NFPROTO_ARP: "arp",
	unix.NFPROTO_BRIDGE: "bridge",
}

// attrNames names the attributes of each context (linux/netfilter/nf_tables.h);
// an expression's data has the context of the expression's name.
var attrNames = map[string][]string{
	"table": {unix.NFTA_TABLE_NAME: "name", unix.NFTA_TABLE_FLAGS: "flags", unix.NFTA_TABLE_USE: "use"},
	"chain": {unix.NFTA_CHAIN_TABLE: "table", unix.NFTA_CHAIN_HANDLE: "handle", unix.NFTA_CHAIN_NAME: "name",
		unix.NFTA_CHAIN_HOOK: "hook", unix.NFTA_CHAIN_POLICY: "policy", unix.NFTA_CHAIN_USE: "use",
		unix.NFTA_CHAIN_TYPE: "type", unix.NFTA_CHAIN_COUNTERS: "counters"},
	"hook": {unix.NFTA_HOOK_HOOKNUM: "hooknum", unix.NFTA_HOOK_PRIORITY: "priority", unix.NFTA_HOOK_DEV: "dev"},
	"rule": {unix.NFTA_RULE_TABLE: "table", unix.NFTA_RULE_CHAIN: "chain", unix.NFTA_RULE_HANDLE: "handle",
		unix.NFTA_RULE_EXPRESSIONS: "expressions", unix.NFTA_RULE_COMPAT: "compat",
		unix.NFTA_RULE_POSITION: "position", unix.NFTA_RULE_USERDATA: "userdata", unix.NFTA_RULE_ID: "id"},
	"expr": {unix.NFTA_EXPR_NAME: "name", unix.NFTA_EXPR_DATA: "data"},
	"set": {unix.NFTA_SET_TABLE: "table", unix.NFTA_SET_NAME: "name", unix.NFTA_SET_FLAGS: "flags",
		unix.NFTA_SET_KEY_TYPE: "key-type", unix.NFTA_SET_KEY_LEN: "key-len",
		unix.NFTA_SET_DATA_TYPE: "data-type", unix.NFTA_SET_DATA_LEN: "data-len",
		unix.NFTA_SET_POLICY: "policy", unix.NFTA_SET_DESC: "desc", unix.NFTA_SET_ID: "id",
		unix.NFTA_SET_TIMEOUT: "timeout", unix.NFTA_SET_GC_INTERVAL: "gc-interval",
		unix.NFTA_SET_USERDATA: "userdata", unix.NFTA_SET_OBJ_TYPE: "obj-type"},
	"elemlist": {unix.NFTA_SET_ELEM_LIST_TABLE: "table", unix.NFTA_SET_ELEM_LIST_SET: "set",
		unix.NFTA_SET_ELEM_LIST_ELEMENTS: "elements", unix.NFTA_SET_ELEM_LIST_SET_ID: "set-id"},
	"elem": {unix.NFTA_SET_ELEM_KEY: "key", unix.NFTA_SET_ELEM_DATA: "data", unix.NFTA_SET_ELEM_FLAGS: "flags",
		unix.NFTA_SET_ELEM_TIMEOUT: "timeout", unix.NFTA_SET_ELEM_EXPIRATION: "expiration",
		unix.NFTA_SET_ELEM_USERDATA: "userdata", unix.NFTA_SET_ELEM_EXPR: "expr", unix.NFTA_SET_ELEM_OBJREF: "objref"},
	"data":    {unix.NFTA_DATA_VALUE: "value", unix.NFTA_DATA_VERDICT: "verdict"},
	"key":     {unix.NFTA_DATA_VALUE: "value"},
	"verdict": {unix.NFTA_VERDICT_CODE: "code", unix.NFTA_VERDICT_CHAIN: "chain"},
	"obj": {unix.NFTA_OBJ_TABLE: "table", unix.NFTA_OBJ_NAME: "name", unix.NFTA_OBJ_TYPE: "type",
		unix.NFTA_OBJ_DATA: "data", unix.NFTA_OBJ_USE: "use"},
	"counter": {unix.NFTA_COUNTER_BYTES: "bytes", unix.NFTA_COUNTER_PACKETS: "packets"},

	"meta": {unix.NFTA_META_DREG: "dreg", unix.NFTA_META_KEY: "key", unix.NFTA_META_SREG: "sreg"},
	"cmp":  {unix.NFTA_CMP_SREG: "sreg", unix.NFTA_CMP_OP: "op", unix.NFTA_CMP_DATA: "data"},
	"payload": {unix.NFTA_PAYLOAD_DREG: "dreg", unix.NFTA_PAYLOAD_BASE: "base", unix.NFTA_PAYLOAD_OFFSET: "offset",
		unix.NFTA_PAYLOAD_LEN: "len", unix.NFTA_PAYLOAD_SREG: "sreg"},
	"lookup": {unix.NFTA_LOOKUP_SET: "set", unix.NFTA_LOOKUP_SREG: "sreg", unix.NFTA_LOOKUP_DREG: "dreg",
		unix.NFTA_LOOKUP_SET_ID: "set-id", unix.NFTA_LOOKUP_FLAGS: "flags"},
	"ct": {unix.NFTA_CT_DREG: "dreg", unix.NFTA_CT_KEY: "key", unix.NFTA_CT_DIRECTION: "direction",
		unix.NFTA_CT_SREG: "sreg"},
	"immediate": {unix.NFTA_IMMEDIATE_DREG: "dreg", unix.NFTA_IMMEDIATE_DATA: "data"},
	"bitwise": {unix.NFTA_BITWISE_SREG: "sreg", unix.NFTA_BITWISE_DREG: "dreg", unix.NFTA_BITWISE_LEN: "len",
		unix.NFTA_BITWISE_MASK: "mask", unix.NFTA_BITWISE_XOR: "xor"},
	"byteorder": {unix.NFTA_BYTEORDER_SREG: "sreg", unix.NFTA_BYTEORDER_DREG: "dreg",
		unix.NFTA_BYTEORDER_OP: "op", unix.NFTA_BYTEORDER_LEN: "len", unix.NFTA_BYTEORDER_SIZE: "size"},
	"fib":    {unix.NFTA_FIB_DREG: "dreg", unix.NFTA_FIB_RESULT: "result", unix.NFTA_FIB_FLAGS: "flags"},
	"socket": {expr.NFTA_SOCKET_KEY: "key", expr.NFTA_SOCKET_DREG: "dreg", expr.NFTA_SOCKET_LEVEL: "level"},
	"log": {unix.NFTA_LOG_GROUP: "group", unix.NFTA_LOG_PREFIX: "prefix", unix.NFTA_LOG_SNAPLEN: "snaplen",
		unix.NFTA_LOG_QTHRESHOLD: "qthreshold", unix.NFTA_LOG_LEVEL: "level", unix.NFTA_LOG_FLAGS: "flags"},
	"reject": {unix.NFTA_REJECT_TYPE: "type", unix.NFTA_REJECT_ICMP_CODE: "icmp-code"},
	"redir": {unix.NFTA_REDIR_REG_PROTO_MIN: "reg-proto-min", unix.NFTA_REDIR_REG_PROTO_MAX: "reg-proto-max",
		unix.NFTA_REDIR_FLAGS: "flags"},
	"objref": {unix.NFTA_OBJREF_IMM_TYPE: "imm-type", unix.NFTA_OBJREF_IMM_NAME: "imm-name",
		unix.NFTA_OBJREF_SET_SREG: "set-sreg", unix.NFTA_OBJREF_SET_NAME: "set-name",
		unix.NFTA_OBJREF_SET_ID: "set-id"},
}

// attrChildren gives the context of a nested attribute's contents, by
// context/name.
var attrChildren = map[string]string{
	"chain/hook": "hook", "rule/expressions": "exprs",
	"elemlist/elements": "elems", "elem/key": "key", "elem/data": "data",
	"data/verdict": "verdict", "cmp/data": "data", "immediate/data": "data",
	"bitwise/mask": "data", "bitwise/xor": "data",
}

// listElems gives the context of the elements of a list, by the list's
// context. google/nftables numbers set elements 1, 2, 3... where rules
// have NFTA_LIST_ELEM; the kernel reads neither.
var listElems = map[string]string{"exprs": "expr", "elems": "elem"}

// setIDAttrs are the attributes that hold a set id.
var setIDAttrs = map[string]bool{"set/id": true, "elemlist/set-id": true, "lookup/set-id": true, "objref/set-id": true}

// message writes m: its type, family and flags on one line, then its
// attributes.
func (tr *transcript) message(m netlink.Message) {
	typ := int(m.Header.Type)
	var name, ctx string
	switch {
	case typ == unix.NFNL_MSG_BATCH_BEGIN:
		name = "batch-begin"
	case typ == unix.NFNL_MSG_BATCH_END:
		name = "batch-end"
	case typ>>8 == unix.NFNL_SUBSYS_NFTABLES:
		name, ctx = msgNames[typ&0xff], msgAttrs[typ&0xff]
	}
	if name == "" {
		name = fmt.Sprintf("type-%#04x", typ)
	}
	if len(m.Data) < 4 {
		fmt.Fprintf(&tr.b, "%s %s short %x\n", name, headerFlags(m.Header.Flags), m.Data)
		return
	}
	// The nfgenmsg header: family, version, resource id.
	fam, ok := familyNames[m.Data[0]]
	if !ok {
		fam = fmt.Sprintf("family-%d", m.Data[0])
	}
	fmt.Fprintf(&tr.b, "%s %s %s", name, fam, headerFlags(m.Header.Flags))
	if v := m.Data[1]; v != 0 {
		fmt.Fprintf(&tr.b, " version %d", v)
	}
	if id := binary.BigEndian.Uint16(m.Data[2:4]); id != 0 {
		fmt.Fprintf(&tr.b, " res-id %d", id)
	}
	tr.b.WriteString("\n")
	tr.attrs(m.Data[4:], ctx, 1)
}

func headerFlags(f netlink.HeaderFlags) string {
	var out []string
	for _, fl := range []struct {
		bit  netlink.HeaderFlags
		name string
	}{
		{netlink.Request, "request"}, {netlink.Multi, "multi"}, {netlink.Acknowledge, "ack"},
		{netlink.Echo, "echo"}, {netlink.Replace, "replace"}, {netlink.Excl, "excl"},
		{netlink.Create, "create"}, {netlink.Append, "append"},
	} {
		if f&fl.bit != 0 {
			out = append(out, fl.name)
			f &^= fl.bit
		}
	}
	if f != 0 || len(out) == 0 {
		out = append(out, fmt.Sprintf("%#x", uint16(f)))
	}
	return strings.Join(out, "|")
}

// attrs writes the attributes in b, of context ctx, at depth: a name and
// its value, or its attributes below it when nested. Bytes that do not
// parse as attributes are written in hex.
func (tr *transcript) attrs(b []byte, ctx string, depth int) {
	indent := strings.Repeat("  ", depth)
	kind := "" // the expression's name, for the context of its data
	for len(b) > 0 {
		if len(b) < 4 {
			fmt.Fprintf(&tr.b, "%strailing %x\n", indent, b)
			return
		}
		n := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4])
		if n < 4 || n > len(b) {
			fmt.Fprintf(&tr.b, "%sbad attribute %x\n", indent, b)
			return
		}
		data := b[4:n]
		b = b[min((n+3)&^3, len(b)):]

		num := typ &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		name := fmt.Sprintf("attr-%d", num)
		if names := attrNames[ctx]; int(num) < len(names) && names[num] != "" {
			name = names[num]
		}
		path := ctx + "/" + name
		child, known := attrChildren[path]
		switch {
		case listElems[ctx] != "":
			name, child, known = "elem", listElems[ctx], true
			if num != unix.NFTA_LIST_ELEM {
				name = fmt.Sprintf("elem %d", num)
			}
		case path == "expr/name":
			kind = strings.TrimSuffix(string(data), "\x00")
		case path == "expr/data":
			child, known = kind, true
		case path == "obj/data":
			child, known = "counter", true // the only object nftrules adds
		}
		// Flags show in the name.
		if typ&unix.NLA_F_NET_BYTEORDER != 0 {
			name += " (net-byteorder)"
		}
		nested := typ&unix.NLA_F_NESTED != 0
		switch {
		case known || nested && strings.HasPrefix(name, "attr-") && parses(data):
			if !nested {
				name += " (not flagged nested)"
			}
			fmt.Fprintf(&tr.b, "%s%s\n", indent, name)
			tr.attrs(data, child, depth+1)
			continue
		case nested:
			name += " (flagged nested)"
		}
		switch {
		case setIDAttrs[path] && len(data) == 4:
			fmt.Fprintf(&tr.b, "%s%s %s\n", indent, name, tr.setID(binary.BigEndian.Uint32(data)))
		default:
			fmt.Fprintf(&tr.b, "%s%s %s%s\n", indent, name, value(data), note(path, data))
		}
	}
}

// parses reports whether b is a list of attributes.
func parses(b []byte) bool {
	for len(b) > 0 {
		if len(b) < 4 {
			return false
		}
		n := int(binary.NativeEndian.Uint16(b[0:2]))
		if n < 4 || n > len(b) {
			return false
		}
		b = b[min((n+3)&^3, len(b)):]
	}
	return true
}

// setID names id by the order of its first appearance: set#1, set#2... Id
// 0, no set, stays 0.
func (tr *transcript) setID(id uint32) string {
	if id == 0 {
		return "0"
	}
	n, ok := tr.setIDs[id]
	if !ok {
		n = len(tr.setIDs) + 1
		tr.setIDs[id] = n
	}
	return fmt.Sprintf("set#%d", n)
}

// note reads a set element's key as an address and its timeout as a
// duration.
func note(path string, data []byte) string {
	switch {
	case path == "key/value":
		if a, ok := netip.AddrFromSlice(data); ok {
			return " (" + a.String() + ")"
		}
	case path == "elem/timeout" && len(data) == 8:
		return fmt.Sprintf(" (%v)", time.Duration(binary.BigEndian.Uint64(data))*time.Millisecond)
	}
	return ""
}

// value writes a NUL-terminated printable string quoted (without the
// NUL), anything else in hex.
func value(data []byte) string {
	if s, ok := strings.CutSuffix(string(data), "\x00"); ok && s != "" &&
		!strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		return strconv.Quote(s)
	}
	if len(data) == 0 {
		return "(empty)"
	}
	return hex.EncodeToString(data)
}
