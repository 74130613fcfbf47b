package dnsfilter

import (
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Batches of the UDP server.
const (
	udpBatch    = 64   // datagrams read (and answers written) at once
	udpQueryMax = 4096 // bytes of a query kept: more is FORMERR
	udpReaders  = 4    // at most, per socket, each with its batch
)

// udpServer answers the queries that arrive on a UDP socket bound to one
// address: it reads them in batches (recvmmsg on Linux), answers at once
// those that need no waiting, and writes those answers in a batch too
// (sendmmsg); a query that needs an upstream goes on a goroutine of its
// own and its answer is written alone. The handler is called as
// dns.Server calls it: every message that is not a response reaches it,
// and one that cannot be parsed gets FORMERR.
type udpServer struct {
	conn    *net.UDPConn
	batch   batchConn
	handler dns.Handler
	now     nowHandler // handler's own serveNow; nil for another dns.Handler

	stopping atomic.Bool
	working  sync.WaitGroup // queries that wait upstream
	work     chan func()    // to an idle worker
	done     chan struct{}  // closed when the last query is answered
	workers  sync.WaitGroup
}

// workerIdle is how long a worker waits for the next query that must go
// upstream before it ends.
const workerIdle = 5 * time.Second

// batchConn reads and writes datagrams in batches: an ipv4.PacketConn or
// an ipv6.PacketConn, whose Message types are one and the same.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// nowHandler is implemented by [Handler]; see [Handler.serveNow].
type nowHandler interface {
	serveNow(w dns.ResponseWriter, r *dns.Msg) (rest func())
}

// newUDPServer returns a udpServer for conn, or nil when conn is not a
// socket bound to one address: a wildcard socket must answer from the
// address each query was sent to, which dns.Server does.
func newUDPServer(pc net.PacketConn, h dns.Handler) *udpServer {
	conn, ok := pc.(*net.UDPConn)
	if !ok {
		return nil
	}
	local, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok || local.IP.IsUnspecified() {
		return nil
	}
	u := &udpServer{conn: conn, handler: h, work: make(chan func()), done: make(chan struct{})}
	if local.IP.To4() != nil {
		u.batch = ipv4.NewPacketConn(conn)
	} else {
		u.batch = ipv6.NewPacketConn(conn)
	}
	u.now, _ = h.(nowHandler)
	return u
}

// serve reads and answers queries until shutdown, then waits for the
// answers under way; it does not close the socket. It returns nil after
// shutdown, or the error that stopped reading.
func (u *udpServer) serve(started func()) error {
	started()
	n := min(max(runtime.GOMAXPROCS(0), 1), udpReaders)
	errs := make(chan error, n)
	var readers sync.WaitGroup
	for range n {
		readers.Go(func() {
			if err := u.read(); err != nil {
				errs <- err
				u.shutdown() // the other readers too
			}
		})
	}
	readers.Wait()
	u.working.Wait()
	close(u.done)
	u.workers.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// shutdown makes serve stop reading.
func (u *udpServer) shutdown() {
	u.stopping.Store(true)
	_ = u.conn.SetReadDeadline(time.Unix(1, 0))
}

// batch is one reader's buffers: the datagrams read and the answers to
// write.
type batch struct {
	in      []ipv4.Message
	out     []ipv4.Message // answers, the first outN of them to send
	outN    int
	outBufs [][]byte // where the answers are packed, reused
}

func newBatch() *batch {
	b := &batch{
		in:      make([]ipv4.Message, udpBatch),
		out:     make([]ipv4.Message, udpBatch),
		outBufs: make([][]byte, udpBatch),
	}
	slab := make([]byte, udpBatch*udpQueryMax)
	for i := range b.in {
		b.in[i].Buffers = [][]byte{slab[i*udpQueryMax : (i+1)*udpQueryMax : (i+1)*udpQueryMax]}
		b.out[i].Buffers = make([][]byte, 1)
		b.outBufs[i] = make([]byte, 0, dns.MinMsgSize)
	}
	return b
}

// read is one reader's loop.
func (u *udpServer) read() error {
	b := newBatch()
	for {
		n, err := u.batch.ReadBatch(b.in, 0)
		if err != nil {
			if u.stopping.Load() {
				return nil
			}
			if transient(err) {
				continue
			}
			return err
		}
		for i := range n {
			m := &b.in[i]
			addr, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			u.handle(b, m.Buffers[0][:m.N], addr)
		}
		u.flush(b)
	}
}

// transient reports whether a read error concerns one datagram or a
// passing state, not the socket.
func transient(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.ENOBUFS) ||
		errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.EINTR)
}

// handle answers the datagram msg from addr, into b when it can be
// answered at once.
func (u *udpServer) handle(b *batch, msg []byte, addr *net.UDPAddr) {
	// A message too short for a header gets nothing, as with dns.Server:
	// any reply could be used to amplify. A response is never answered
	// (acceptRequests).
	if len(msg) < 12 || msg[2]&0x80 != 0 {
		return
	}
	w := &udpWriter{u: u, addr: addr, batch: b}
	req := new(dns.Msg)
	if err := req.Unpack(msg); err != nil {
		// As dns.Server answers it: FORMERR with the header.
		req.SetRcodeFormatError(req)
		req.Zero = false
		req.Ns, req.Answer, req.Extra = nil, nil, nil
		_ = w.WriteMsg(req)
		return
	}
	var rest func()
	if u.now != nil {
		rest = u.now.serveNow(w, req)
	} else {
		rest = func() { u.handler.ServeDNS(w, req) }
	}
	w.batch = nil // from now on, a write goes alone
	if rest != nil {
		u.spawn(rest)
	}
}

// spawn runs the rest of a query on a worker of its own: an idle one, or
// a new one. Workers outlive their query for a while, so that the next
// query finds a goroutine whose stack has grown already: growing one
// took a tenth of the time of a query that goes upstream.
func (u *udpServer) spawn(rest func()) {
	u.working.Add(1)
	select {
	case u.work <- rest:
	default:
		u.workers.Go(func() { u.worker(rest) })
	}
}

// worker runs rest, then the queries handed to it, until it has waited
// workerIdle for one or the server is done.
func (u *udpServer) worker(rest func()) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		rest()
		u.working.Done()
		idle.Reset(workerIdle)
		select {
		case rest = <-u.work:
		case <-idle.C:
			return
		case <-u.done:
			return
		}
	}
}

// flush writes the answers gathered in b.
func (u *udpServer) flush(b *batch) {
	out := b.out[:b.outN]
	for len(out) > 0 {
		n, err := u.batch.WriteBatch(out, 0)
		if err != nil {
			// The first answer could not be sent (the client's address
			// unreachable, say): the others still can.
			n = max(n, 1)
		}
		out = out[n:]
	}
	for i := range b.out[:b.outN] {
		b.out[i].Addr = nil
	}
	b.outN = 0
}

// udpWriter is the dns.ResponseWriter of one query: it adds its answers
// to its reader's batch while the handler answers at once, and writes
// them alone once the query went to a goroutine of its own.
type udpWriter struct {
	u     *udpServer
	addr  *net.UDPAddr
	batch *batch // nil: write at once
}

func (w *udpWriter) LocalAddr() net.Addr  { return w.u.conn.LocalAddr() }
func (w *udpWriter) RemoteAddr() net.Addr { return w.addr }
func (w *udpWriter) Close() error         { return nil }
func (w *udpWriter) TsigStatus() error    { return nil }
func (w *udpWriter) TsigTimersOnly(bool)  {}
func (w *udpWriter) Hijack()              {}

// WriteMsg packs m and writes it, into the batch's buffer when there is
// one.
func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	b := w.batch
	if b == nil {
		wire, err := m.Pack()
		if err != nil {
			return err
		}
		_, err = w.Write(wire)
		return err
	}
	if b.outN == len(b.out) {
		w.u.flush(b)
	}
	i := b.outN
	wire, err := m.PackBuffer(b.outBufs[i][:cap(b.outBufs[i])])
	if err != nil {
		return err
	}
	if cap(wire) > cap(b.outBufs[i]) {
		b.outBufs[i] = wire[:0]
	}
	w.add(wire)
	return nil
}

// Write writes one answer, as it is.
func (w *udpWriter) Write(wire []byte) (int, error) {
	b := w.batch
	if b == nil {
		return w.u.conn.WriteToUDP(wire, w.addr)
	}
	if b.outN == len(b.out) {
		w.u.flush(b)
	}
	i := b.outN
	b.outBufs[i] = append(b.outBufs[i][:0], wire...)
	w.add(b.outBufs[i])
	return len(wire), nil
}

// add puts an answer packed in the batch's next buffer into the batch.
func (w *udpWriter) add(wire []byte) {
	b := w.batch
	m := &b.out[b.outN]
	m.Buffers[0] = wire
	m.Addr = w.addr
	b.outN++
}
