package sni

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// tcpPair returns the two ends of a TCP connection on loopback.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	b, err := ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

func TestCopyN(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	tests := []struct {
		name  string
		pipe2 func([]int, int) error
		kept  int // pipes kept for reuse after the copy
	}{
		{"splice", unix.Pipe2, 1},
		{"out of descriptors, through memory", func([]int, int) error { return unix.EMFILE }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for drained := false; !drained; {
				select {
				case p := <-idlePipes:
					p.close()
				default:
					drained = true
				}
			}
			pipe2 = tt.pipe2
			defer func() { pipe2 = unix.Pipe2 }()

			client, in := tcpPair(t)
			out, server := tcpPair(t)
			go func() {
				client.Write(data)
				client.CloseWrite()
			}()
			// Up to a limit, then to the end of the stream.
			n, err := copyN(out, in, 1000)
			require.NoError(t, err)
			require.Equal(t, int64(1000), n)
			n, err = copyN(out, in, 2<<20)
			require.NoError(t, err)
			require.Equal(t, int64(len(data)-1000), n)
			out.CloseWrite()
			got, err := io.ReadAll(server)
			require.NoError(t, err)
			require.Equal(t, data, got)
			require.Len(t, idlePipes, tt.kept)
		})
	}
}
