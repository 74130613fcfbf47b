//go:build !linux

package main

import (
	"fmt"
	"runtime"
	"syscall"
)

func markControl(uint32) func(network, address string, c syscall.RawConn) error {
	return func(string, string, syscall.RawConn) error {
		return fmt.Errorf("SO_MARK is not supported on %s", runtime.GOOS)
	}
}
