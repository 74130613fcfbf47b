package nflog_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/events/nflog"
)

func ExampleDecode() {
	// A TCP SYN as a "log group 100" statement delivered it, cut after
	// the ports: the IPv4 header, then the TCP source and destination
	// ports.
	payload, _ := hex.DecodeString("4500003c50d2400040065dc1c6120001c6120003" + "a02c1b58")
	p, err := nflog.Decode(payload)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Protocol(), p.Source, "->", p.Destination)
	// Output: tcp 198.18.0.1:41004 -> 198.18.0.3:7000
}

func ExampleReader() {
	r := &nflog.Reader{
		Group:  100, // nftrules.Config.NflogGroup
		Host:   "web-1",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
		Sink: events.SinkFunc(func(e events.Event) {
			fmt.Println(e.Action, e.Protocol, e.Source, "->", e.Destination)
		}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		if err := r.Run(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	// ... until shutdown: cancel() stops the Reader.
}
