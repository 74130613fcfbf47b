//go:build !linux

package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
)

// run is Linux only: the sandbox is made of network namespaces.
func run(context.Context, config) error {
	return fmt.Errorf("the sandbox needs Linux (network namespaces), not %s", runtime.GOOS)
}

// watchOutput has nothing to watch where the sandbox does not run.
func watchOutput(context.Context, *os.File, func(error)) {}
