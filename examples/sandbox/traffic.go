package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	trafficTimeout = 5 * time.Second
	trafficBodyMax = 200
)

// traffic is the sandbox's workload: every Interval it tries each site
// name over HTTPS and HTTP, and the direct-IP target, from the box (Dial),
// so that the dashboard fills with allowed and blocked decisions. Rounds
// alternate between IPv4 and IPv6. It dials the sites' addresses itself
// rather than resolving the names: the filter checks the names with its
// own lookups all the same.
type traffic struct {
	Dial     dialFunc
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
	clients := []*http.Client{t.client(siteAddr4), t.client(siteAddr6)}
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
		t.try(ctx, c, "http://"+raw.String()+"/")
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// client returns a client that sends every request for a name to site,
// on the URL's port, and a request for an address to that address. It
// keeps no connection alive: each request is a connection of its own,
// and so a decision of its own.
func (t *traffic) client(site netip.Addr) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			if _, err := netip.ParseAddr(host); err == nil {
				return t.Dial(ctx, network, address)
			}
			p, err := strconv.ParseUint(port, 10, 16)
			if err != nil {
				return nil, err
			}
			return t.Dial(ctx, network, netip.AddrPortFrom(site, uint16(p)).String())
		},
		TLSClientConfig:   &tls.Config{RootCAs: t.Roots, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
		Proxy:             nil, // never a proxy from the environment
	}
	return &http.Client{Transport: tr, Timeout: trafficTimeout}
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
