package dnsfilter

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/internal/ratelimit"
)

// Limits bound what a workload can carry through an allowed name: an
// allowed wildcard ("*.example.com") answers for any name below it, and a
// resolver that will forward "<data>.example.com" and relay a TXT answer is
// a way to move data in and out. Each refusal is an [events.Blocked] event
// with its reason: [events.ReasonTooLong], [events.ReasonQueryType] or
// [events.ReasonRateLimited]. In audit mode (see [Auditor]) the first two
// are reported as [events.WouldBlock] and the question answered; the
// rate is enforced in both modes. The zero value bounds nothing;
// [DefaultLimits] are the filter's defaults.
type Limits struct {
	// WildcardLabels and WildcardBytes bound the part of a name that a
	// wildcard rule stands for ("a.b" of "a.b.example.com" under
	// "*.example.com"), in labels and in bytes: a question for a deeper or
	// longer name is refused (NXDOMAIN, reason too long). Names that exact
	// rules allow are never refused. Zero means no bound.
	WildcardLabels, WildcardBytes int
	// TXTBytes bounds the text that an answer may carry in TXT records: a
	// bigger answer is not relayed (REFUSED, reason too long). Zero means
	// no bound.
	TXTBytes int
	// RefuseNULL refuses questions of type NULL, which nothing but tunnels
	// asks for (REFUSED, reason query type).
	RefuseNULL bool
	// Rate and Burst bound the questions for allowed names (and local
	// names) that one client, by its address, may ask a second, answered
	// from upstream or from the Cache alike: the rest are refused (REFUSED,
	// reason rate limited) until its bucket fills again. Questions refused
	// by the policy are answered here and not counted; in audit mode those
	// answered all the same are counted like the others. Zero Rate means
	// no bound; zero Burst means twice Rate.
	Rate  float64
	Burst int
}

// DefaultLimits are bounds that the names of real services stay within
// (the deepest common ones, cloud storage and load balancers, have four
// labels and about 60 bytes below a provider's wildcard; big TXT answers,
// SPF and DKIM, stay under 2 KiB) and that hold a tunnel to about 100
// questions a second.
var DefaultLimits = Limits{
	WildcardLabels: 6,
	WildcardBytes:  120,
	TXTBytes:       4096,
	RefuseNULL:     true,
	Rate:           100,
}

// limiter is a Limits' rate limiter, made at first use.
type limiter struct {
	once sync.Once
	l    *ratelimit.Limiter[netip.Addr]
}

func (h *Handler) rateLimiter() *ratelimit.Limiter[netip.Addr] {
	h.limiter.once.Do(func() {
		if h.Limits.Rate > 0 {
			burst := h.Limits.Burst
			if burst <= 0 {
				burst = max(1, int(2*h.Limits.Rate))
			}
			h.limiter.l = ratelimit.New[netip.Addr](h.Limits.Rate, burst)
		}
	})
	return h.limiter.l
}

// checkQuestion applies the Limits on a name and a type to an allowed
// question for name (as normalize returns it) of type qtype, allowed by
// rule, and returns the refusal unless ok.
func (h *Handler) checkQuestion(name, rule string, qtype uint16) (no refusal, ok bool) {
	lim := h.Limits
	if lim.RefuseNULL && qtype == dns.TypeNULL {
		return refusal{dns.RcodeRefused, events.ReasonQueryType, rule, "NULL questions are refused"}, false
	}
	if base, wild := strings.CutPrefix(rulePattern(rule), "*."); wild {
		below := strings.TrimSuffix(strings.TrimSuffix(name, base), ".")
		labels := strings.Count(below, ".") + 1
		switch {
		case lim.WildcardLabels > 0 && labels > lim.WildcardLabels:
			return refusal{dns.RcodeNameError, events.ReasonTooLong, rule,
				fmt.Sprintf("%d labels under %s, more than %d", labels, rule, lim.WildcardLabels)}, false
		case lim.WildcardBytes > 0 && len(below) > lim.WildcardBytes:
			return refusal{dns.RcodeNameError, events.ReasonTooLong, rule,
				fmt.Sprintf("%d bytes under %s, more than %d", len(below), rule, lim.WildcardBytes)}, false
		}
	}
	return refusal{}, true
}

// checkRate applies the Limits' rate to a question from client, for a
// name allowed by rule, asked at now, which counts against the client's
// bucket, and returns the refusal unless ok.
func (h *Handler) checkRate(client netip.Addr, rule string, now time.Time) (no refusal, ok bool) {
	if l := h.rateLimiter(); l != nil {
		if wait, allowed := l.Allow(client, now); !allowed {
			return refusal{rcode: dns.RcodeRefused, reason: events.ReasonRateLimited, rule: rule,
				detail: fmt.Sprintf("more than %g questions a second; the next in %v", h.Limits.Rate, wait.Round(time.Millisecond))}, false
		}
	}
	return refusal{}, true
}

// checkAnswer applies the Limits to an answer whose TXT records hold txt
// bytes of text, for a name allowed by rule, and returns the refusal
// unless ok.
func (h *Handler) checkAnswer(rule string, txt int) (no refusal, ok bool) {
	if h.Limits.TXTBytes > 0 && txt > h.Limits.TXTBytes {
		return refusal{dns.RcodeRefused, events.ReasonTooLong, rule,
			fmt.Sprintf("TXT answer of %d bytes, more than %d", txt, h.Limits.TXTBytes)}, false
	}
	return refusal{}, true
}

// txtBytes returns the bytes of text in the TXT records of m's answer
// section.
func txtBytes(m *dns.Msg) int {
	n := 0
	for _, rr := range m.Answer {
		if txt, isTXT := rr.(*dns.TXT); isTXT {
			for _, s := range txt.Txt {
				n += len(s)
			}
		}
	}
	return n
}

// rulePattern returns the name pattern of a rule, without the protocol
// and ports of an entry that has them ("udp/*.example.com:5060" is
// "*.example.com"): a wildcard limited to a port tunnels as well as any.
func rulePattern(rule string) string {
	if len(rule) > 4 && rule[3] == '/' {
		rule = rule[4:]
	}
	if i := strings.LastIndexByte(rule, ':'); i >= 0 {
		rule = rule[:i]
	}
	return rule
}
