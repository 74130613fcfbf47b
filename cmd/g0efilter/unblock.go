package main

import (
	"fmt"

	"github.com/g0lab/g0efilter/policy"
	"github.com/g0lab/g0efilter/unblock"
)

// policyAdder edits the policy file for remote unblocks, refusing the
// lists that the environment replaces: an entry added to the file there
// would change nothing.
type policyAdder struct {
	editor       *policy.Editor
	ips, domains *policy.List // the environment's lists, nil when unset
}

var _ unblock.Adder = policyAdder{}

func (a policyAdder) AddDomain(d string) (bool, error) {
	if a.domains != nil {
		return false, fmt.Errorf("the domains come from %s, not the policy file; change that variable instead", a.domains.Name)
	}
	return a.editor.AddDomain(d)
}

func (a policyAdder) AddIP(entry string) (bool, error) {
	if a.ips != nil {
		return false, fmt.Errorf("the IPs come from %s, not the policy file; change that variable instead", a.ips.Name)
	}
	return a.editor.AddIP(entry)
}

// unblockPoller is the remote unblock loop for cfg, using the dashboard
// client that ships the events.
func (f *filter) unblockPoller() *unblock.Poller {
	return &unblock.Poller{
		Source:   f.sinks.shipper,
		Hostname: f.host,
		Policy:   policyAdder{editor: &policy.Editor{Path: f.cfg.PolicyPath}, ips: f.cfg.AllowIPs, domains: f.cfg.AllowDomains},
		Interval: f.cfg.UnblockPollInterval,
		Logger:   f.log,
	}
}
