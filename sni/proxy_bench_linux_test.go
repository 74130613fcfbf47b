package sni

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/g0lab/g0efilter/internal/e2e"
	"github.com/g0lab/g0efilter/internal/policytest"
	"github.com/g0lab/g0efilter/nftrules"
	"github.com/g0lab/g0efilter/policy"

	"github.com/g0lab/g0efilter/internal/sockmark"

	"github.com/g0lab/g0efilter/internal/nsdial"
)

// BenchmarkProxy measures the proxy between the end-to-end test
// namespaces, against a direct connection and a bare Go proxy that copies
// with io.Copy (splice), in the same run:
//
//   - download, upload: one connection moving 64 MiB (MB/s);
//   - connect: new connections per second, each a ClientHello, one byte
//     back, and close, from 16 concurrent clients;
//   - http: the same over HTTP (port 80), each connection a browser's
//     request head with a one-byte body;
//   - idle: memory and file descriptors per idle proxied connection, over
//     1000 connections, beyond what the client and server ends take.
//
// The client sends a real ClientHello first, so the proxy decides on it
// against a compiled policy of 100,000 rules; the destination is not
// allowlisted by address, so the kernel redirects it. The direct case goes
// to an allowlisted address of the same server. Needs root; see
// docs/PERFORMANCE.md.
//
// With -bench.v2 the kernel and the proxy also hold every other entry
// form, 1000 of each (see v2Policy): run it alternated with a run without,
// to compare in the same conditions.
func BenchmarkProxy(b *testing.B) {
	env := e2e.New(b)
	applyBenchRules(b, env)
	hello := benchHello(b, "bench.example")
	serveBench(b, env, benchPort, len(hello))
	serveBench(b, env, benchHTTPPort, len(benchHTTPHead))
	var live policy.Holder
	live.Store(benchSnapshot(b))

	clients := env.BoxDialer(net.Dialer{}, 8)
	marked := env.BoxDialer(net.Dialer{Control: sockmark.Control(nftrules.DefaultBypassMark)}, 8)
	direct := netip.AddrPortFrom(e2e.Upstream4[1], benchPort)
	var hostPorts []uint16
	if *benchV2 {
		hostPorts = []uint16{80, 443}
	}
	redirected := netip.AddrPortFrom(e2e.Upstream4[2], benchPort)
	directHTTP := netip.AddrPortFrom(e2e.Upstream4[1], benchHTTPPort)
	redirectedHTTP := netip.AddrPortFrom(e2e.Upstream4[2], benchHTTPPort)

	proxies := []benchProxy{
		{name: "direct"},
		{name: "bare", serve: func(ctx context.Context, ln net.Listener, _ Protocol) { bareProxy(ctx, ln, marked) }},
		{name: "g0efilter", serve: func(ctx context.Context, ln net.Listener, proto Protocol) {
			p := &Proxy{
				Policy:      &live,
				HostPorts:   hostPorts,
				Resolver:    benchResolver{e2e.Upstream4[2]},
				DialContext: marked.DialContext,
			}
			p.Serve(ctx, ln, proto)
		}},
	}
	target := func(p benchProxy) netip.AddrPort {
		if p.serve == nil {
			return direct
		}
		return redirected
	}

	const size = 64 << 20
	for _, dir := range []byte{'d', 'u'} {
		name := map[byte]string{'d': "download", 'u': "upload"}[dir]
		for _, p := range proxies {
			b.Run(name+"/"+p.name, func(b *testing.B) {
				stop := p.start(b, env, TLS)
				defer stop()
				b.SetBytes(size)
				for b.Loop() {
					if err := transferOnce(clients, target(p), hello, dir, size); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
	for _, p := range proxies {
		b.Run("connect/"+p.name, func(b *testing.B) {
			stop := p.start(b, env, TLS)
			defer stop()
			connectLoop(b, clients, target(p), hello)
		})
	}
	for _, p := range proxies {
		b.Run("http/"+p.name, func(b *testing.B) {
			stop := p.start(b, env, HTTP)
			defer stop()
			to := redirectedHTTP
			if p.serve == nil {
				to = directHTTP
			}
			connectLoop(b, clients, to, []byte(benchHTTPHead))
		})
	}
	for _, p := range proxies[1:] {
		b.Run("idle/"+p.name, func(b *testing.B) {
			stop := p.start(b, env, TLS)
			defer stop()
			const n = 1000
			base, err := measureIdle(clients, direct, hello, n)
			if err != nil {
				b.Fatal(err)
			}
			proxied, err := measureIdle(clients, redirected, hello, n)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(proxied.bytes-base.bytes)/n, "B/conn")
			b.ReportMetric(float64(proxied.fds-base.fds)/n, "fds/conn")
		})
	}
}

// connectLoop opens and closes connections to to from 16 clients, each
// sending first and waiting for one byte back. Besides the time per
// connection it reports the CPU time the process (client, server and
// proxy) spent per connection, cpu-ns/op, which other work on the machine
// disturbs less than it does the time.
func connectLoop(b *testing.B, clients *nsdial.Dialer, to netip.AddrPort, first []byte) {
	before := cpuTime()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c, err := openIdle(clients, to, first)
			if err != nil {
				b.Error(err)
				return
			}
			c.Close()
		}
	})
	b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
}

// cpuTime returns the user and system CPU time the process has used, in
// nanoseconds.
func cpuTime() int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// benchPort and benchHTTPPort are where the benchmark's server listens
// upstream: 443 and 80, so that the ruleset redirects them.
const (
	benchPort     = 443
	benchHTTPPort = 80
)

// benchHTTPHead is the request head of the http case, as a browser sends
// it; the byte the client sends after it is its body.
const benchHTTPHead = "GET /articles/2024/egress-filtering?utm_source=feed HTTP/1.1\r\n" +
	"Host: bench.example\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Language: en-GB,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate\r\n" +
	"Cookie: session=6f1e0c2a9b; theme=dark\r\n" +
	"Content-Length: 1\r\n" +
	"\r\n"

type benchProxy struct {
	name  string
	serve func(ctx context.Context, ln net.Listener, proto Protocol) // nil: no proxy
}

// start serves the proxy for proto in the box, on 127.0.0.1:8443 (TLS) or
// 127.0.0.1:8080 (HTTP), where the ruleset redirects ports 443 and 80, and
// returns a function that stops it and waits.
func (p benchProxy) start(b *testing.B, env *e2e.Env, proto Protocol) (stop func()) {
	if p.serve == nil {
		return func() {}
	}
	addr := "127.0.0.1:8443"
	if proto == HTTP {
		addr = "127.0.0.1:8080"
	}
	var ln net.Listener
	var err error
	env.InBox(func() { ln, err = net.Listen("tcp4", addr) })
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.serve(ctx, ln, proto)
	}()
	return func() {
		cancel()
		ln.Close()
		<-done
	}
}

// benchSnapshot returns a policy of 100,000 generated rules, a third of
// them wildcards, under seven public suffixes, and "bench.example".
func benchSnapshot(b *testing.B) *policy.Snapshot {
	r := rand.New(rand.NewPCG(1, 2))
	suffixes := []string{"com", "net", "org", "io", "dev", "co.uk", "com.au"}
	domains := []string{"bench.example"}
	for i := range 100_000 - 1 {
		var label [8]byte
		for j := range label {
			label[j] = byte('a' + r.IntN(26))
		}
		name := fmt.Sprintf("%s%d.%s", label[:], i, suffixes[r.IntN(len(suffixes))])
		if r.IntN(3) == 0 {
			name = "*." + name
		}
		domains = append(domains, name)
	}
	p := &policy.Policy{Domains: domains}
	if *benchV2 {
		v2 := v2Policy()
		p.Domains = append(p.Domains, v2.Domains...)
		p.IPs, p.AddrPorts, p.NamePorts, p.DenyIPs, p.DenyDomains = v2.IPs, v2.AddrPorts, v2.NamePorts, v2.DenyIPs, v2.DenyDomains
	}
	s, err := policy.Compile(p)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

type benchResolver struct{ addr netip.Addr }

func (r benchResolver) LookupNetIP(context.Context, string) ([]netip.Addr, error) {
	return []netip.Addr{r.addr}, nil
}

// applyBenchRules installs the https-mode ruleset in the box, allowlisting
// the direct address only.
func applyBenchRules(b *testing.B, env *e2e.Env) {
	fd, err := unix.Open("/run/netns/"+env.Box, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	conn, err := nftrules.Open(nftrules.ConnConfig{NetNS: fd})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	cfg := nftrules.Config{
		Mode:   nftrules.ModeHTTPS,
		Allow4: []netip.Prefix{netip.PrefixFrom(e2e.Upstream4[1], 32)},
	}
	if *benchV2 {
		// The direct address is allowed by an entry with a port: its
		// packets pass every set on the way.
		snap, err := policy.Compile(v2Policy())
		if err != nil {
			b.Fatal(err)
		}
		cfg.Allow4, cfg.Allow6 = snap.Prefixes()
		cfg.Deny4, cfg.Deny6 = snap.DenyPrefixes()
		for _, sv := range snap.Services() {
			proto := nftrules.TCP
			if sv.Proto == policy.UDP {
				proto = nftrules.UDP
			}
			cfg.AllowPorts = append(cfg.AllowPorts, nftrules.Service{Proto: proto, Prefix: sv.Prefix,
				Ports: nftrules.PortRange{First: sv.Ports.First, Last: sv.Ports.Last}})
		}
		cfg.TLSPorts = []nftrules.PortRange{{First: 8444, Last: 8444}, {First: 9000, Last: 9099}}
		cfg.HTTPPorts = []nftrules.PortRange{{First: 8080, Last: 8080}}
	}
	rs, err := nftrules.Build(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := conn.Apply(rs); err != nil {
		b.Fatal(err)
	}
}

var benchV2 = flag.Bool("bench.v2", false, "BenchmarkProxy: a policy that uses every entry form (see v2Policy)")

// v2Policy is a policy with 1000 entries of each form, none of which
// covers the benchmark's addresses but the one that allows the direct
// address on port 443: prefixes, addresses with protocols and ports,
// exact names, wildcards, names with ports, and a denylist of addresses
// and names.
func v2Policy() *policy.Policy {
	p := &policy.Policy{Domains: []string{"bench.example"}}
	policytest.AddEveryForm(p)
	for _, port := range []uint16{benchPort, benchHTTPPort} {
		p.AddrPorts = append(p.AddrPorts, policy.AddrRule{Proto: policy.TCP, Prefix: netip.PrefixFrom(e2e.Upstream4[1], 32),
			Ports: policy.Ports{First: port, Last: port}})
	}
	return p
}

// benchHello returns the first flight of a crypto/tls client asking for
// name.
func benchHello(b *testing.B, name string) []byte {
	client, server := net.Pipe()
	defer client.Close()
	go tls.Client(client, &tls.Config{ServerName: name}).Handshake()
	buf := make([]byte, MaxHelloSize)
	n, err := server.Read(buf)
	server.Close()
	if err != nil {
		b.Fatal(err)
	}
	return buf[:n]
}

// serveBench starts the benchmark's server upstream on port of every
// address. A client sends a hello (or request head) of helloLen bytes, then
// a command:
//
//	'd' n: the server sends n bytes and closes;
//	'u' n: the client sends n bytes, the server answers 'k' after them;
//	'p':   the server answers 'k' and waits for the client to close.
func serveBench(b *testing.B, env *e2e.Env, port, helloLen int) {
	ln := env.Listen("tcp", fmt.Sprintf(":%d", port))
	var wg sync.WaitGroup
	b.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				handleBench(c, helloLen)
			})
		}
	})
}

func handleBench(c net.Conn, helloLen int) {
	head := make([]byte, helloLen+1)
	if _, err := io.ReadFull(c, head); err != nil {
		return
	}
	switch head[helloLen] {
	case 'p':
		c.Write([]byte{'k'})
		io.Copy(io.Discard, c)
	case 'd', 'u':
		var nb [8]byte
		if _, err := io.ReadFull(c, nb[:]); err != nil {
			return
		}
		n := int64(binary.BigEndian.Uint64(nb[:]))
		buf := make([]byte, 256<<10)
		if head[helloLen] == 'd' {
			for n > 0 {
				k, err := c.Write(buf[:min(n, int64(len(buf)))])
				if err != nil {
					return
				}
				n -= int64(k)
			}
			return
		}
		for n > 0 {
			k, err := c.Read(buf[:min(n, int64(len(buf)))])
			if err != nil {
				return
			}
			n -= int64(k)
		}
		c.Write([]byte{'k'})
	}
}

// transferOnce moves size bytes over one new connection, in direction dir
// ('d' from the server, 'u' to it).
func transferOnce(d *nsdial.Dialer, to netip.AddrPort, hello []byte, dir byte, size int64) error {
	c, err := d.DialContext(context.Background(), "tcp4", to.String())
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	msg := append(append([]byte(nil), hello...), dir)
	msg = binary.BigEndian.AppendUint64(msg, uint64(size))
	if _, err := c.Write(msg); err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	if dir == 'd' {
		var got int64
		for got < size {
			n, err := c.Read(buf)
			got += int64(n)
			if err != nil {
				return fmt.Errorf("download: %d of %d bytes: %w", got, size, err)
			}
		}
		return nil
	}
	for sent := int64(0); sent < size; {
		n, err := c.Write(buf[:min(size-sent, int64(len(buf)))])
		sent += int64(n)
		if err != nil {
			return err
		}
	}
	if _, err := io.ReadFull(c, buf[:1]); err != nil || buf[0] != 'k' {
		return fmt.Errorf("upload not acknowledged: %v", err)
	}
	return nil
}

// openIdle opens a connection that has sent its hello and been answered,
// and is then idle.
func openIdle(d *nsdial.Dialer, to netip.AddrPort, hello []byte) (net.Conn, error) {
	c, err := d.DialContext(context.Background(), "tcp4", to.String())
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := append(append([]byte(nil), hello...), 'p')
	var k [1]byte
	if _, err = c.Write(msg); err == nil {
		_, err = io.ReadFull(c, k[:])
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

type usage struct{ bytes, fds int64 }

// measureIdle opens n idle connections to to, one after another, and
// returns how much the process's Go memory (heap in use and stacks) and
// open descriptors grew, after a collection; then it closes them.
func measureIdle(d *nsdial.Dialer, to netip.AddrPort, hello []byte, n int) (usage, error) {
	before := current()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := openIdle(d, to, hello)
		if err != nil {
			return usage{}, err
		}
		conns = append(conns, c)
	}
	time.Sleep(100 * time.Millisecond) // let the last goroutines park
	after := current()
	return usage{after.bytes - before.bytes, after.fds - before.fds}, nil
}

func current() usage {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fds, _ := os.ReadDir("/proc/self/fd")
	return usage{bytes: int64(m.HeapInuse + m.StackInuse), fds: int64(len(fds))}
}

// bareProxy is the baseline: a transparent proxy that decides nothing and
// copies both ways with io.Copy, which splices between TCP connections.
func bareProxy(ctx context.Context, ln net.Listener, d *nsdial.Dialer) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Go(func() {
			defer c.Close()
			dst, err := originalDestination(c)
			if err != nil {
				return
			}
			up, err := d.DialContext(ctx, "tcp", dst.String())
			if err != nil {
				return
			}
			defer up.Close()
			stop := context.AfterFunc(ctx, func() { c.Close(); up.Close() })
			defer stop()
			var inner sync.WaitGroup
			inner.Go(func() {
				io.Copy(c, up)
				c.(*net.TCPConn).CloseWrite()
			})
			io.Copy(up, c)
			up.(*net.TCPConn).CloseWrite()
			inner.Wait()
		})
	}
}
