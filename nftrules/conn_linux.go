package nftrules

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Conn manages the g0efilter table through one lasting netlink connection.
// Its methods may be called from several goroutines; each sends one batch
// that the kernel applies atomically, or nothing.
type Conn struct {
	mu sync.Mutex
	// nc queues the messages of a batch until its Flush. Between calls it
	// holds none (see batch); nil once a failed batch has discarded it,
	// until the next call opens another.
	nc      *nftables.Conn
	opts    []nftables.ConnOption // to open nc again
	netns   int                   // our duplicate of ConnConfig.NetNS; 0 for none
	closed  bool
	applied *Ruleset // the last ruleset applied, for UpdateSets

	// beforeFlush, set by tests, fails a batch after its messages are
	// queued and before they are sent.
	beforeFlush func() error

	// deadlines holds when each address pinned through this Conn since
	// the last Apply stops being pinned, so that a later, shorter pin
	// does not cut it short. Expired entries are pruned once the map has
	// doubled since the last pruning (pruneAt).
	deadlines map[pinKey]time.Time
	pruneAt   int
}

// Open opens a lasting netlink connection to nftables in the namespace of
// cfg. It needs CAP_NET_ADMIN in that namespace only to change rules.
// cfg.NetNS is duplicated: the caller may close its descriptor. Close the
// Conn when done.
func Open(cfg ConnConfig) (*Conn, error) {
	size := cfg.SocketBuffer
	if size <= 0 {
		size = defaultSocketBuffer
	}
	c := &Conn{opts: []nftables.ConnOption{
		nftables.AsLasting(),
		nftables.WithSockOptions(func(c *netlink.Conn) error { return setBuffers(c, size) }),
	}}
	if cfg.NetNS != 0 {
		// A failed batch opens the connection again (see batch), maybe
		// after the caller has closed its descriptor.
		fd, err := unix.FcntlInt(uintptr(cfg.NetNS), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			return nil, fmt.Errorf("nftrules: network namespace descriptor: %w", err)
		}
		c.netns = fd
		c.opts = append(c.opts, nftables.WithNetNSFd(fd))
	}
	nc, err := nftables.New(c.opts...)
	if err != nil {
		c.closeNetNS()
		return nil, fmt.Errorf("nftrules: open netlink: %w", err)
	}
	c.nc = nc
	return c, nil
}

// errClosed is returned by the methods of a closed Conn.
var errClosed = fmt.Errorf("nftrules: %w", net.ErrClosed)

// conn returns the netlink connection, opening another when a failed batch
// has discarded the last. The caller holds c.mu.
func (c *Conn) conn() (*nftables.Conn, error) {
	if c.closed {
		return nil, errClosed
	}
	if c.nc == nil {
		nc, err := nftables.New(c.opts...)
		if err != nil {
			return nil, fmt.Errorf("nftrules: open netlink again after a failed batch: %w", err)
		}
		c.nc = nc
	}
	return c.nc, nil
}

// batch sends the messages that queue puts on the connection as one batch,
// which the kernel applies atomically. The caller holds c.mu.
//
// When queue fails, or the batch does not go through, the connection is
// discarded with whatever it holds and the next call opens another, so
// that nothing of a failed batch is sent with a later one: google/nftables
// cannot drop queued messages (see docs/DESIGN-NOTES.md).
func (c *Conn) batch(queue func(nc *nftables.Conn) error) error {
	nc, err := c.conn()
	if err != nil {
		return err
	}
	err = queue(nc)
	if err == nil && c.beforeFlush != nil {
		err = c.beforeFlush()
	}
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		_ = nc.CloseLasting()
		c.nc = nil
	}
	return err
}

// closeNetNS closes the duplicate of the namespace descriptor.
func (c *Conn) closeNetNS() {
	if c.netns != 0 {
		_ = unix.Close(c.netns)
		c.netns = 0
	}
}

// setBuffers raises the socket buffers past the system limits
// (SO_SNDBUFFORCE, which needs CAP_NET_ADMIN) or, failing that, up to them.
func setBuffers(c *netlink.Conn, size int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var forceErr error
	if err := rc.Control(func(fd uintptr) {
		forceErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size)
		if forceErr == nil {
			forceErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
		}
	}); err != nil {
		return err
	}
	if forceErr == nil {
		return nil
	}
	if err := c.SetWriteBuffer(size); err != nil {
		return err
	}
	return c.SetReadBuffer(size)
}

// Installed checks that the namespace has the g0efilter table with its
// output chain dropping by default, as Apply installs it: the question a
// health check asks. It returns nil when it has, and an error saying what
// is missing otherwise.
func (c *Conn) Installed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	nc, err := c.conn()
	if err != nil {
		return err
	}
	t, err := nc.ListTableOfFamily(TableName, nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("nftrules: no table inet %s: %w", TableName, err)
	}
	want := map[string]bool{chainOutput: false, chainNATOut: false, chainInput: false, chainPrerouting: false, chainForward: false,
		chainBlock: false, chainDeny: false}
	chains, err := nc.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("nftrules: list chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table == nil || ch.Table.Name != t.Name {
			continue
		}
		if _, ok := want[ch.Name]; !ok {
			continue
		}
		if (ch.Name == chainOutput || ch.Name == chainForward) && (ch.Policy == nil || *ch.Policy != nftables.ChainPolicyDrop) {
			return fmt.Errorf("nftrules: chain %s does not drop by default", ch.Name)
		}
		want[ch.Name] = true
	}
	for name, ok := range want {
		if !ok {
			return fmt.Errorf("nftrules: table inet %s has no chain %s", TableName, name)
		}
	}
	return nil
}

// Guards reads back which guards against a hostile workload the installed
// ruleset has: whether the own chain tells the filter's sockets apart by
// cgroup (not by the mark alone), and the devices whose egress hook has
// the netdev table's chain. It is for a health check in another process.
func (c *Conn) Guards() (byCgroup bool, egress []string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	nc, err := c.conn()
	if err != nil {
		return false, nil, err
	}
	t := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
	rules, err := nc.GetRules(t, &nftables.Chain{Name: chainOwn, Table: t})
	if err != nil {
		return false, nil, fmt.Errorf("nftrules: chain %s: %w", chainOwn, err)
	}
	// Without a cgroup the chain has one rule: the mark accepts.
	byCgroup = len(rules) > 1
	chains, err := nc.ListChainsOfTableFamily(nftables.TableFamilyNetdev)
	if err != nil {
		return false, nil, fmt.Errorf("nftrules: list netdev chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table == nil || ch.Table.Name != TableName {
			continue
		}
		if dev, ok := strings.CutPrefix(ch.Name, egressPrefix); ok {
			egress = append(egress, dev)
		}
	}
	return byCgroup, egress, nil
}

// Auditing reads back whether the installed ruleset only audits
// ([Config.Audit]): whether its block chain accepts what it logs. It is
// for a health check in another process.
func (c *Conn) Auditing() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	nc, err := c.conn()
	if err != nil {
		return false, err
	}
	t := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
	rules, err := nc.GetRules(t, &nftables.Chain{Name: chainBlock, Table: t})
	if err != nil {
		return false, fmt.Errorf("nftrules: chain %s: %w", chainBlock, err)
	}
	for _, r := range rules {
		for _, e := range r.Exprs {
			if v, ok := e.(*expr.Verdict); ok && v.Kind == expr.VerdictAccept {
				return true, nil
			}
		}
	}
	return false, nil
}

// Close closes the netlink connection. The rules stay installed. The
// methods of a closed Conn return an error wrapping [net.ErrClosed].
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	if c.nc != nil {
		err = c.nc.CloseLasting()
		c.nc = nil
	}
	c.closed = true
	c.closeNetNS()
	return err
}

// Apply installs r in one atomic batch: a table of the same name left by a
// previous run is deleted and the new one added in the same transaction,
// so there is no instant without rules.
func (c *Conn) Apply(r *Ruleset) error {
	if err := validate(r); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.batch(func(nc *nftables.Conn) error {
		t := &nftables.Table{Name: r.table, Family: nftables.TableFamilyINet}
		// Adding an existing table is not an error, so the delete that
		// follows always finds one.
		nc.AddTable(t)
		nc.DelTable(t)
		nc.AddTable(t)

		sets := make(map[string]*nftables.Set, len(r.sets))
		for i := range r.sets {
			s := &r.sets[i]
			ns := nftSet(t, s)
			if err := nc.AddSet(ns, nil); err != nil {
				return fmt.Errorf("nftrules: set %s: %w", s.Name, err)
			}
			if err := addElements(nc, ns, s.Elements); err != nil {
				return err
			}
			if err := addServices(nc, ns, s.Services); err != nil {
				return err
			}
			if err := addEncoded(nc, ns, portElements(s.Ports)); err != nil {
				return err
			}
			sets[s.Name] = ns
		}
		for i := range r.chains {
			addChain(nc, t, &r.chains[i], sets)
		}

		// The netdev table is replaced in the same batch, or removed when
		// there is nothing for it to guard.
		nt := &nftables.Table{Name: r.table, Family: nftables.TableFamilyNetdev}
		nc.AddTable(nt)
		nc.DelTable(nt)
		if len(r.egress) > 0 {
			nc.AddTable(nt)
			for i := range r.egress {
				addEgress(nc, nt, &r.egress[i])
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("nftrules: apply table %s: %w", r.table, err)
	}
	c.applied = r
	// The table was replaced: its pinned sets, if any, are empty.
	c.deadlines = nil
	return nil
}

// addChain queues ch and its rules in t; validate has checked the rules.
func addChain(nc *nftables.Conn, t *nftables.Table, ch *chain, sets map[string]*nftables.Set) {
	nch := nc.AddChain(nftChain(t, ch))
	for _, rule := range ch.Rules {
		exprs, _ := ruleExprs(rule, sets)
		nc.AddRule(&nftables.Rule{Table: t, Chain: nch, Exprs: exprs})
	}
}

// addEgress queues an egress chain and its counter in the netdev table nt.
func addEgress(nc *nftables.Conn, nt *nftables.Table, ch *chain) {
	nc.AddObj(&nftables.CounterObj{Table: nt, Name: rawFrameCounterPrefix + ch.Device})
	addChain(nc, nt, ch, nil)
}

// RawFrames returns, for each guarded device, how many frames its egress
// chain dropped since the previous call (or since Apply), and resets the
// counters, in one request: the attempts to send below the IP stack.
// Devices with none are left out.
func (c *Conn) RawFrames() (map[string]uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.applied == nil || len(c.applied.egress) == 0 {
		return nil, nil
	}
	nc, err := c.conn()
	if err != nil {
		return nil, err
	}
	nt := &nftables.Table{Name: c.applied.table, Family: nftables.TableFamilyNetdev}
	objs, err := nc.ResetObjects(nt)
	if err != nil {
		return nil, fmt.Errorf("nftrules: read the raw frame counters: %w", err)
	}
	out := map[string]uint64{}
	for _, o := range objs {
		if co, ok := o.(*nftables.CounterObj); ok && co.Packets > 0 {
			if dev, ok := strings.CutPrefix(co.Name, rawFrameCounterPrefix); ok {
				out[dev] += co.Packets
			}
		}
	}
	return out, nil
}

// AddEgress adds the chain that guards device (see [Config.Devices]) to
// the netdev table in one batch, for a device that appeared after
// [Conn.Apply]. A device that is guarded already is left as it is. It
// returns [ErrNotApplied] before an Apply.
func (c *Conn) AddEgress(device string) error {
	if device == "" || len(device) > maxDeviceName {
		return fmt.Errorf("%w: device name %q", ErrConfig, device)
	}
	ch := egressChain(device)
	if err := validate(&Ruleset{egress: []chain{ch}}); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.applied == nil {
		return ErrNotApplied
	}
	if slices.ContainsFunc(c.applied.egress, func(e chain) bool { return e.Name == ch.Name }) {
		return nil
	}
	nt := &nftables.Table{Name: c.applied.table, Family: nftables.TableFamilyNetdev}
	err := c.batch(func(nc *nftables.Conn) error {
		nc.AddTable(nt)
		addEgress(nc, nt, &ch)
		return nil
	})
	if err != nil {
		return fmt.Errorf("nftrules: guard device %s: %w", ch.Device, err)
	}
	r := *c.applied
	r.egress = append(slices.Clip(r.egress), ch)
	c.applied = &r
	return nil
}

// validate translates every rule against placeholder sets, so that Apply
// queues nothing on the connection unless the whole batch can be built.
func validate(r *Ruleset) error {
	t := &nftables.Table{Name: r.table, Family: nftables.TableFamilyINet}
	sets := make(map[string]*nftables.Set, len(r.sets))
	for i := range r.sets {
		sets[r.sets[i].Name] = nftSet(t, &r.sets[i])
	}
	regular := map[string]bool{} // the regular chains made so far
	for _, ch := range slices.Concat(r.chains, r.egress) {
		for j, rule := range ch.Rules {
			if _, err := ruleExprs(rule, sets); err != nil {
				return fmt.Errorf("nftrules: chain %s rule %d: %w", ch.Name, j, err)
			}
			if rule.Verdict.Kind == verdictJump && !regular[rule.Verdict.Chain] {
				return fmt.Errorf("nftrules: chain %s rule %d: jump to %s, not a regular chain listed before it",
					ch.Name, j, rule.Verdict.Chain)
			}
		}
		if ch.Type == chainRegular {
			regular[ch.Name] = true
		}
	}
	return nil
}

// UpdateSets replaces the elements of the allowlist sets (allow4, allow6)
// of the last applied ruleset in one atomic batch, as [Conn.UpdateLists]
// does; the denied sets stay as they are.
func (c *Conn) UpdateSets(v4, v6 []netip.Prefix) error {
	return c.update(map[string][]netip.Prefix{SetAllow4: v4, SetAllow6: v6}, nil)
}

// UpdateLists replaces the elements of the allowlist and denylist sets of
// the last applied ruleset in one atomic batch: chains and rules are
// untouched, so established connections survive and no packet sees a
// half-updated set, or a new allowlist with the old denylist.
//
// When it is smaller than the new contents, only the difference from the
// previous contents is sent. Otherwise, or should the kernel refuse the
// difference (the sets were changed behind this Conn's back), the sets
// are flushed and refilled, still in one batch. The service and port sets
// are flushed and refilled, in the same batch, when their contents change.
func (c *Conn) UpdateLists(l Lists) error {
	return c.update(map[string][]netip.Prefix{
		SetAllow4: l.Allow4, SetAllow6: l.Allow6, setDeny4: l.Deny4, setDeny6: l.Deny6,
	}, &l)
}

// update replaces the elements of the named prefix sets and, when l is not
// nil, of the service and port sets.
func (c *Conn) update(want map[string][]netip.Prefix, l *Lists) error {
	var s4, s6 []Service
	if l != nil {
		var err error
		if s4, s6, err = checkServices(l.AllowPorts); err != nil {
			return err
		}
		if err := checkPorts(l.TLSPorts, l.HTTPPorts); err != nil {
			return err
		}
	}
	names := slices.Sorted(maps.Keys(want))
	elems := make(map[string][]netip.Prefix, len(want))
	for _, name := range names {
		ps, err := checkPrefixes(want[name], name == SetAllow4 || name == setDeny4)
		if err != nil {
			return err
		}
		elems[name] = ps
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.applied == nil {
		return ErrNotApplied
	}
	t := &nftables.Table{Name: c.applied.table, Family: nftables.TableFamilyINet}
	type change struct {
		set              *nftables.Set
		all, gone, added []netip.Prefix
	}
	var changes []change
	// The service and port sets are few and small: flushed and refilled
	// when they change.
	type replacement struct {
		set   *nftables.Set
		elems []nftables.SetElement
	}
	var replacements []replacement
	newSets := map[string]set{}
	if l != nil {
		for _, want := range []set{
			{Name: setAllowPorts4, Services: s4}, {Name: setAllowPorts6, Services: s6},
			{Name: setTLSPorts, Ports: l.TLSPorts}, {Name: setHTTPPorts, Ports: l.HTTPPorts},
		} {
			s := c.applied.set(want.Name)
			if s == nil {
				if want.Name == setTLSPorts || want.Name == setHTTPPorts {
					continue // dns mode
				}
				return fmt.Errorf("nftrules: applied ruleset lacks set %s", want.Name)
			}
			if slices.Equal(s.Services, want.Services) && slices.Equal(s.Ports, want.Ports) {
				continue
			}
			replacements = append(replacements, replacement{nftSet(t, s),
				slices.Concat(serviceElements(want.Services), portElements(want.Ports))})
			newSets[want.Name] = want
		}
	}
	var mode modeSwitch
	if l != nil && l.Audit != c.applied.audit {
		mode = c.applied.switchTo(t, l.Audit)
	}
	replaceSets := func(nc *nftables.Conn) error {
		if err := mode.queue(nc, t); err != nil {
			return err
		}
		for _, rp := range replacements {
			nc.FlushSet(rp.set)
			if err := addEncoded(nc, rp.set, rp.elems); err != nil {
				return err
			}
		}
		return nil
	}
	diff, total := 0, 0
	for _, name := range names {
		s := c.applied.set(name)
		if s == nil {
			return fmt.Errorf("nftrules: applied ruleset lacks set %s", name)
		}
		gone, added := diffPrefixes(s.Elements, elems[name])
		changes = append(changes, change{nftSet(t, s), elems[name], gone, added})
		diff += len(gone) + len(added)
		total += len(elems[name])
	}
	err := errFullReplace
	// Deleting an element costs the kernel more than flushing it: send
	// the difference only when it is smaller than the new contents.
	if diff <= total {
		err = c.batch(func(nc *nftables.Conn) error {
			if err := replaceSets(nc); err != nil {
				return err
			}
			for _, ch := range changes {
				if err := deleteElements(nc, ch.set, ch.gone); err != nil {
					return err
				}
			}
			for _, ch := range changes {
				if err := addElements(nc, ch.set, ch.added); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		err = c.batch(func(nc *nftables.Conn) error {
			if err := replaceSets(nc); err != nil {
				return err
			}
			for _, ch := range changes {
				nc.FlushSet(ch.set)
				if err := addElements(nc, ch.set, ch.all); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("nftrules: update sets: %w", err)
		}
	}
	// Keep the description in step, so that a later rendering shows what
	// is installed. The previous value is not changed: callers may hold it.
	r := *c.applied
	r.sets = append([]set(nil), r.sets...)
	for _, name := range names {
		r.set(name).Elements = elems[name]
	}
	for name, set := range newSets {
		r.set(name).Services, r.set(name).Ports = set.Services, slices.Clone(set.Ports)
	}
	if mode.chains != nil {
		r.chains = slices.Clone(r.chains)
		for _, ch := range mode.chains {
			r.chain(ch.Name).Rules = ch.Rules
		}
		r.audit = l.Audit
	}
	if len(mode.unpin) > 0 {
		c.deadlines = nil
	}
	c.applied = &r
	return nil
}

// modeSwitch is a change of mode (see [Lists.Audit]): the verdict chains
// with their new rules and, going back to enforce, the pinned sets to
// empty. Its zero value changes nothing.
type modeSwitch struct {
	chains []chain
	unpin  []*nftables.Set
}

// switchTo plans the switch of r, installed as table t, to audit mode or
// back to enforce mode.
func (r *Ruleset) switchTo(t *nftables.Table, audit bool) modeSwitch {
	m := modeSwitch{chains: []chain{
		{Name: chainBlock, Type: chainRegular, Rules: r.verdicts.blockRules(audit)},
		{Name: chainDeny, Type: chainRegular, Rules: r.verdicts.denyRules(audit)},
	}}
	if !audit {
		// Addresses pinned while auditing may be those of names the
		// policy refuses.
		for _, name := range []string{setPinned4, setPinned6, setPinnedPorts4, setPinnedPorts6} {
			if s := r.set(name); s != nil {
				m.unpin = append(m.unpin, nftSet(t, s))
			}
		}
	}
	return m
}

// queue adds the switch to a batch for table t.
func (m modeSwitch) queue(nc *nftables.Conn, t *nftables.Table) error {
	for i := range m.chains {
		ch := &nftables.Chain{Name: m.chains[i].Name, Table: t}
		nc.FlushChain(ch)
		for _, rule := range m.chains[i].Rules {
			exprs, err := ruleExprs(rule, nil)
			if err != nil {
				return err
			}
			nc.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
		}
	}
	for _, ns := range m.unpin {
		nc.FlushSet(ns)
	}
	return nil
}

// Pin lets new connections go to addresses until their timeouts pass, in
// one atomic batch, each with its own timeout (see [Pin] for its bounds):
// an address on every port goes to the pinned sets of a dns mode ruleset
// (pinned4, pinned6), an address on one protocol and port to the
// pinned_ports sets, which both modes have; IPv4-mapped addresses count
// as IPv4. Connections made meanwhile outlive the pin: the output chain
// accepts established ones before it looks at the sets.
//
// Pinning an address again leaves it as it is, and sends nothing, when
// its current expiry is at least its [Pin.Need] from now; otherwise it
// sets its expiry to the new timeout from now, or keeps the current one
// when that is later: a pin never shortens an earlier pin made through
// this Conn since the last [Conn.Apply] (which empties the pinned sets).
// An address pinned otherwise (by another Conn or process) gets the new
// timeout, sooner or not. Pin keeps the deadlines itself rather than rely
// on the kernel, whose handling of a re-added element has changed over
// time (see docs/DESIGN-NOTES.md).
//
// Pin returns [ErrNotApplied] before an Apply, [ErrNoPinnedSets] if the
// applied ruleset has no set for a pin and an error wrapping [ErrConfig]
// for an invalid pin; then nothing is pinned. It may be called
// concurrently with the other methods. Pinned addresses are not part of
// the [Ruleset] that [Conn.Applied] returns.
func (c *Conn) Pin(pins []Pin) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.applied == nil {
		return ErrNotApplied
	}
	now := time.Now()
	plan, err := planPins(pins, now, c.deadlines)
	if err != nil {
		return err
	}
	if plan.len() == 0 {
		return nil
	}
	t := &nftables.Table{Name: c.applied.table, Family: nftables.TableFamilyINet}
	type step struct {
		set  string
		pins []pinned
	}
	var steps []step
	for _, st := range []step{{setPinned4, plan.v4}, {setPinned6, plan.v6}, {setPinnedPorts4, plan.ports4}, {setPinnedPorts6, plan.ports6}} {
		if len(st.pins) == 0 {
			continue
		}
		if c.applied.set(st.set) == nil {
			return ErrNoPinnedSets
		}
		steps = append(steps, st)
	}
	err = c.batch(func(nc *nftables.Conn) error {
		for _, st := range steps {
			if err := repin(nc, nftSet(t, c.applied.set(st.set)), st.pins); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("nftrules: pin: %w", err)
	}
	if c.deadlines == nil {
		c.deadlines = make(map[pinKey]time.Time, plan.len())
	}
	for _, st := range steps {
		for _, p := range st.pins {
			c.deadlines[p.pinKey] = now.Add(p.timeout)
		}
	}
	if len(c.deadlines) >= c.pruneAt {
		for k, d := range c.deadlines {
			if !d.After(now) {
				delete(c.deadlines, k)
			}
		}
		c.pruneAt = max(2*len(c.deadlines), minPrune)
	}
	return nil
}

// minPrune is the size of the deadlines map below which expired entries
// are left in place.
const minPrune = 1024

// repin queues, for the addresses of ps, an add (in case one is missing),
// a delete and an add with their timeouts, in messages of at most
// elementsPerMessage elements: packets see either the old element or the
// new one.
func repin(nc *nftables.Conn, ns *nftables.Set, ps []pinned) error {
	if len(ps) == 0 {
		return nil
	}
	timed := make([]nftables.SetElement, len(ps))
	keys := make([]nftables.SetElement, len(ps))
	for i, p := range ps {
		keys[i] = nftables.SetElement{Key: p.addr.AsSlice()}
		if p.port != 0 {
			keys[i].Key = serviceKey(p.proto, p.addr, p.port)
		}
		timed[i] = nftables.SetElement{Key: keys[i].Key, Timeout: p.timeout}
	}
	for _, step := range []struct {
		elems []nftables.SetElement
		queue func(*nftables.Set, []nftables.SetElement) error
	}{
		{timed, nc.SetAddElements},
		{keys, nc.SetDeleteElements},
		{timed, nc.SetAddElements},
	} {
		for _, chunk := range chunks(step.elems, elementsPerMessage) {
			if err := step.queue(ns, chunk); err != nil {
				return fmt.Errorf("set %s: %w", ns.Name, err)
			}
		}
	}
	return nil
}

// errFullReplace marks an update that is sent as flush and refill.
var errFullReplace = errors.New("full replace")

// deleteElements queues the deletion of the elements of ps.
func deleteElements(nc *nftables.Conn, ns *nftables.Set, ps []netip.Prefix) error {
	for _, chunk := range chunks(setElements(ps, ns.Interval), elementsPerMessage) {
		if err := nc.SetDeleteElements(ns, chunk); err != nil {
			return fmt.Errorf("nftrules: set %s: %w", ns.Name, err)
		}
	}
	return nil
}

// Applied returns the ruleset as last applied or updated through c, or
// nil.
func (c *Conn) Applied() *Ruleset {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applied
}

// addElements queues the elements of ps in messages of at most
// elementsPerMessage elements.
func addElements(nc *nftables.Conn, ns *nftables.Set, ps []netip.Prefix) error {
	for _, chunk := range chunks(setElements(ps, ns.Interval), elementsPerMessage) {
		if err := nc.SetAddElements(ns, chunk); err != nil {
			return fmt.Errorf("nftrules: set %s: %w", ns.Name, err)
		}
	}
	return nil
}

// chunks splits elems into runs of at most n elements (n+1 when that keeps
// an interval's start and end together).
func chunks(elems []nftables.SetElement, n int) [][]nftables.SetElement {
	var out [][]nftables.SetElement
	for len(elems) > 0 {
		k := min(len(elems), n)
		if k < len(elems) && elems[k].IntervalEnd {
			k++
		}
		out = append(out, elems[:k])
		elems = elems[k:]
	}
	return out
}

// setElements encodes prefixes as nftables elements: for an interval set,
// the first address of each prefix and, flagged as an interval end, the
// address after its last one (none when the prefix reaches the top of the
// address space).
func setElements(ps []netip.Prefix, interval bool) []nftables.SetElement {
	n := len(ps)
	if interval {
		n *= 2
	}
	out := make([]nftables.SetElement, 0, n)
	for _, p := range ps {
		out = append(out, nftables.SetElement{Key: p.Addr().AsSlice()})
		if !interval {
			continue
		}
		if end := lastAddr(p).Next(); end.IsValid() {
			out = append(out, nftables.SetElement{Key: end.AsSlice(), IntervalEnd: true})
		}
	}
	return out
}

// lastAddr returns the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	last := netip.AddrFrom16(a)
	if p.Addr().Is4() {
		return last.Unmap()
	}
	return last
}

// Key types of the service sets.
var (
	service4Type = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeIPAddr, nftables.TypeInetService)
	service6Type = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeIP6Addr, nftables.TypeInetService)
)

func nftSet(t *nftables.Table, s *set) *nftables.Set {
	ns := &nftables.Set{Table: t, Name: s.Name, KeyType: nftables.TypeIPAddr, Interval: s.Interval, HasTimeout: s.Timeout}
	switch s.Type {
	case ipv6Addr:
		ns.KeyType = nftables.TypeIP6Addr
	case ipv4Service:
		ns.KeyType, ns.Concatenation = service4Type, true
	case ipv6Service:
		ns.KeyType, ns.Concatenation = service6Type, true
	case inetService:
		ns.KeyType = nftables.TypeInetService
	}
	return ns
}

// serviceKey is the key of a service set's element: the protocol, the
// address and the port, each in a register of its own (4 bytes, or 16 for
// an IPv6 address), as the concatenated lookup loads them.
func serviceKey(proto Proto, a netip.Addr, port uint16) []byte {
	key := []byte{byte(proto), 0, 0, 0}
	key = append(key, a.AsSlice()...)
	return append(key, byte(port>>8), byte(port), 0, 0)
}

// serviceElements encodes services as the elements of an interval service
// set: each the first and, as its key end, the last of its range.
func serviceElements(svcs []Service) []nftables.SetElement {
	out := make([]nftables.SetElement, len(svcs))
	for i, sv := range svcs {
		out[i] = nftables.SetElement{
			Key:    serviceKey(sv.Proto, sv.Prefix.Masked().Addr(), sv.Ports.First),
			KeyEnd: serviceKey(sv.Proto, lastAddr(sv.Prefix), sv.Ports.Last),
		}
	}
	return out
}

// portElements encodes port ranges as the elements of an interval set of
// ports: the first port of each and, flagged as an interval end, the port
// after its last (none when it ends at 65535).
func portElements(ports []PortRange) []nftables.SetElement {
	var out []nftables.SetElement
	for _, pr := range ports {
		out = append(out, nftables.SetElement{Key: binary.BigEndian.AppendUint16(nil, pr.First)})
		if pr.Last < 65535 {
			out = append(out, nftables.SetElement{Key: binary.BigEndian.AppendUint16(nil, pr.Last+1), IntervalEnd: true})
		}
	}
	return out
}

// addServices queues the services of an interval service set.
func addServices(nc *nftables.Conn, ns *nftables.Set, svcs []Service) error {
	return addEncoded(nc, ns, serviceElements(svcs))
}

// addEncoded queues elements in messages of at most elementsPerMessage.
func addEncoded(nc *nftables.Conn, ns *nftables.Set, elems []nftables.SetElement) error {
	for _, chunk := range chunks(elems, elementsPerMessage) {
		if err := nc.SetAddElements(ns, chunk); err != nil {
			return fmt.Errorf("nftrules: set %s: %w", ns.Name, err)
		}
	}
	return nil
}

func nftChain(t *nftables.Table, c *chain) *nftables.Chain {
	if c.Type == chainRegular {
		return &nftables.Chain{Name: c.Name, Table: t}
	}
	typ := nftables.ChainTypeFilter
	if c.Type == chainNAT {
		typ = nftables.ChainTypeNAT
	}
	policy := nftables.ChainPolicyAccept
	if c.Policy.Kind == verdictDrop {
		policy = nftables.ChainPolicyDrop
	}
	hook := nftables.ChainHookOutput
	switch c.Hook {
	case hookInput:
		hook = nftables.ChainHookInput
	case hookEgress:
		hook = nftables.ChainHookEgress
	case hookPrerouting:
		hook = nftables.ChainHookPrerouting
	case hookForward:
		hook = nftables.ChainHookForward
	}
	return &nftables.Chain{
		Name:     c.Name,
		Table:    t,
		Type:     typ,
		Hooknum:  hook,
		Priority: nftables.ChainPriorityRef(nftables.ChainPriority(c.Priority)),
		Policy:   &policy,
		Device:   c.Device,
	}
}

// Kernel constants not in x/sys/unix.
const (
	nfprotoV4  = unix.NFPROTO_IPV4
	nfprotoV6  = unix.NFPROTO_IPV6
	protoICMP  = 58     // IPPROTO_ICMPV6
	ipsDstNAT  = 1 << 5 // IPS_DST_NAT in the conntrack status
	objCounter = 1      // NFT_OBJECT_COUNTER
)

// ruleExprs translates a rule into nftables expressions, as nft would for
// the rule's rendering (so that "nft list" prints that rendering back).
func ruleExprs(r rule, sets map[string]*nftables.Set) ([]expr.Any, error) {
	var out []expr.Any
	for _, m := range r.Match {
		e, err := matchExprs(m, sets)
		if err != nil {
			return nil, err
		}
		out = append(out, e...)
	}
	if r.Counter != "" {
		out = append(out, &expr.Objref{Type: objCounter, Name: r.Counter})
	}
	if r.Log != nil {
		out = append(out, &expr.Log{
			Key:   1<<unix.NFTA_LOG_PREFIX | 1<<unix.NFTA_LOG_GROUP,
			Group: r.Log.Group,
			Data:  []byte(r.Log.Prefix),
		})
	}
	if r.connMark != 0 {
		out = append(out,
			&expr.Immediate{Register: 1, Data: u32(r.connMark)},
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true})
	}
	switch r.Verdict.Kind {
	case verdictNone:
	case verdictAccept:
		out = append(out, &expr.Verdict{Kind: expr.VerdictAccept})
	case verdictDrop:
		out = append(out, &expr.Verdict{Kind: expr.VerdictDrop})
	case verdictReject:
		out = append(out, &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH})
	case verdictRejectTCPReset:
		out = append(out, &expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
	case verdictRedirect:
		out = append(out,
			&expr.Immediate{Register: 1, Data: binary.BigEndian.AppendUint16(nil, r.Verdict.Port)},
			&expr.Redir{RegisterProtoMin: 1},
		)
	case verdictJump:
		out = append(out, &expr.Verdict{Kind: expr.VerdictJump, Chain: r.Verdict.Chain})
	case verdictReturn:
		out = append(out, &expr.Verdict{Kind: expr.VerdictReturn})
	default:
		return nil, fmt.Errorf("unknown verdict %d", r.Verdict.Kind)
	}
	return out, nil
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func matchExprs(m match, sets map[string]*nftables.Set) ([]expr.Any, error) {
	switch m := m.(type) {
	case destInSet:
		s, ok := sets[m.Set]
		if !ok {
			return nil, fmt.Errorf("no set %s", m.Set)
		}
		proto, off, n := byte(nfprotoV4), uint32(16), uint32(4)
		if m.Family == ipv6Addr {
			proto, off, n = nfprotoV6, 24, 16
		}
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
			&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID},
		}, nil
	case serviceInSet:
		s, ok := sets[m.Set]
		if !ok {
			return nil, fmt.Errorf("no set %s", m.Set)
		}
		// The registers of a concatenation: the protocol in the first
		// 4-byte register (1, which is 8 to 11 counted in 4-byte ones),
		// the address in 9 (and 10 to 12 for IPv6), the port after it.
		proto, off, n, portReg := byte(nfprotoV4), uint32(16), uint32(4), uint32(10)
		if m.Family == ipv6Service {
			proto, off, n, portReg = nfprotoV6, 24, 16, 13
		}
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
			&expr.Payload{DestRegister: portReg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID},
		}, nil
	case dportInSet:
		s, ok := sets[m.Set]
		if !ok {
			return nil, fmt.Errorf("no set %s", m.Set)
		}
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(m.Proto)}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID},
		}, nil
	case ctState:
		return ctBits(expr.CtKeySTATE, uint32(m.State)), nil
	case destLocal:
		return []expr.Any{
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: u32(unix.RTN_LOCAL)},
		}, nil
	case markEq:
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: u32(m.Mark)},
		}, nil
	case markNe:
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: u32(m.Mark)},
		}, nil
	case socketCgroup:
		return []expr.Any{
			&expr.Socket{Key: expr.SocketKeyCgroupv2, Level: uint32(m.Level), Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint64(nil, m.ID)},
		}, nil
	case ctStatusDNAT:
		return ctBits(expr.CtKeySTATUS, ipsDstNAT), nil
	case destAddr:
		return addrExprs(m.Addr, 16, 24), nil
	case srcAddr:
		return addrExprs(m.Addr, 12, 8), nil
	case routed:
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyRTCLASSID, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: u32(0xffffffff)},
		}, nil
	case userSocket:
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeySKUID, Register: 1},
			&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
			&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: u32(0)},
		}, nil
	case protoARP:
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, unix.ETH_P_ARP)},
		}, nil
	case srcNotLocal:
		return []expr.Any{
			&expr.Fib{Register: 1, FlagSADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: u32(unix.RTN_LOCAL)},
		}, nil
	case iifLoopback:
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIF, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: u32(loopbackIndex)},
		}, nil
	case ctOriginal:
		return []expr.Any{
			&expr.Ct{Key: expr.CtKeyDIRECTION, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}}, // IP_CT_DIR_ORIGINAL
		}, nil
	case ctMarkEq:
		return []expr.Any{
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: u32(m.Mark)},
		}, nil
	case oifLoopback:
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyOIF, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: u32(loopbackIndex)},
		}, nil
	case iifNotLoopback:
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIF, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: u32(loopbackIndex)},
		}, nil
	case dport:
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(m.Proto)}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, m.Port)},
		}, nil
	case l4Proto:
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(m.Proto)}},
		}, nil
	case icmpv6Type:
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protoICMP}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{m.Type}},
		}, nil
	}
	return nil, fmt.Errorf("unknown match %T", m)
}

// addrExprs match the address a at offset off4 of an IPv4 header or off6
// of an IPv6 one.
func addrExprs(a netip.Addr, off4, off6 uint32) []expr.Any {
	proto, off := byte(nfprotoV4), off4
	if a.Is6() {
		proto, off = nfprotoV6, off6
	}
	b := a.AsSlice()
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(len(b))},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b},
	}
}

// ctBits matches a conntrack bitmask key having any of bits.
func ctBits(key expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: key, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: u32(bits), Xor: u32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: u32(0)},
	}
}
