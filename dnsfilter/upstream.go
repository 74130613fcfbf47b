package dnsfilter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// defaultTryTimeout is the default of [Upstream.Timeout].
const defaultTryTimeout = 2 * time.Second

// Upstream sends DNS queries to an ordered list of servers, moving on to
// the next when one fails. Its zero value has no servers and fails every
// query with [ErrNoUpstream]. Its fields must not change while it is in
// use; any number of goroutines may call its methods at once.
//
// A server fails a query when it cannot be reached, does not answer within
// Timeout, answers with something that is not a reply to the question, or
// answers SERVFAIL or REFUSED. Any other answer, NXDOMAIN included, is the
// answer: asking another server would only get a second opinion.
//
// Every query uses a fresh socket, so an answer cannot be confused with
// another query's, and each socket carries Mark.
type Upstream struct {
	// Servers are the upstream resolvers, tried in order.
	Servers []netip.AddrPort

	// Timeout bounds one try at one server: dialling, sending and
	// waiting for the answer (a TCP retry after a truncated UDP answer is
	// a second try). The context passed in bounds the whole exchange.
	// Zero means 2s.
	Timeout time.Duration

	// Mark is the firewall mark (SO_MARK) set on every socket, so that
	// the filter's own queries bypass its redirect of DNS traffic.
	// Setting it needs CAP_NET_ADMIN, and is only possible on Linux:
	// elsewhere a non-zero Mark fails every query with
	// [ErrMarkUnsupported]. Zero means no mark.
	Mark uint32
}

// Exchange sends m to the servers in turn, over UDP, and returns the first
// usable answer. A truncated UDP answer is asked again over TCP of the same
// server, so the answer is complete. m is not modified; the answer has m's
// ID.
//
// When no server gives a usable answer, the error wraps [ErrUpstream] and
// each server's error; it wraps ctx's error too when ctx ended first.
func (u *Upstream) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	return u.exchange(ctx, m, "udp", true)
}

// ExchangeNet is [Upstream.Exchange] over the network given, "udp" or
// "tcp", with no fallback from one to the other: a truncated UDP answer is
// returned as it is, with its TC bit, for a client that will retry over
// TCP itself.
func (u *Upstream) ExchangeNet(ctx context.Context, m *dns.Msg, network string) (*dns.Msg, error) {
	if network != "udp" && network != "tcp" {
		return nil, fmt.Errorf("dnsfilter: unknown network %q", network)
	}
	return u.exchange(ctx, m, network, false)
}

func (u *Upstream) exchange(ctx context.Context, m *dns.Msg, network string, tcpFallback bool) (*dns.Msg, error) {
	if len(u.Servers) == 0 {
		return nil, ErrNoUpstream
	}
	if err := checkMark(u.Mark); err != nil {
		return nil, err
	}
	var errs []error
	for _, server := range u.Servers {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		r, err := u.try(ctx, m, server, network)
		if err == nil && r.Truncated && tcpFallback && network == "udp" {
			r, err = u.try(ctx, m, server, "tcp")
		}
		if err == nil && (r.Rcode == dns.RcodeServerFailure || r.Rcode == dns.RcodeRefused) {
			err = errors.New(dns.RcodeToString[r.Rcode])
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", network, server, err))
			continue
		}
		return r, nil
	}
	return nil, fmt.Errorf("%w: %w", ErrUpstream, errors.Join(errs...))
}

// try asks one server once.
func (u *Upstream) try(ctx context.Context, m *dns.Msg, server netip.AddrPort, network string) (*dns.Msg, error) {
	timeout := u.Timeout
	if timeout <= 0 {
		timeout = defaultTryTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := dns.Client{
		Net:     network,
		Timeout: timeout,
		Dialer:  u.dialer(timeout),
		// Read whatever fits a datagram: a server may answer larger than
		// the query's EDNS0 size (or 512 bytes without EDNS0), and the
		// Handler truncates for its own client anyway.
		UDPSize: dns.MaxMsgSize,
	}
	r, _, err := c.ExchangeContext(ctx, m, server.String())
	if err != nil {
		return nil, err
	}
	if !r.Response || !sameQuestions(m.Question, r.Question) {
		return nil, errors.New("answer does not match the question")
	}
	return r, nil
}

// dialer returns the dialer for one try.
func (u *Upstream) dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, Control: markControl(u.Mark)}
}

// sameQuestions reports whether an answer's question section repeats the
// query's, ignoring case (a server may echo 0x20 randomisation).
func sameQuestions(q, a []dns.Question) bool {
	if len(q) != len(a) {
		return false
	}
	for i := range q {
		if q[i].Qtype != a[i].Qtype || q[i].Qclass != a[i].Qclass || !strings.EqualFold(q[i].Name, a[i].Name) {
			return false
		}
	}
	return true
}
