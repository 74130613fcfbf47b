package testbed

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
)

// GoBuild builds the package pkg into the file out with "go build", which
// must be in PATH, run in the current directory (inside this module).
func GoBuild(ctx context.Context, out, pkg string) error {
	var buf bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w: %s", pkg, err, bytes.TrimSpace(buf.Bytes()))
	}
	return nil
}
