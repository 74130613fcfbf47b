//go:build linux

package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/internal/e2e"
)

const (
	nameA   = "a.example.test"
	nameB   = "b.example.test"
	unknown = "nowhere.example.test"
)

// serverAddrs are the upstream addresses the server tests reach: the first
// of each family, and a non-allowlisted one, since the servers listen on
// every upstream address.
var serverAddrs = []netip.Addr{e2e.Upstream4[0], e2e.Upstream6[0], e2e.Upstream4[2], e2e.Upstream6[2]}

// boxAddr is the box's address in the family of a.
func boxAddr(a netip.Addr) netip.Addr {
	if a.Is4() {
		return e2e.Box4
	}
	return e2e.Box6
}

// get fetches url with c and returns the status and body.
func get(t *testing.T, c *http.Client, url, host string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	require.NoError(t, err)
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body), nil
}

func TestWebServers(t *testing.T) {
	env := e2e.New(t)
	web := env.WebServers(nameA, nameB)

	var want []e2e.WebRequest
	for _, addr := range serverAddrs {
		t.Run(addr.String(), func(t *testing.T) {
			c := env.HTTPClient(addr)
			from := boxAddr(addr)
			for _, name := range []string{nameA, nameB} {
				// One address, two names: the name picks the certificate
				// and the answer.
				status, body, err := get(t, c, "https://"+name+"/", "")
				require.NoError(t, err, "https %s at %s", name, addr)
				assert.Equal(t, http.StatusOK, status)
				assert.Equal(t, "served "+name, body)
				want = append(want, e2e.WebRequest{Scheme: "https", Host: name, SNI: name,
					From: netip.AddrPortFrom(from, 0), To: netip.AddrPortFrom(addr, e2e.HTTPSPort)})

				// Over HTTP the Host header does.
				status, body, err = get(t, c, "http://"+hostPort(addr, e2e.HTTPPort)+"/", name)
				require.NoError(t, err, "http %s at %s", name, addr)
				assert.Equal(t, http.StatusOK, status)
				assert.Equal(t, "served "+name, body)
			}

			status, body, err := get(t, c, "http://"+unknown+"/", "")
			require.NoError(t, err)
			assert.Equal(t, http.StatusMisdirectedRequest, status)
			assert.Equal(t, "unknown host "+unknown, body)

			// No certificate for a name the servers were not given.
			_, _, err = get(t, c, "https://"+unknown+"/", "")
			assert.Error(t, err, "https %s", unknown)
		})
	}

	// DialContext takes only literal addresses: a name would be resolved
	// outside the box.
	_, err := env.DialContext(context.Background(), "tcp", net.JoinHostPort(nameA, "80"))
	assert.Error(t, err)

	// The servers saw every HTTPS request, from the box, at the address
	// dialled. (Client ports vary; compare addresses.)
	var got []e2e.WebRequest
	for _, r := range web.Requests() {
		if r.Scheme == "https" {
			r.From = netip.AddrPortFrom(r.From.Addr(), 0)
			got = append(got, r)
		}
	}
	assert.Equal(t, want, got)
	assert.Len(t, web.Requests(), len(serverAddrs)*5, "2 https, 3 http per address")
}

func TestDNSServer(t *testing.T) {
	env := e2e.New(t)
	records := map[string][]netip.Addr{
		nameA:       {e2e.Upstream4[0], e2e.Upstream6[0], e2e.Upstream4[1]},
		nameB + ".": {e2e.Upstream6[1]},
	}
	srv := env.DNSServer(records)

	tests := []struct {
		name  string
		qtype uint16
		rcode int
		want  []string
	}{
		{name: nameA, qtype: dns.TypeA, rcode: dns.RcodeSuccess, want: []string{"198.18.0.2", "198.18.0.3"}},
		{name: nameA, qtype: dns.TypeAAAA, rcode: dns.RcodeSuccess, want: []string{"fd00:18::2"}},
		{name: "B.Example.Test", qtype: dns.TypeAAAA, rcode: dns.RcodeSuccess, want: []string{"fd00:18::3"}},
		{name: nameB, qtype: dns.TypeA, rcode: dns.RcodeSuccess, want: nil},
		{name: nameA, qtype: dns.TypeTXT, rcode: dns.RcodeSuccess, want: nil},
		{name: unknown, qtype: dns.TypeA, rcode: dns.RcodeNameError, want: nil},
		{name: unknown, qtype: dns.TypeAAAA, rcode: dns.RcodeNameError, want: nil},
	}
	var want []e2e.DNSQuery
	for _, addr := range serverAddrs {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(fmt.Sprintf("%s/%s", addr, network), func(t *testing.T) {
				client := &dns.Client{Net: network, Timeout: ioTimeout}
				for _, tc := range tests {
					conn, err := env.Dial(network, hostPort(addr, e2e.DNSPort), dialTimeout)
					require.NoError(t, err)
					q := new(dns.Msg).SetQuestion(dns.Fqdn(tc.name), tc.qtype)
					r, _, err := client.ExchangeWithConn(q, &dns.Conn{Conn: conn})
					require.NoError(t, err, "%s %s", tc.name, dns.TypeToString[tc.qtype])
					assert.Equal(t, tc.rcode, r.Rcode, "%s %s", tc.name, dns.TypeToString[tc.qtype])
					assert.True(t, r.Authoritative)
					var got []string
					for _, rr := range r.Answer {
						switch rr := rr.(type) {
						case *dns.A:
							got = append(got, rr.A.String())
						case *dns.AAAA:
							got = append(got, rr.AAAA.String())
						}
						assert.Equal(t, uint32(e2e.DNSTTL), rr.Header().Ttl)
					}
					assert.Equal(t, tc.want, got, "%s %s", tc.name, dns.TypeToString[tc.qtype])
					want = append(want, e2e.DNSQuery{Name: dns.Fqdn(tc.name), Type: tc.qtype, Net: network,
						From: netip.AddrPortFrom(boxAddr(addr), 0)})
				}
			})
		}
	}

	// The log holds every question, from the box, over the right
	// transport. (Client ports vary; compare addresses.)
	got := srv.Queries()
	for i := range got {
		got[i].From = netip.AddrPortFrom(got[i].From.Addr(), 0)
	}
	assert.Equal(t, want, got)
}
