package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUsage(t *testing.T) {
	tests := [][]string{
		nil,
		{"nope"},
		{"tcp"},
		{"tcp", "-addr", "example.test:80"},
		{"tcp", "-addr", "198.18.0.2:80", "-mark", "x"},
		{"udp", "-addr", "198.18.0.2:80", "-timeout", "0s"},
		{"udp", "-addr", "198.18.0.2:80", "extra"},
		{"raw", "-ifname", "veth0", "-dstmac", "02:00:00:00:00:02", "-src", "198.18.0.1", "-dst", "fd00:18::2", "-port", "9"},
		{"raw", "-ifname", "veth0", "-dstmac", "zz", "-src", "198.18.0.1", "-dst", "198.18.0.2", "-port", "9"},
		{"raw", "-ifname", "veth0", "-dstmac", "02:00:00:00:00:02", "-src", "198.18.0.1", "-dst", "198.18.0.2"},
		{"raw", "-dstmac", "02:00:00:00:00:02", "-src", "198.18.0.1", "-dst", "198.18.0.2", "-port", "9"},
		{"caps", "-x"},
	}
	for _, args := range tests {
		var stdout, stderr bytes.Buffer
		code := run(args, &stdout, &stderr)
		assert.Equal(t, exitUsage, code, "%q", args)
		assert.Regexp(t, `^err usage: [^\n]*\n$`, stdout.String(), "%q", args)
	}
}
