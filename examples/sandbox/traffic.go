package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/g0lab/g0efilter/internal/testbed"
)

const trafficBodyMax = 200

// traffic is the sandbox's workload: every Interval it tries each site
// name over HTTPS and HTTP, and the direct-IP target, from the box (Dial),
// so that the dashboard fills with allowed and blocked decisions. Rounds
// alternate between IPv4 and IPv6. It dials the sites' addresses itself
// rather than resolving the names: the filter checks the names with its
// own lookups all the same.
type traffic struct {
	Dial     testbed.DialFunc
	Roots    *x509.CertPool
	Interval time.Duration // zero means 2s
	Log      io.Writer     // one line per attempt
}

// Run tries the targets until ctx ends.
func (t *traffic) Run(ctx context.Context) {
	interval := t.Interval
	if interval <= 0 {
		interval = defaultInterval
	}
	// Each request is a connection of its own, and so a decision of its
	// own; a name goes to the sites' address, the target to its own.
	clients := []*http.Client{
		testbed.HTTPClient(t.Dial, siteAddr4, t.Roots), testbed.HTTPClient(t.Dial, siteAddr6, t.Roots),
	}
	raws := []netip.Addr{rawAddr4, rawAddr6}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for round := 0; ; round++ {
		c := clients[round%2]
		for _, s := range sites {
			for _, scheme := range []string{"https", "http"} {
				t.try(ctx, c, scheme+"://"+s.Name+"/")
			}
		}
		raw := netip.AddrPortFrom(raws[round%2], rawPort)
		t.try(ctx, testbed.HTTPClient(t.Dial, raw.Addr(), nil), "http://"+raw.String()+"/")
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// try makes one request and logs what came of it.
func (t *traffic) try(ctx context.Context, c *http.Client, url string) {
	if ctx.Err() != nil {
		return
	}
	now := time.Now().Format(time.TimeOnly)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(t.Log, "%s %-40s error: %v\n", now, url, err)
		return
	}
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			fmt.Fprintf(t.Log, "%s %-40s refused: %v\n", now, url, unwrapURLError(err))
		}
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, trafficBodyMax))
	_ = resp.Body.Close()
	fmt.Fprintf(t.Log, "%s %-40s %s: %s\n", now, url, resp.Status, strings.TrimSpace(string(body)))
}

// unwrapURLError drops the "Get <url>:" that repeats the URL.
func unwrapURLError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}
