package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/g0lab/g0efilter/internal/rawframe"
	"github.com/g0lab/g0efilter/internal/sockmark"
)

// Exit statuses.
const (
	exitOK    = 0
	exitErr   = 1
	exitUsage = 2
)

const (
	defaultTimeout = 2 * time.Second
	defaultSport   = 40000
	maxRead        = 128
)

var (
	ping       = []byte("ping\n")
	udpPing    = []byte("ping")
	rawPayload = []byte("g0e-raw")
)

// errUsage wraps the errors of a bad command line.
var errUsage = errors.New("usage")

const usageText = `usage:
  hostile tcp -addr HOST:PORT [-mark N] [-timeout D]
  hostile udp -addr HOST:PORT [-mark N] [-timeout D]
  hostile raw -ifname IF -dstmac MAC -src IP -dst IP -port P [-sport P] [-bypass]
  hostile reflect -how raw|transparent|loopback -remote IP:PORT -local IP:PORT
  hostile caps
  hostile cgroup
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the subcommand in args, prints its one line to stdout and
// returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	detail, err := dispatch(args, stderr)
	switch {
	case errors.Is(err, errUsage):
		fmt.Fprintln(stdout, "err", oneLine(err.Error()))
		fmt.Fprint(stderr, usageText)
		return exitUsage
	case err != nil:
		msg := err.Error()
		if name := errnoName(err); name != "" {
			msg += " (" + name + ")"
		}
		fmt.Fprintln(stdout, "err", oneLine(msg))
		return exitErr
	}
	fmt.Fprintln(stdout, "ok", oneLine(detail))
	return exitOK
}

func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

func dispatch(args []string, stderr io.Writer) (string, error) {
	if len(args) == 0 {
		return "", usageErr("no subcommand")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	parse := func() error {
		if err := fs.Parse(args[1:]); err != nil {
			return usageErr("%s: %v", args[0], err)
		}
		if fs.NArg() > 0 {
			return usageErr("%s: unexpected arguments %q", args[0], fs.Args())
		}
		return nil
	}
	switch args[0] {
	case "tcp", "udp":
		addr := fs.String("addr", "", "destination `HOST:PORT` (IP literal)")
		mark := fs.String("mark", "0", "SO_MARK to set before connecting, if not 0")
		timeout := fs.Duration("timeout", defaultTimeout, "bound of the whole exchange")
		if err := parse(); err != nil {
			return "", err
		}
		to, err := netip.ParseAddrPort(*addr)
		if err != nil {
			return "", usageErr("-addr: %v", err)
		}
		m, err := strconv.ParseUint(*mark, 0, 32)
		if err != nil {
			return "", usageErr("-mark: %v", err)
		}
		if *timeout <= 0 {
			return "", usageErr("-timeout: want a positive duration")
		}
		if args[0] == "tcp" {
			return tcpPing(to, uint32(m), *timeout)
		}
		return udpPingPong(to, uint32(m), *timeout)
	case "raw":
		ifname := fs.String("ifname", "", "network `interface` to send through")
		dstMAC := fs.String("dstmac", "", "destination `MAC` address")
		src := fs.String("src", "", "source `IP` address")
		dst := fs.String("dst", "", "destination `IP` address")
		port := fs.Uint("port", 0, "destination UDP `port`")
		sport := fs.Uint("sport", defaultSport, "source UDP `port`")
		bypass := fs.Bool("bypass", false, "set PACKET_QDISC_BYPASS")
		if err := parse(); err != nil {
			return "", err
		}
		if *ifname == "" {
			return "", usageErr("-ifname: missing")
		}
		mac, err := net.ParseMAC(*dstMAC)
		if err != nil || len(mac) != 6 {
			return "", usageErr("-dstmac: want an Ethernet MAC address, got %q", *dstMAC)
		}
		srcIP, err := netip.ParseAddr(*src)
		if err != nil {
			return "", usageErr("-src: %v", err)
		}
		dstIP, err := netip.ParseAddr(*dst)
		if err != nil {
			return "", usageErr("-dst: %v", err)
		}
		if srcIP.Is4() != dstIP.Is4() {
			return "", usageErr("-src %s and -dst %s: not of one family", srcIP, dstIP)
		}
		if *port == 0 || *port > 65535 || *sport == 0 || *sport > 65535 {
			return "", usageErr("-port %d, -sport %d: want 1 to 65535", *port, *sport)
		}
		return sendRaw(rawFrame{
			ifname: *ifname,
			dstMAC: mac,
			src:    netip.AddrPortFrom(srcIP.Unmap(), uint16(*sport)),
			dst:    netip.AddrPortFrom(dstIP.Unmap(), uint16(*port)),
			bypass: *bypass,
		})
	case "reflect":
		how := fs.String("how", "", "raw, transparent or loopback")
		remote := fs.String("remote", "", "the `IP:PORT` outside to reach")
		local := fs.String("local", "", "the box's `IP:PORT` to write from")
		if err := parse(); err != nil {
			return "", err
		}
		r, err := netip.ParseAddrPort(*remote)
		if err != nil {
			return "", usageErr("-remote: %v", err)
		}
		l, err := netip.ParseAddrPort(*local)
		if err != nil {
			return "", usageErr("-local: %v", err)
		}
		if r.Addr().Is4() != l.Addr().Is4() {
			return "", usageErr("-remote %s and -local %s: not of one family", r, l)
		}
		switch *how {
		case "raw", "transparent", "loopback":
		default:
			return "", usageErr("-how: want raw, transparent or loopback, got %q", *how)
		}
		return reflect(*how, netip.AddrPortFrom(r.Addr().Unmap(), r.Port()), netip.AddrPortFrom(l.Addr().Unmap(), l.Port()))
	case "caps":
		if err := parse(); err != nil {
			return "", err
		}
		return caps()
	case "cgroup":
		if err := parse(); err != nil {
			return "", err
		}
		return ownCgroup()
	}
	return "", usageErr("unknown subcommand %q", args[0])
}

// dialer returns a dialer that gives up at deadline and marks its socket
// with mark, if not zero.
func dialer(mark uint32, deadline time.Time) *net.Dialer {
	d := &net.Dialer{Deadline: deadline}
	if mark != 0 {
		d.Control = sockmark.Control(mark)
	}
	return d
}

// tcpPing connects to to, writes ping, closes its sending side and reads
// what comes back until EOF, maxRead bytes or the timeout.
func tcpPing(to netip.AddrPort, mark uint32, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	c, err := dialer(mark, deadline).Dial("tcp", to.String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(deadline); err != nil {
		return "", err
	}
	if _, err := c.Write(ping); err != nil {
		return "", err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return "", err
	}
	buf := make([]byte, maxRead)
	n, err := io.ReadFull(c, buf)
	var ne net.Error
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &ne) && ne.Timeout():
		return strconv.Quote(string(buf[:n])), nil
	}
	return "", fmt.Errorf("read after %q: %w", buf[:n], err)
}

// udpPingPong sends udpPing to to and waits for one reply.
func udpPingPong(to netip.AddrPort, mark uint32, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	c, err := dialer(mark, deadline).Dial("udp", to.String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(deadline); err != nil {
		return "", err
	}
	if _, err := c.Write(udpPing); err != nil {
		return "", err
	}
	buf := make([]byte, maxRead)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return strconv.Quote(string(buf[:n])), nil
}

// rawFrame is what the raw subcommand sends.
type rawFrame struct {
	ifname   string
	dstMAC   net.HardwareAddr
	src, dst netip.AddrPort
	bypass   bool
}

// sendRaw sends f's frame, from the MAC address of its interface, through
// a packet socket on that interface.
func sendRaw(f rawFrame) (string, error) {
	ifi, err := net.InterfaceByName(f.ifname)
	if err != nil {
		return "", err
	}
	if len(ifi.HardwareAddr) != 6 {
		return "", fmt.Errorf("%s: want an Ethernet MAC address, got %q", f.ifname, ifi.HardwareAddr.String())
	}
	frame := rawframe.UDP(ifi.HardwareAddr, f.dstMAC, f.src, f.dst, rawPayload)
	if err := rawframe.Send(f.ifname, frame, f.bypass); err != nil {
		return "", err
	}
	return fmt.Sprintf("sent %d bytes", len(frame)), nil
}
