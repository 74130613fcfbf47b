package nsdial_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/internal/netnstest"
	"github.com/g0lab/g0efilter/internal/nsdial"
)

// TestDialerDialsInNamespace listens on loopback inside a namespace of the
// test's own, which the test's own threads cannot reach, and connects to it
// through a Dialer in that namespace.
func TestDialerDialsInNamespace(t *testing.T) {
	netnstest.Require(t, "ip")
	fd := netnstest.New(t)
	var ln net.Listener
	netnstest.Run(t, fd, func() {
		out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput()
		require.NoError(t, err, "%s", out)
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
	})
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("ns"))
			c.Close()
		}
	}()

	d, err := nsdial.New(fmt.Sprintf("/proc/self/fd/%d", fd), net.Dialer{}, 2)
	require.NoError(t, err)
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 4 {
		c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		require.NoError(t, err)
		buf := make([]byte, 2)
		_, err = c.Read(buf)
		require.NoError(t, err)
		assert.Equal(t, "ns", string(buf))
		c.Close()
	}

	_, err = d.DialContext(ctx, "tcp", "localhost:80")
	assert.ErrorContains(t, err, "want a literal IP and port")
}

func TestNewFailsOutsideANamespace(t *testing.T) {
	_, err := nsdial.New("/nonexistent/netns", net.Dialer{}, 2)
	assert.ErrorContains(t, err, "open namespace /nonexistent/netns")
}

// Dials racing Close end with net.ErrClosed or a connection, never a send
// on a closed channel (the sandbox's teardown met one: its traffic's HTTP
// transport still dialling as the Dialer closed).
func TestDialerCloseWhileDialing(t *testing.T) {
	netnstest.Require(t)
	fd := netnstest.New(t)
	d, err := nsdial.New(fmt.Sprintf("/proc/self/fd/%d", fd), net.Dialer{}, 2)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 50 {
				// Nothing listens and lo is down: each dial fails at once.
				c, err := d.DialContext(context.Background(), "tcp", "127.0.0.1:9")
				if err == nil {
					c.Close()
				}
			}
		})
	}
	time.Sleep(time.Millisecond)
	d.Close()
	wg.Wait()
	_, err = d.DialContext(context.Background(), "tcp", "127.0.0.1:9")
	assert.ErrorIs(t, err, net.ErrClosed)
}
