package g0efilter_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The README names the Go version the module needs (go.mod's go line),
// wherever it names one.
func TestReadmeGoVersion(t *testing.T) {
	mod, err := os.ReadFile("go.mod")
	require.NoError(t, err)
	goLine := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	require.NotNil(t, goLine, "go.mod has no go line")
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	named := regexp.MustCompile(`Go (1\.\d+(?:\.\d+)?)\b|needs (1\.\d+(?:\.\d+)?)\b`).FindAllStringSubmatch(string(readme), -1)
	require.NotEmpty(t, named, "the README names no Go version")
	for _, m := range named {
		v := m[1] + m[2]
		assert.Equal(t, string(goLine[1]), v, "README: %q", m[0])
	}
}
