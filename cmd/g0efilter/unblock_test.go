package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/policy"
)

func TestPolicyAdderRefusesListsFromTheEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte("allowlist:\n  domains: [\"a.example\"]\n"), 0o644))
	a := policyAdder{
		editor:  &policy.Editor{Path: path},
		domains: &policy.List{Name: "ALLOWLIST_DOMAINS", Value: "a.example"},
	}
	_, err := a.AddDomain("b.example")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ALLOWLIST_DOMAINS")

	added, err := a.AddIP("198.51.100.7")
	require.NoError(t, err, "the IPs still come from the file")
	assert.True(t, added)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(b), "198.51.100.7")
	assert.NotContains(t, string(b), "b.example")
}
