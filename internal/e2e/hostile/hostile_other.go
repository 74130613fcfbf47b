//go:build !linux

package main

import (
	"fmt"
	"net/netip"
	"runtime"
)

// errUnsupported is the error of the subcommands that need Linux.
var errUnsupported = fmt.Errorf("not implemented on %s", runtime.GOOS)

func caps() (string, error)      { return "", errUnsupported }
func ownCgroup() (string, error) { return "", errUnsupported }
func errnoName(error) string     { return "" }

func reflect(string, netip.AddrPort, netip.AddrPort) (string, error) { return "", errUnsupported }
