//go:build !linux

package sni

import (
	"io"
	"net"
)

// copyN copies up to n bytes from src to dst, fewer without an error if src
// ends first.
func copyN(dst, src net.Conn, n int64) (int64, error) {
	return io.Copy(dst, &io.LimitedReader{R: src, N: n})
}
