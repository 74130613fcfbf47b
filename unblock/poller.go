package unblock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/g0lab/g0efilter/dashboardapi"
	"github.com/g0lab/g0efilter/policy"
)

// Defaults of a [Poller].
const (
	DefaultInterval   = 10 * time.Second
	DefaultMaxBackoff = 5 * time.Minute
	// rememberResults bounds the results kept to answer a request seen
	// again (its acknowledgement was lost) without applying it twice.
	rememberResults = 4096
)

// Source is where unblock requests come from and their results go.
// [dashboardapi.Client] is one.
type Source interface {
	PendingUnblocks(ctx context.Context, hostname string) ([]dashboardapi.UnblockRequest, error)
	AckUnblocks(ctx context.Context, acks []dashboardapi.UnblockAck) error
}

// Adder adds an entry to the policy file, keeping its comments and layout,
// and reports whether the file changed. [policy.Editor] is one.
type Adder interface {
	AddDomain(domain string) (added bool, err error)
	AddIP(entry string) (added bool, err error)
}

var _ Adder = (*policy.Editor)(nil)

// Poller asks Source for this filter's pending unblock requests every
// Interval, adds each to the policy file through Policy, and acknowledges
// the result. The policy file's watcher then applies the edit, as it does
// any other.
//
// A request seen again, because its acknowledgement was lost, is not
// applied twice: the Poller remembers recent results and sends them again,
// and an entry that is already in the file counts as applied.
type Poller struct {
	// Source gives the requests and takes the results. Required.
	Source Source

	// Hostname is this filter's name, the one the dashboard files the
	// requests under (HOSTNAME).
	Hostname string

	// Policy edits the policy file. Nil means there is no file to edit
	// (the policy comes from the environment): every request then fails
	// with NoPolicyReason.
	Policy Adder

	// NoPolicyReason is the failure reported for every request when Policy
	// is nil. Empty means "this filter has no policy file to edit".
	NoPolicyReason string

	// MinIPv4Bits and MinIPv6Bits are the shortest prefixes a request may
	// unblock, checked here again whatever the dashboard let through: a
	// filter does not trust its dashboard blindly. Zero means
	// dashboardapi's defaults (/8 and /32). "*" and wildcards over a public
	// suffix are always refused.
	MinIPv4Bits, MinIPv6Bits int

	// Interval is the time between two polls. Zero means 10s.
	Interval time.Duration

	// MaxBackoff bounds the wait between polls while the dashboard cannot
	// be reached; the wait doubles from Interval up to it. Zero means 5m.
	MaxBackoff time.Duration

	// Logger receives what was applied and the dashboard's troubles
	// (logged when they start and when they end, not at every poll). Nil
	// discards them.
	Logger *slog.Logger

	results map[string]dashboardapi.UnblockAck
	order   []string
}

// Run polls until ctx ends, then returns nil. The first poll is at once.
func (p *Poller) Run(ctx context.Context) error {
	if p.Source == nil {
		return errors.New("unblock: no source")
	}
	log := p.logger()
	interval := orDefault(p.Interval, DefaultInterval)
	wait := time.Duration(0)
	failing := false
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		err := p.Poll(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			if !failing {
				log.Warn("unblock: cannot reach the dashboard; retrying with back-off", "err", err)
			}
			failing = true
			wait = min(max(2*wait, interval), orDefault(p.MaxBackoff, DefaultMaxBackoff))
			wait += rand.N(wait / 10) // so that many filters do not poll in step
		default:
			if failing {
				log.Info("unblock: the dashboard answers again")
			}
			failing = false
			wait = interval
		}
	}
}

// Poll asks once for the pending requests, applies them and acknowledges
// the results. It returns the first error talking to Source; a request
// that cannot be applied is acknowledged as failed, not returned.
func (p *Poller) Poll(ctx context.Context) error {
	reqs, err := p.Source.PendingUnblocks(ctx, p.Hostname)
	if err != nil {
		return fmt.Errorf("unblock: poll: %w", err)
	}
	if len(reqs) == 0 {
		return nil
	}
	acks := make([]dashboardapi.UnblockAck, 0, len(reqs))
	for _, r := range reqs {
		ack, seen := p.results[r.ID]
		if !seen {
			ack = p.apply(r)
			p.remember(ack)
		}
		acks = append(acks, ack)
	}
	if err := p.Source.AckUnblocks(ctx, acks); err != nil {
		return fmt.Errorf("unblock: acknowledge: %w", err)
	}
	return nil
}

// apply adds the target of r to the policy file.
func (p *Poller) apply(r dashboardapi.UnblockRequest) dashboardapi.UnblockAck {
	log := p.logger()
	ack := dashboardapi.UnblockAck{ID: r.ID}
	if r.Hostname != "" && p.Hostname != "" && r.Hostname != p.Hostname {
		ack.Error = fmt.Sprintf("request is for %q, not this filter (%q)", r.Hostname, p.Hostname)
		return ack
	}
	if p.Policy == nil {
		ack.Error = p.NoPolicyReason
		if ack.Error == "" {
			ack.Error = "this filter has no policy file to edit"
		}
		return ack
	}
	var added bool
	kind, target, err := dashboardapi.ParseUnblockTarget(r.Target, p.MinIPv4Bits, p.MinIPv6Bits)
	switch {
	case err != nil:
		err = fmt.Errorf("refused by this filter: %w", err)
	case kind != r.Kind:
		err = fmt.Errorf("refused by this filter: target %q is of kind %q, not %q", r.Target, kind, r.Kind)
	case kind == dashboardapi.UnblockDomain:
		added, err = p.Policy.AddDomain(target)
	default:
		added, err = p.Policy.AddIP(target)
	}
	if err != nil {
		ack.Error = err.Error()
		log.Warn("unblock: request not applied", "id", r.ID, "target", r.Target, "err", err)
		return ack
	}
	ack.Applied = true
	if added {
		log.Info("unblock: added to the policy file", "id", r.ID, "target", r.Target)
	} else {
		log.Info("unblock: already in the policy file", "id", r.ID, "target", r.Target)
	}
	return ack
}

// remember keeps ack for a request seen again, forgetting the oldest
// beyond rememberResults.
func (p *Poller) remember(ack dashboardapi.UnblockAck) {
	if p.results == nil {
		p.results = map[string]dashboardapi.UnblockAck{}
	}
	p.results[ack.ID] = ack
	p.order = append(p.order, ack.ID)
	if len(p.order) > rememberResults {
		delete(p.results, p.order[0])
		p.order = p.order[1:]
	}
}

func (p *Poller) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
