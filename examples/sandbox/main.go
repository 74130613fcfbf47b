// Command sandbox runs g0efilter and its dashboard in a self-contained
// sandbox of two network namespaces, with local test sites, a DNS server
// and a traffic generator, so that a newcomer can watch the filter allow
// and block traffic without Docker.
//
// Typical usage, as root on Linux, from the repository's root:
//
//	sudo env "PATH=$PATH" go run ./examples/sandbox
//	# open http://127.0.0.1:8081, try the printed commands, then Ctrl-C
//
// # Topology
//
//	box (g0e-sbx-<rand>-box)                net (g0e-sbx-<rand>-net)
//	  g0efilter (https mode), dashboard       web sites  198.18.100.2   fd00:198:18:100::2   (80, 443)
//	  the traffic generator's sockets         direct-IP  198.18.100.9   fd00:198:18:100::9   (9000)
//	  veth0 198.18.100.1/24  <--- veth --->   DNS        198.18.100.53  fd00:198:18:100::53  (53)
//	        fd00:198:18:100::1/64
//
// The box plays the network namespace a workload shares with the filter
// in Compose. The net namespace stands in for the internet: its web sites
// answer allowed.sandbox.test, api.allowed.sandbox.test,
// blocked.sandbox.test and tracker.sandbox.test over HTTP and HTTPS (with
// certificates from a CA the sandbox makes), and its DNS server is
// authoritative for them. Neither namespace has a route anywhere else,
// and nothing is added to the machine's own namespace: the dashboard is
// reached from the machine through a TCP forwarder in this process, whose
// outgoing sockets are made in the box.
//
// # Flags
//
//	-port N          the machine's loopback port for the dashboard (8081)
//	-duration D      stop after D; 0 runs until Ctrl-C (0)
//	-interval D      how often the traffic generator tries its targets (2s)
//	-g0efilter PATH  a prebuilt g0efilter binary, instead of go build
//	-dashboard PATH  a prebuilt dashboard binary, instead of go build
//	-keep            keep the temporary directory (logs, policy) at exit
//
// Ctrl-C (SIGINT) or SIGTERM stops the processes, deletes the namespaces
// and the /etc/netns entry it made, and removes the temporary directory;
// so does closing its output ("| head" once it has its lines, Ctrl-C
// through "| tee").
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const (
	defaultHostPort = 8081
	defaultInterval = 2 * time.Second
)

// config is what a sandbox run is told. Its zero value is a valid
// configuration: it builds the binaries, serves the dashboard on
// 127.0.0.1:8081 and runs until its context ends.
type config struct {
	// Listen is where the machine reaches the dashboard, host:port on
	// loopback. Empty means 127.0.0.1:8081; port 0 picks a free one.
	Listen string
	// Duration stops the sandbox after it is up for this long. Zero means
	// it runs until the context ends.
	Duration time.Duration
	// Interval is how often the traffic generator tries its targets. Zero
	// means 2s.
	Interval time.Duration
	// FilterBin and DashboardBin are prebuilt binaries. Empty means build
	// ./cmd/g0efilter and ./cmd/dashboard with go build.
	FilterBin, DashboardBin string
	// Keep keeps the temporary directory at exit.
	Keep bool
	// RootPrefix starts the printed commands that need root ("sudo " or
	// nothing, see rootPrefix).
	RootPrefix string
	// Out receives progress and the instructions. Nil means discard.
	Out io.Writer
	// Ready, when not nil, is called once everything is up.
	Ready func(Info)
}

// Info describes a sandbox that is up.
type Info struct {
	// Dashboard is the dashboard's URL on the machine's loopback.
	Dashboard string
	// Box and Net are the namespaces' names.
	Box, Net string
	// Dir is the temporary directory: policy, CA, logs.
	Dir string
	// User and Password sign in to the dashboard: an operator account the
	// sandbox made, with a new random password each run.
	User, Password string
	// Filter is the g0efilter binary, for its suggest command.
	Filter string
}

func main() {
	os.Exit(mainCode(os.Args[1:], os.Stdout, os.Stderr))
}

func mainCode(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.Int("port", defaultHostPort, "the machine's loopback `port` for the dashboard")
	var cfg config
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop after this long; 0 runs until Ctrl-C")
	fs.DurationVar(&cfg.Interval, "interval", defaultInterval, "how often the traffic generator tries its targets")
	fs.StringVar(&cfg.FilterBin, "g0efilter", "", "a prebuilt g0efilter `binary` (default: go build ./cmd/g0efilter)")
	fs.StringVar(&cfg.DashboardBin, "dashboard", "", "a prebuilt dashboard `binary` (default: go build ./cmd/dashboard)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the temporary directory (logs, policy, CA) at exit")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sandbox: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	if *port < 0 || *port > 65535 {
		fmt.Fprintf(stderr, "sandbox: -port %d: want 0 to 65535\n", *port)
		return exitUsage
	}
	if cfg.Duration < 0 || cfg.Interval <= 0 {
		fmt.Fprintln(stderr, "sandbox: -duration must be 0 or more and -interval more than 0")
		return exitUsage
	}
	cfg.Listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(*port))
	cfg.RootPrefix = rootPrefix(os.Getenv, exec.LookPath)

	// The signals stay caught until run returns, so that a second Ctrl-C
	// does not cut the teardown short. SIGPIPE is ignored: a closed output
	// pipe makes writes fail, which stops the sandbox (stopOnError, and
	// watchOutput for a pipe closed while nothing is written), instead of
	// killing it mid-teardown.
	signal.Ignore(syscall.SIGPIPE)
	sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancelCause(sigCtx)
	defer cancel(nil)
	outputClosed := func(err error) {
		fmt.Fprintf(stderr, "sandbox: output closed (%v); stopping\n", err)
		cancel(err)
	}
	cfg.Out = &stopOnError{w: stdout, stop: outputClosed}
	if f, ok := stdout.(*os.File); ok {
		go watchOutput(ctx, f, outputClosed)
	}
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "sandbox: %v\n", err)
		return exitFailure
	}
	return exitOK
}
