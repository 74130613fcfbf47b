// Command testnet is the stand-in internet of the Compose end-to-end test:
// test sites over HTTP (80) and HTTPS (443, a certificate from the test's
// CA for every name), a UDP echo on 443 (a QUIC client's first packet
// either gets an echo or nothing), a TCP port that accepts and closes
// (7000, for direct connections), and an authoritative DNS server (53,
// UDP and TCP) that answers every name of -names with -a and -aaaa and
// NXDOMAIN for the rest. Every DNS question it is asked goes to stdout,
// one line each ("dns NAME TYPE"), so that a test can tell which
// questions left the filter.
//
//	testnet -names allowed.test,blocked.test -a 198.18.0.10 -aaaa fd00::10 -cert site.crt -key site.key
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

func main() {
	names := flag.String("names", "", "comma-separated `names` to answer for")
	a4 := flag.String("a", "", "IPv4 `address` of every name")
	a6 := flag.String("aaaa", "", "IPv6 `address` of every name (optional)")
	cert := flag.String("cert", "", "certificate `file` (PEM) for HTTPS")
	key := flag.String("key", "", "key `file` (PEM) for HTTPS")
	flag.Parse()
	log.SetFlags(0)
	log.SetOutput(os.Stdout)

	z := zone{names: map[string]bool{}}
	for n := range strings.SplitSeq(*names, ",") {
		if n = strings.TrimSpace(n); n != "" {
			z.names[dns.Fqdn(strings.ToLower(n))] = true
		}
	}
	var err error
	if z.a, err = netip.ParseAddr(*a4); err != nil {
		log.Fatalf("testnet: -a: %v", err)
	}
	if *a6 != "" {
		if z.aaaa, err = netip.ParseAddr(*a6); err != nil {
			log.Fatalf("testnet: -aaaa: %v", err)
		}
	}
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		log.Fatalf("testnet: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 5)
	for _, network := range []string{"udp", "tcp"} {
		srv := &dns.Server{Addr: ":53", Net: network, Handler: z}
		go func() { errc <- srv.ListenAndServe() }()
		defer srv.Shutdown()
	}
	site := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto := "http"
		if r.TLS != nil {
			proto = "https"
		}
		fmt.Fprintf(w, "site=%s proto=%s\n", r.Host, proto)
	})
	plain := &http.Server{Addr: ":80", Handler: site, ReadHeaderTimeout: 10 * time.Second}
	secure := &http.Server{Addr: ":443", Handler: site, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}}}
	go func() { errc <- plain.ListenAndServe() }()
	go func() { errc <- secure.ListenAndServeTLS("", "") }()
	go func() { errc <- udpEcho(ctx, ":443") }()
	go func() { errc <- tcpAccept(":7000") }()
	log.Printf("testnet: serving %d names", len(z.names))

	select {
	case <-ctx.Done():
	case err := <-errc:
		log.Printf("testnet: %v", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	plain.Shutdown(sctx)
	secure.Shutdown(sctx)
}

type zone struct {
	names   map[string]bool
	a, aaaa netip.Addr
}

func (z zone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	log.Printf("dns %s %s", strings.TrimSuffix(name, "."), dns.TypeToString[q.Qtype])
	if !z.names[name] {
		m.Rcode = dns.RcodeNameError
		w.WriteMsg(m)
		return
	}
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 30}
	switch {
	case q.Qtype == dns.TypeA:
		hdr.Rrtype = dns.TypeA
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: z.a.AsSlice()})
	case q.Qtype == dns.TypeAAAA && z.aaaa.IsValid():
		hdr.Rrtype = dns.TypeAAAA
		m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: z.aaaa.AsSlice()})
	}
	w.WriteMsg(m)
}

// udpEcho sends every datagram back to its sender.
func udpEcho(ctx context.Context, addr string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); pc.Close() }()
	buf := make([]byte, 2048)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		log.Printf("udp echo %d bytes from %s", n, from)
		pc.WriteTo(buf[:n], from)
	}
}

// tcpAccept accepts connections, logs and closes them.
func tcpAccept(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		log.Printf("tcp connection from %s", c.RemoteAddr())
		c.Close()
	}
}
