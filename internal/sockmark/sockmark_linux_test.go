package sockmark_test

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/internal/netnstest"
	"github.com/g0lab/g0efilter/internal/sockmark"
)

// TestControlSetsMark dials a listener on loopback and reads the mark back
// from the connected socket with Get. Setting a mark needs root.
func TestControlSetsMark(t *testing.T) {
	netnstest.Require(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()

	d := net.Dialer{Control: sockmark.Control(0x1e7)}
	c, err := d.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	mark, err := sockmark.Get(c.(*net.TCPConn))
	require.NoError(t, err)
	assert.Equal(t, uint32(0x1e7), mark)
}
