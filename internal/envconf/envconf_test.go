package envconf

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParser(t *testing.T) {
	p := Parser{Lookup: lookup(map[string]string{
		"LEVEL": " warning ", "SIZE": "12", "ON": "TRUE", "BLANK": "  ",
		"BAD_LEVEL": "loud", "BAD_SIZE": "0", "BAD_ON": "yes please",
	})}
	assert.Equal(t, slog.LevelWarn, p.Level("LEVEL"))
	assert.Equal(t, 12, p.Positive("SIZE", 5))
	assert.True(t, p.Bool("ON", false))
	assert.Equal(t, 5, p.Positive("BLANK", 5), "blank is unset")
	assert.Equal(t, 5, p.Positive("UNSET", 5))
	require.NoError(t, p.Err())

	assert.Equal(t, slog.LevelInfo, p.Level("BAD_LEVEL"))
	assert.Equal(t, 7, p.Positive("BAD_SIZE", 7))
	assert.True(t, p.Bool("BAD_ON", true))
	err := p.Err()
	require.Error(t, err)
	var names []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ee *Error
		require.True(t, errors.As(e, &ee))
		names = append(names, ee.Name)
	}
	assert.Equal(t, []string{"BAD_LEVEL", "BAD_SIZE", "BAD_ON"}, names, "every invalid variable, in order")
	assert.Contains(t, err.Error(), `BAD_SIZE="0": want a positive whole number`)
}
