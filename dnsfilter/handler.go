package dnsfilter

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/g0lab/g0efilter/events"
	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
)

// DefaultQueryTimeout is the default of [Handler.Timeout].
const DefaultQueryTimeout = 4 * time.Second

// blockedText is the EDE text of a refused query.
const blockedText = "blocked by g0efilter: "

// Policy decides which names may be resolved: MatchHost reports whether
// name is allowed and by which rule. [policy.Holder] (the live policy) and
// [policy.Snapshot] satisfy it.
//
// [policy.Holder]: https://pkg.go.dev/github.com/g0lab/g0efilter/policy#Holder
// [policy.Snapshot]: https://pkg.go.dev/github.com/g0lab/g0efilter/policy#Snapshot
type Policy interface {
	MatchHost(name string) (rule string, ok bool)
}

// Denier is a denylist that wins over the allowlist. When the [Policy] is
// also a Denier, as policy.Holder is, a denied name is answered NXDOMAIN
// with reason [events.ReasonDenied] whatever allows it (in audit mode,
// only reported so: see [Auditor]), and denied addresses in an answer are
// not passed to [Handler.OnAnswer] (the kernel refuses connections to
// them anyway).
type Denier interface {
	DenyHost(name string) (rule string, denied bool)
	DenyAddr(a netip.Addr) (rule netip.Prefix, denied bool)
}

// Auditor is a policy that may be only audited. When the [Policy] is also
// an Auditor, as policy.Holder and policy.Names are, and Audit reports
// true, a question that enforce mode would refuse for the policy's sake
// (not allowlisted, denied, or over the [Limits] on a name, its type or
// its answer's TXT records) is answered as an allowed one is: forwarded
// or answered from the Cache, its addresses passed to [Handler.OnAnswer]
// with [Answer.Audited] set. Its event says [events.WouldBlock] with the
// reason, rule and detail that enforce mode gives. A question over the
// rate limit, which protects the filter itself, and a malformed one,
// which has nothing to forward, are refused in both modes. Audit is asked
// once per question.
type Auditor interface {
	Audit() bool
}

// Handler is a [dns.Handler] that answers only for allowed names: it
// forwards a query whose name the Policy allows (or, with LocalNames, a
// single-label name) to the Upstream and relays the answer, and answers
// NXDOMAIN to every other query without sending it anywhere. The name
// alone decides, whatever the query type.
//
// Its zero value allows nothing. Its fields must not change while it
// serves; any number of queries may be served at once.
//
// # Answers
//
// An allowed query is forwarded with a fresh ID, its header flags and its
// EDNS0 record as the client sent them (other records it carries are
// dropped), over the transport the client used. The answer goes back
// unchanged but for the ID, restored: over UDP a truncated answer keeps its
// TC bit, so the client asks again over TCP and gets all of it. An answer
// bigger than the client can take over UDP is truncated to fit.
//
// A refused query gets NXDOMAIN. When the client sent EDNS0, the answer
// carries an Extended DNS Error 15 ("Blocked", RFC 8914) whose text gives
// the reason; without it an answer may not carry an OPT record (RFC 6891).
//
// A query with no question or several, or an opcode other than QUERY, gets
// FORMERR or NOTIMP. When no upstream answers within Timeout, the client
// gets SERVFAIL (with Extended DNS Error 22, "No Reachable Authority", when
// it sent EDNS0).
//
// # Events
//
// Every query yields exactly one [events.Event] on Events, sent before the
// answer: [events.Allowed] with [events.ReasonAllowlisted] and the rule
// when the answer was relayed (whatever its rcode), or with
// [events.ReasonLocalName] and no rule when it was a local name's,
// [events.Blocked] with [events.ReasonNotAllowlisted] or
// [events.ReasonDenied] when refused, the reason of a [Limits] refusal, or
// [events.ReasonMalformed] when malformed, and [events.Error] with
// [events.ReasonDial] when no upstream answered. When the Policy is an
// [Auditor] in audit mode, a question refused for the policy's sake is
// answered all the same and its one event is [events.WouldBlock], with
// the reason and rule of the refusal; see Auditor.
type Handler struct {
	// Policy decides which names are allowed; pass the filter's live
	// *policy.Holder so that a reload applies to the next query. Nil
	// allows nothing.
	Policy Policy

	// Upstream answers allowed queries. Nil fails every allowed query
	// with SERVFAIL.
	Upstream *Upstream

	// LocalUpstream, if set, answers the local names of LocalNames
	// instead of Upstream: Docker's embedded resolver, which knows the
	// Compose service names, when Upstream is the resolvers behind it.
	// Nil means Upstream.
	LocalUpstream *Upstream

	// LocalNames forwards a question for a single-label name ("db.", one
	// label without escapes) that the Policy does not allow, so that the
	// local resolver (Docker's 127.0.0.11) answers Compose service and
	// container names. Its answer is relayed with reason
	// [events.ReasonLocalName] and is not passed to OnAnswer: the name
	// resolves, but reaching its addresses still needs the allowlist. A
	// single label the local resolver cannot answer goes, if anywhere, to
	// the root servers, which no workload controls; a name of two labels
	// or more could reach a resolver an attacker runs, so those stay
	// refused. False (the zero value) refuses single labels too.
	LocalNames bool

	// Timeout bounds the time spent upstream on one query, over all
	// servers; when it passes the client gets SERVFAIL. Zero means 4s,
	// less than the 5s a stub resolver waits before it asks again.
	Timeout time.Duration

	// Limits bound what a workload can carry through an allowed name (see
	// [Limits]). The zero value bounds nothing.
	Limits Limits

	// Events receives one event per query. Nil discards them.
	Events events.Sink

	// OnAnswer, if set, is called with the addresses of every answer
	// for a name the Policy allows that has any (not a local name's:
	// see LocalNames), and in audit mode of every answer given to a
	// question that enforce mode would refuse ([Answer.Audited] set), so
	// that the filter can let connections to them through for their
	// TTL. It is called synchronously, before the
	// answer is written, so that an address is in place before the
	// client can connect to it: the client waits for it, and it must
	// return quickly (a netlink batch, not a network round trip). It may
	// be called from several goroutines at once and must not keep the
	// Answer's slice after it returns.
	OnAnswer func(Answer)

	// Logger receives debug records about answers that could not be
	// written. Nil discards them.
	Logger *slog.Logger

	// Cache, if set, keeps the answers for allowed names (not those of
	// LocalNames), and those given in audit mode, to give them again
	// until their TTL runs out, and makes identical questions asked at
	// once share one exchange upstream. Answers from it are passed to
	// OnAnswer like the others, with the TTLs left. The policy is asked
	// first, every time: see [Cache]. Nil asks upstream every time.
	Cache *Cache

	limiter limiter            // Limits.Rate's buckets
	flight  singleflight.Group // the Cache's exchanges in flight
}

var _ dns.Handler = (*Handler)(nil)

// ServeDNS answers one query; see [Handler].
func (h *Handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	var q query
	h.start(&q, w, r)
	if q.up != nil {
		h.forward(&q)
	}
	h.finish(&q)
}

// serveNow answers r over w when that needs no waiting on the network (a
// refusal, a malformed query, an answer from the Cache) and returns nil;
// otherwise it returns the rest of the work, which asks upstream, for the
// caller to run on a goroutine of its own. The Server calls it, so that
// what can be answered at once is answered without a goroutine.
func (h *Handler) serveNow(w dns.ResponseWriter, r *dns.Msg) (rest func()) {
	var q query
	h.start(&q, w, r)
	if q.up == nil {
		h.finish(&q)
		return nil
	}
	p := new(query)
	*p = q
	return func() {
		h.forward(p)
		h.finish(p)
	}
}

// query is one query on its way through the Handler: its event, and its
// answer once there is one, or what it needs to ask upstream.
type query struct {
	w     dns.ResponseWriter
	r     *dns.Msg
	proto string
	ev    events.Event

	resp *dns.Msg // the answer
	wire []byte   // resp as it came from upstream, with r's ID; nil: pack resp
	made bool     // resp made here by reply: small enough for any client

	// audit is whether the Policy is only audited (see Auditor), asked
	// at the first refusal the policy may waive and kept for the rest of
	// the question; asked reports that it was.
	audit, asked bool

	// Set by start when the answer must come from upstream.
	up    *Upstream
	local bool   // a local name's (see LocalNames)
	rule  string // the rule that allows the name; "" for none
	deny  Denier
	key   cacheKey // in the Cache; zero without one
}

// reply makes q's answer with rcode and ede (see reply).
func (q *query) reply(rcode int, ede *dns.EDNS0_EDE) {
	q.resp, q.wire, q.made = reply(q.r, rcode, ede), nil, true
}

// finish sends q's event and writes its answer.
func (h *Handler) finish(q *query) {
	h.emit(q.ev)
	r, resp, wire := q.r, q.resp, q.wire
	var err error
	switch {
	case wire != nil && (q.proto == "tcp" || len(wire) <= udpSize(r)):
		// The upstream's answer goes back as it came: no need to pack
		// it again.
		_, err = q.w.Write(wire)
	case q.proto == "udp":
		if !q.made {
			resp.Truncate(udpSize(r))
		}
		err = q.w.WriteMsg(resp)
	default:
		resp.Compress = true
		err = q.w.WriteMsg(resp)
	}
	if err != nil {
		h.logger().Debug("dnsfilter: write answer", "client", q.ev.Source, "name", q.ev.Name, "error", err)
	}
}

// start decides q's query r and, when it can without waiting, answers it:
// it fills in q's event and its answer, or, when the answer must come from
// upstream, q.up and what forward needs.
func (h *Handler) start(q *query, w dns.ResponseWriter, r *dns.Msg) {
	proto, src := transport(w)
	q.w, q.r, q.proto = w, r, proto
	ev := &q.ev
	*ev = events.Event{
		Time:      time.Now(),
		Component: events.DNS,
		Protocol:  proto,
		Source:    src,
		Flow:      events.NewFlowID(),
	}
	if r.Opcode != dns.OpcodeQuery {
		h.refuse(q, refusal{rcode: dns.RcodeNotImplemented, reason: events.ReasonMalformed, detail: "opcode " + opcodeString(r.Opcode)})
		return
	}
	if len(r.Question) != 1 {
		h.refuse(q, refusal{rcode: dns.RcodeFormatError, reason: events.ReasonMalformed, detail: strconv.Itoa(len(r.Question)) + " questions"})
		q.resp.Question = nil
		return
	}
	question := r.Question[0]
	ev.Name = normalize(question.Name)
	ev.QType = typeString(question.Qtype)

	deny, _ := h.Policy.(Denier)
	rule, local, no, ok := h.decide(ev.Name, question.Qtype, deny)
	ev.Rule = rule
	if !ok && h.refuse(q, no) {
		return
	}
	// Every question answered from upstream or the Cache counts against
	// the client's rate, waived ones included: they cost as much.
	if no, ok := h.checkRate(src.Addr(), rule, ev.Time); !ok && h.refuse(q, no) {
		return
	}

	up := h.Upstream
	if local && h.LocalUpstream != nil {
		up = h.LocalUpstream
	}
	if up == nil {
		h.failed(q, ErrNoUpstream)
		return
	}
	q.local, q.rule, q.deny = local, rule, deny
	if h.Cache != nil && !local {
		q.key = keyOf(r, proto)
		if c, ok := h.Cache.get(q.key, r, ev.Time); ok {
			h.relayCached(q, c)
			return
		}
	}
	q.up = up
}

// decide takes the decision on a question for name (as normalize returns
// it) of type qtype as enforce mode takes it: it returns the rule that
// allows name ("" for none), whether name is a local name (see
// LocalNames), and the refusal unless ok. The denylist wins over the
// rest.
func (h *Handler) decide(name string, qtype uint16, deny Denier) (rule string, local bool, no refusal, ok bool) {
	if deny != nil {
		if entry, denied := deny.DenyHost(name); denied {
			// No rule allows a denied name: if audit mode answers it, a
			// single label goes where a local name goes.
			return "", h.LocalNames && singleLabel(name), refusal{rcode: dns.RcodeNameError, reason: events.ReasonDenied, rule: entry}, false
		}
	}
	allowed := false
	if h.Policy != nil {
		rule, allowed = h.Policy.MatchHost(name)
	}
	local = !allowed && h.LocalNames && singleLabel(name)
	if !allowed && !local {
		return "", false, refusal{rcode: dns.RcodeNameError, reason: events.ReasonNotAllowlisted}, false
	}
	no, ok = h.checkQuestion(name, rule, qtype)
	return rule, local, no, ok
}

// A refusal is a decision to refuse a question or its answer: the rcode
// of the answer made here, and the reason, rule and detail of the event.
type refusal struct {
	rcode        int
	reason       events.Reason
	rule, detail string
}

// audits reports whether the Policy is only audited, asking it once per
// question.
func (h *Handler) audits(q *query) bool {
	if !q.asked {
		a, ok := h.Policy.(Auditor)
		q.audit, q.asked = ok && a.Audit(), true
	}
	return q.audit
}

// refuse carries out no, a decision to refuse q. It answers q with no's
// rcode and a Blocked event and reports true; or, in audit mode when no
// is the policy's to waive (see waived), it makes q's event WouldBlock and
// reports false: q goes on as an allowed question does.
func (h *Handler) refuse(q *query, no refusal) bool {
	ev := &q.ev
	ev.Reason, ev.Rule, ev.Detail = no.reason, no.rule, no.detail
	if waived(no.reason) && h.audits(q) {
		ev.Action = events.WouldBlock
		return false
	}
	ev.Action = events.Blocked
	q.reply(no.rcode, refusalEDEs[no.reason])
	return true
}

// waived reports whether a refusal for reason is waived in audit mode:
// those that the policy decides (the allowlist and the denylist) and the
// bounds on what an allowed name may carry, which a policy being learnt
// needs to see past. A rate limit protects the filter and its upstreams,
// and a malformed question has nothing sensible to forward: those are
// refused in both modes, as is anything else (an unknown reason fails
// closed).
func waived(reason events.Reason) bool {
	switch reason {
	case events.ReasonNotAllowlisted, events.ReasonDenied, events.ReasonTooLong, events.ReasonQueryType:
		return true
	}
	return false
}

// forward asks q.up for q's question, through the Cache when there is
// one: identical questions asked at once share one exchange.
func (h *Handler) forward(q *query) {
	r := q.r
	// Only the question and the EDNS0 record go upstream: records a
	// client put in the other sections are not its to forward. The
	// Upstream sends it with an ID of its own and gives the answer r's.
	fwd := &dns.Msg{MsgHdr: r.MsgHdr, Question: r.Question}
	if opt := r.IsEdns0(); opt != nil {
		fwd.Extra = []dns.RR{opt}
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultQueryTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var err error
	if h.Cache == nil || q.local {
		q.resp, q.wire, err = q.up.exchange(ctx, fwd, q.proto, false)
	} else {
		k := q.key
		var v any
		v, err, _ = h.flight.Do(k.String(), func() (any, error) {
			resp, _, err := q.up.exchange(ctx, fwd, q.proto, false)
			if err == nil {
				h.Cache.put(k, resp, time.Now())
			}
			return resp, err
		})
		if err == nil {
			m := v.(*dns.Msg).Copy() // shared with the other askers
			m.Id = r.Id
			m.Question = r.Question
			q.resp = m
		}
	}
	if err != nil {
		h.failed(q, err)
		return
	}
	h.relay(q)
}

// failed answers q with SERVFAIL: no upstream answered.
func (h *Handler) failed(q *query, err error) {
	q.ev.Action, q.ev.Reason, q.ev.Detail = events.Error, events.ReasonDial, err.Error()
	q.reply(dns.RcodeServerFailure, unreachableEDE)
}

// relay checks q's answer from upstream against the Limits, passes its
// addresses to OnAnswer and describes it in q's event.
func (h *Handler) relay(q *query) {
	addrs := AnswerAddrs(q.r.Question[0].Name, q.resp.Answer)
	if h.pass(q, txtBytes(q.resp), addrs) {
		q.describe(detail(q.resp, addrs))
	}
}

// describe sets the detail of q's event to d, what its answer holds. An
// answer given only because the policy is audited keeps the refusal's
// detail first: both say something.
func (q *query) describe(d string) {
	if q.ev.Action == events.WouldBlock && q.ev.Detail != "" && d != "" {
		q.ev.Detail += "; answered " + d
		return
	}
	if q.ev.Action != events.WouldBlock || q.ev.Detail == "" {
		q.ev.Detail = d
	}
}

// relayCached is relay for an answer from the Cache, which it keeps
// packed, with its addresses and detail.
func (h *Handler) relayCached(q *query, c cached) {
	q.wire = c.wire
	if q.proto == "udp" && len(c.wire) > udpSize(q.r) {
		// Bigger than this client takes: finish truncates it.
		m := new(dns.Msg)
		if err := m.Unpack(c.wire); err != nil {
			h.failed(q, err) // not seen: the Cache packed it
			return
		}
		q.resp, q.wire = m, nil
	}
	if h.pass(q, c.txtBytes, c.addrs) {
		q.describe(c.detail)
	}
}

// pass checks an answer whose TXT records hold txt bytes against the
// Limits, refusing it when it is over them, and passes addrs, its
// addresses, to OnAnswer. A question waived already (in audit mode) keeps
// its one reason. It reports whether the answer is relayed, as an allowed
// one or in audit mode, for the event to describe it.
func (h *Handler) pass(q *query, txt int, addrs []AddrTTL) bool {
	ev := &q.ev
	if ev.Action != events.WouldBlock {
		if no, ok := h.checkAnswer(q.rule, txt); !ok {
			if h.refuse(q, no) {
				return false
			}
		} else {
			ev.Action, ev.Reason = events.Allowed, events.ReasonAllowlisted
			if q.local {
				ev.Reason = events.ReasonLocalName
			}
		}
	}
	allowed := ev.Action == events.Allowed
	relayed := allowed || ev.Action == events.WouldBlock
	if q.local {
		return relayed // resolution only: nothing pinned
	}
	if pins := notDenied(q.deny, addrs); len(pins) > 0 && h.OnAnswer != nil {
		question := q.r.Question[0]
		h.OnAnswer(Answer{Name: ev.Name, QType: question.Qtype, Rule: q.rule, Addrs: pins, Audited: !allowed})
	}
	return relayed
}

// notDenied returns the addresses the denylist does not hold.
func notDenied(deny Denier, addrs []AddrTTL) []AddrTTL {
	if deny == nil {
		return addrs
	}
	out := addrs[:0:0]
	for _, a := range addrs {
		if _, denied := deny.DenyAddr(a.Addr); !denied {
			out = append(out, a)
		}
	}
	return out
}

// singleLabel reports whether name, as [normalize] returns it, is one
// label: not the root, no dot inside and no escape, since "a\.b" is one
// label on the wire that a careless resolver may take for two.
func singleLabel(name string) bool {
	return name != "" && !strings.ContainsAny(name, `.\`)
}

func (h *Handler) emit(ev events.Event) {
	if h.Events != nil {
		h.Events.Emit(ev)
	}
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return discard
}

var discard = slog.New(slog.DiscardHandler)

// The Extended DNS Errors of the answers made here. They are shared by
// every answer, and never modified.
var (
	// refusalEDEs are those of the refusals, by reason; a malformed
	// question's answer carries none.
	refusalEDEs = map[events.Reason]*dns.EDNS0_EDE{
		events.ReasonNotAllowlisted: {InfoCode: dns.ExtendedErrorCodeBlocked, ExtraText: blockedText + string(events.ReasonNotAllowlisted)},
		events.ReasonDenied:         {InfoCode: dns.ExtendedErrorCodeBlocked, ExtraText: blockedText + string(events.ReasonDenied)},
		events.ReasonTooLong:        {InfoCode: dns.ExtendedErrorCodeBlocked, ExtraText: blockedText + string(events.ReasonTooLong)},
		events.ReasonQueryType:      {InfoCode: dns.ExtendedErrorCodeBlocked, ExtraText: blockedText + string(events.ReasonQueryType)},
		events.ReasonRateLimited:    {InfoCode: dns.ExtendedErrorCodeProhibited, ExtraText: blockedText + string(events.ReasonRateLimited)},
	}
	unreachableEDE = &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeNoReachableAuthority, ExtraText: "g0efilter: no upstream answered"}
)

// reply returns an answer to r, as [dns.Msg.SetRcode] makes it, with
// recursion available. It holds a header, at most one question and an
// OPT record with an Extended DNS Error of a few dozen bytes: under 350
// bytes, less than any client takes over UDP (512). When r has EDNS0 the answer has an OPT record too,
// carrying ede if not nil; without it, an answer may not carry an OPT
// record (RFC 6891), so no Extended DNS Error.
func reply(r *dns.Msg, rcode int, ede *dns.EDNS0_EDE) *dns.Msg {
	m := &dns.Msg{
		MsgHdr: dns.MsgHdr{
			Id:                 r.Id,
			Response:           true,
			Opcode:             r.Opcode,
			RecursionAvailable: true,
			Rcode:              rcode,
		},
		// The first question, shared with r: neither is modified.
		Question: r.Question[:min(len(r.Question), 1):min(len(r.Question), 1)],
	}
	if r.Opcode == dns.OpcodeQuery {
		m.RecursionDesired, m.CheckingDisabled = r.RecursionDesired, r.CheckingDisabled
	}
	if opt := r.IsEdns0(); opt != nil {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(dns.DefaultMsgSize)
		o.SetDo(opt.Do())
		if ede != nil {
			o.Option = []dns.EDNS0{ede}
		}
		m.Extra = []dns.RR{o}
	}
	return m
}

// udpSize is the largest answer the client of r takes over UDP.
func udpSize(r *dns.Msg) int {
	if opt := r.IsEdns0(); opt != nil {
		return max(int(opt.UDPSize()), dns.MinMsgSize)
	}
	return dns.MinMsgSize
}

// detail describes an allowed answer for its event: the rcode when it is
// not NOERROR, whether it was truncated, and the addresses it gave.
func detail(resp *dns.Msg, addrs []AddrTTL) string {
	var b strings.Builder
	if resp.Rcode != dns.RcodeSuccess {
		b.WriteString(rcodeString(resp.Rcode))
	}
	if resp.Truncated {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("truncated")
	}
	for _, a := range addrs {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a.Addr.String())
	}
	return b.String()
}

// transport returns "udp" or "tcp" and the client's address.
func transport(w dns.ResponseWriter) (string, netip.AddrPort) {
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		ap := a.AddrPort()
		return "udp", netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case *net.TCPAddr:
		ap := a.AddrPort()
		return "tcp", netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case nil:
		return "udp", netip.AddrPort{}
	default:
		if a.Network() == "tcp" {
			return "tcp", netip.AddrPort{}
		}
		return "udp", netip.AddrPort{}
	}
}

func typeString(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

func rcodeString(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(rc)
}

func opcodeString(op int) string {
	if s, ok := dns.OpcodeToString[op]; ok {
		return s
	}
	return strconv.Itoa(op)
}
