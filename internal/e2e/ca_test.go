package e2e

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSharedCA(t *testing.T) {
	ca, err := SharedCA()
	require.NoError(t, err)
	again, err := SharedCA()
	require.NoError(t, err)
	assert.Same(t, ca, again, "one CA per test binary")
}
