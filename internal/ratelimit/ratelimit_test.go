package ratelimit

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestLimiterPerKey(t *testing.T) {
	l := New[string](10, 2)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for range 2 {
		_, ok := l.Allow("a", now)
		assert.True(t, ok, "within the burst")
	}
	wait, ok := l.Allow("a", now)
	assert.False(t, ok)
	assert.Equal(t, 100*time.Millisecond, wait, "one token every 100ms")
	assert.Equal(t, 100*time.Millisecond, l.Wait("a", now))
	_, ok = l.Allow("b", now)
	assert.True(t, ok, "another key has its own bucket")
	_, ok = l.Allow("a", now.Add(100*time.Millisecond))
	assert.True(t, ok, "refilled")
}

func TestLimiterForgetsIdleClients(t *testing.T) {
	l := New[string](10, 1)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for i := range 100 {
		_, ok := l.Allow(fmt.Sprint("client-", i), now)
		assert.True(t, ok)
	}
	_, ok := l.Allow("client-0", now)
	assert.False(t, ok)
	now = now.Add(l.idle + time.Second)
	_, ok = l.Allow("client-0", now)
	assert.True(t, ok)
	assert.Equal(t, 1, l.keys())
}
