package events

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMulti(t *testing.T) {
	var a, b, c recorder
	m := Multi(&a, nil, Multi(&b, &c))
	require.IsType(t, multi{}, m)
	assert.Len(t, m.(multi), 3, "nested Multi is flattened, nil skipped")
	m.Emit(Event{Flow: 7})
	for _, r := range []*recorder{&a, &b, &c} {
		assert.Equal(t, []uint64{7}, r.flows())
	}
}

func TestMultiFew(t *testing.T) {
	var a recorder
	assert.Same(t, &a, Multi(nil, &a), "one sink is returned as is")
	assert.NotPanics(t, func() { Multi().Emit(Event{}) })
	assert.NotPanics(t, func() { Multi(nil, nil).Emit(Event{}) })
}

func TestNewFlowID(t *testing.T) {
	seen := map[uint64]bool{}
	for range 10000 {
		id := NewFlowID()
		require.NotZero(t, id)
		require.False(t, seen[id], "duplicate %d", id)
		seen[id] = true
	}
}

func TestNewFlowIDSkipsZero(t *testing.T) {
	saved := lastFlow.Load()
	defer lastFlow.Store(saved)
	lastFlow.Store(^uint64(0) - 1)
	assert.Equal(t, ^uint64(0), NewFlowID())
	assert.Equal(t, uint64(1), NewFlowID())
}

func BenchmarkNewFlowID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		NewFlowID()
	}
}
