// Command probe is the Compose end-to-end test's client inside a workload
// container: it prints one line, "ok DETAIL" (exit 0) or "err DETAIL"
// (exit 1), so that the test can read what happened.
//
//	probe dns NAME [TYPE]       ask the first nameserver of /etc/resolv.conf (Docker's 127.0.0.11); prints the rcode and addresses
//	probe resolve NAME          Go's resolver, as an application would (getaddrinfo-like)
//	probe get URL [CAFILE [ADDR]]  HTTP(S) GET, the TLS server verified with CAFILE ("-": none), connecting to ADDR if given
//	probe udp HOST:PORT         send a datagram, wait for any answer (a QUIC client's first try)
//	probe tcp HOST:PORT         connect only
//	probe sleep                 wait for SIGTERM (a container's main process)
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

const timeout = 5 * time.Second

func main() {
	detail, err := run(os.Args[1:])
	if err != nil {
		fmt.Println("err", oneLine(err.Error()))
		os.Exit(1)
	}
	fmt.Println("ok", oneLine(detail))
}

func oneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }

func run(args []string) (string, error) {
	if len(args) == 1 && args[0] == "sleep" {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		<-ch
		return "stopped", nil
	}
	if len(args) < 2 {
		return "", errors.New("usage: probe dns|resolve|get|udp|tcp|sleep ARG")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*timeout)
	defer cancel()
	switch args[0] {
	case "dns":
		qtype := dns.TypeA
		if len(args) > 2 {
			qtype = dns.StringToType[strings.ToUpper(args[2])]
		}
		return query(args[1], qtype)
	case "resolve":
		addrs, err := net.DefaultResolver.LookupHost(ctx, args[1])
		if err != nil {
			return "", err
		}
		return strings.Join(addrs, " "), nil
	case "get":
		ca, addr := "", ""
		if len(args) > 2 && args[2] != "-" {
			ca = args[2]
		}
		if len(args) > 3 {
			addr = args[3]
		}
		return get(ctx, args[1], ca, addr)
	case "udp":
		c, err := net.DialTimeout("udp", args[1], timeout)
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		if _, err := c.Write([]byte("\xc0quic-initial?")); err != nil {
			return "", err
		}
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d bytes back", n), nil
	case "tcp":
		c, err := net.DialTimeout("tcp", args[1], timeout)
		if err != nil {
			return "", err
		}
		c.Close()
		return "connected", nil
	}
	return "", fmt.Errorf("unknown subcommand %q", args[0])
}

// query asks the first nameserver of /etc/resolv.conf, over UDP.
func query(name string, qtype uint16) (string, error) {
	server, err := nameserver()
	if err != nil {
		return "", err
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	c := &dns.Client{Timeout: timeout}
	r, _, err := c.Exchange(m, net.JoinHostPort(server, "53"))
	if err != nil {
		return "", err
	}
	out := []string{dns.RcodeToString[r.Rcode]}
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}
	return strings.Join(out, " "), nil
}

func nameserver() (string, error) {
	f, err := os.Open("/etc/resolv.conf")
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fs := strings.Fields(s.Text()); len(fs) >= 2 && fs[0] == "nameserver" {
			return fs[1], nil
		}
	}
	return "", errors.New("no nameserver in /etc/resolv.conf")
}

func get(ctx context.Context, url, caFile, addr string) (string, error) {
	tr := &http.Transport{DisableKeepAlives: true, TLSHandshakeTimeout: timeout}
	if addr != "" {
		d := &net.Dialer{Timeout: timeout}
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return "", err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return "", errors.New("no certificate in " + caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 2 * timeout}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body))), nil
}
