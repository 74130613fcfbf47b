//go:build !linux

package nflog

import (
	"context"
	"fmt"
	"runtime"
)

// Run returns [ErrUnsupported] on this operating system.
func (r *Reader) Run(ctx context.Context) error {
	return fmt.Errorf("%w (GOOS=%s)", ErrUnsupported, runtime.GOOS)
}
