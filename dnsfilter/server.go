package dnsfilter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// defaultListen is the default of [Server.Addrs]: where nftables' redirect
// delivers the queries a host or container sends itself.
var defaultListen = []netip.AddrPort{
	netip.MustParseAddrPort("127.0.0.1:53"),
	netip.MustParseAddrPort("[::1]:53"),
}

// Server serves a [dns.Handler] over UDP and TCP on one or more addresses,
// IPv4 and IPv6. It uses no global state: not [dns.DefaultServeMux], not
// the default accept function, which would answer a query with no or
// several questions before the handler could see it. Every message that is
// not a response reaches Handler.
//
// On a UDP socket bound to one address, queries are read and answered in
// batches (recvmmsg and sendmmsg on Linux), by as many readers as
// GOMAXPROCS, up to 4. A [Handler] answers there at once, without a
// goroutine, what needs no waiting (a refusal, an answer from its Cache);
// a query that must go upstream, and every query to another dns.Handler,
// is served on a goroutine of its own, one that served an earlier query
// when one is idle. TCP listeners, and packet sockets bound to every
// address, are served by a [dns.Server].
//
// A Server serves once: set its fields, then call [Server.ListenAndServe]
// or [Server.Serve].
type Server struct {
	// Addrs are the addresses to listen on, each over UDP and TCP on the
	// same port. An IPv6 address listens for IPv6 only, so that
	// "0.0.0.0:53" and "[::]:53" can both be given. A port of 0 picks a
	// free port, the same for UDP and TCP (see [Server.LocalAddrs]).
	// Empty means 127.0.0.1:53 and [::1]:53, where nftables' redirect
	// delivers the queries a host or container sends itself.
	Addrs []netip.AddrPort

	// Handler answers the queries. It is required.
	Handler dns.Handler

	// ReadTimeout bounds the wait for a query on a new TCP connection,
	// and WriteTimeout the writing of an answer. Zero means 2s, as in
	// [dns.Server].
	ReadTimeout, WriteTimeout time.Duration

	// Logger receives a record when serving fails. Nil discards them.
	Logger *slog.Logger

	once  sync.Once
	used  bool
	mu    sync.Mutex
	ready chan struct{}
	local []netip.AddrPort
}

// Ready returns a channel that is closed once the Server answers queries on
// every socket. It is never closed when serving fails to start.
func (s *Server) Ready() <-chan struct{} {
	s.once.Do(func() { s.ready = make(chan struct{}) })
	return s.ready
}

// LocalAddrs returns the addresses the Server listens on, with the ports
// picked for a port of 0, once [Server.Ready] is closed; nil before.
// [Server.ListenAndServe] gives one per address of Addrs, served over UDP
// and TCP alike; [Server.Serve] gives those of its packet connections, then
// those of its listeners.
func (s *Server) LocalAddrs() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.local
}

// ListenAndServe listens on Addrs and serves until ctx ends, then shuts
// down gracefully: it stops reading queries, waits for those in flight to
// be answered, closes its sockets and returns nil. It returns an error when
// it cannot listen on every address (having closed those it could), or
// when serving fails, after shutting down the rest.
func (s *Server) ListenAndServe(ctx context.Context) error {
	if s.Handler == nil {
		return errors.New("dnsfilter: Server.Handler is nil")
	}
	addrs := s.Addrs
	if len(addrs) == 0 {
		addrs = defaultListen
	}
	var (
		pcs []net.PacketConn
		ls  []net.Listener
	)
	for _, a := range addrs {
		pc, l, err := listenPair(ctx, a)
		if err != nil {
			for i := range pcs {
				pcs[i].Close()
				ls[i].Close()
			}
			return err
		}
		pcs, ls = append(pcs, pc), append(ls, l)
	}
	return s.serve(ctx, pcs, ls, true)
}

// Serve is [Server.ListenAndServe] on sockets the caller made (inherited
// from systemd, say); it ignores Addrs. It closes them when it returns.
func (s *Server) Serve(ctx context.Context, pcs []net.PacketConn, ls []net.Listener) error {
	if s.Handler == nil {
		return errors.New("dnsfilter: Server.Handler is nil")
	}
	return s.serve(ctx, pcs, ls, false)
}

func (s *Server) serve(ctx context.Context, pcs []net.PacketConn, ls []net.Listener, paired bool) error {
	s.Ready() // makes s.ready
	s.mu.Lock()
	used := s.used
	s.used = true
	s.mu.Unlock()
	if used {
		for _, pc := range pcs {
			pc.Close()
		}
		for _, l := range ls {
			l.Close()
		}
		return ErrServerUsed
	}

	var servers []runner
	var local []netip.AddrPort
	for _, pc := range pcs {
		if u := newUDPServer(pc, s.Handler); u != nil {
			servers = append(servers, u)
		} else {
			servers = append(servers, s.dnsServer(&dns.Server{PacketConn: pc}))
		}
		local = append(local, addrPort(pc.LocalAddr()))
	}
	for _, l := range ls {
		servers = append(servers, s.dnsServer(&dns.Server{Listener: l}))
		if !paired {
			local = append(local, addrPort(l.Addr()))
		}
	}

	started := make([]chan struct{}, len(servers))
	done := make([]chan struct{}, len(servers))
	failed := make(chan error, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		started[i], done[i] = make(chan struct{}), make(chan struct{})
		wg.Go(func() {
			defer close(done[i])
			if err := srv.serve(func() { close(started[i]) }); err != nil {
				failed <- fmt.Errorf("dnsfilter: serve: %w", err)
			}
		})
	}
	ok := true
	for i := range servers {
		select {
		case <-started[i]:
		case <-done[i]:
			ok = false
		}
	}
	if ok {
		s.mu.Lock()
		s.local = local
		s.mu.Unlock()
		close(s.ready)
	}

	var err error
	select {
	case <-ctx.Done():
	case err = <-failed:
		s.logger().Error("dnsfilter: serving failed, shutting down", "error", err)
	}
	for i, srv := range servers {
		select {
		case <-started[i]:
			select {
			case <-done[i]:
			default:
				srv.shutdown()
			}
		default:
		}
	}
	wg.Wait()
	// A server that failed to start never closed its socket.
	for _, pc := range pcs {
		pc.Close()
	}
	for _, l := range ls {
		l.Close()
	}
	return err
}

// runner serves one socket: serve calls started once it serves, and
// returns after shutdown once the queries under way are answered.
type runner interface {
	serve(started func()) error
	shutdown()
}

// dnsServer serves TCP listeners, and packet sockets that are not bound
// to one address, through dns.Server.
type dnsServer struct{ *dns.Server }

func (d dnsServer) serve(started func()) error {
	d.NotifyStartedFunc = started
	return d.ActivateAndServe()
}

// shutdown stops a server that started; it can only fail to if it was
// never started.
func (d dnsServer) shutdown() { _ = d.ShutdownContext(context.Background()) }

func (s *Server) dnsServer(srv *dns.Server) dnsServer {
	srv.Handler = s.Handler
	srv.ReadTimeout = s.ReadTimeout
	srv.WriteTimeout = s.WriteTimeout
	srv.MsgAcceptFunc = acceptRequests
	srv.MsgInvalidFunc = func([]byte, error) {}
	return dnsServer{srv}
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return discard
}

// acceptRequests drops responses, which must never be answered (that would
// let two servers bounce a message between them), and hands every request
// to the handler.
func acceptRequests(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 {
		return dns.MsgIgnore
	}
	return dns.MsgAccept
}

// listenPair listens on a over UDP and TCP, on the same port. A port of 0
// picks one free for both, trying again if the port UDP got is taken for
// TCP.
func listenPair(ctx context.Context, a netip.AddrPort) (net.PacketConn, net.Listener, error) {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	udp, tcp := "udp4", "tcp4"
	if a.Addr().Is6() {
		udp, tcp = "udp6", "tcp6"
	}
	var lc net.ListenConfig
	const tries = 16
	for try := 0; ; try++ {
		pc, err := lc.ListenPacket(ctx, udp, a.String())
		if err != nil {
			return nil, nil, fmt.Errorf("dnsfilter: listen: %w", err)
		}
		port := addrPort(pc.LocalAddr()).Port()
		l, err := lc.Listen(ctx, tcp, netip.AddrPortFrom(a.Addr(), port).String())
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		if a.Port() != 0 || try == tries-1 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("dnsfilter: listen: %w", err)
		}
	}
}

// addrPort returns the address and port of a UDP or TCP address.
func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort()
	case *net.TCPAddr:
		return a.AddrPort()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap
	}
	return netip.AddrPort{}
}
