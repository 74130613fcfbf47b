package events_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/events"
)

// A full disk: every write to /dev/full fails with ENOSPC. The events are
// counted, Err says why, and nothing panics or blocks.
func TestFileFullDisk(t *testing.T) {
	f, err := events.OpenFile("/dev/full", events.FileConfig{})
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, f.Err())
	for range 3 {
		f.Emit(events.Event{Time: time.Now(), Action: events.Blocked, Component: events.HTTPS, Name: "example.org"})
	}
	assert.Equal(t, uint64(3), f.Errors())
	assert.ErrorIs(t, f.Err(), syscall.ENOSPC)
}
