package events

import (
	"math/rand/v2"
	"sync/atomic"
)

// lastFlow starts at a random point, so that flow IDs of different processes,
// or of one filter before and after a restart, are unlikely to collide.
var lastFlow = func() *atomic.Uint64 {
	var n atomic.Uint64
	n.Store(rand.Uint64())
	return &n
}()

// NewFlowID returns a non-zero number that no other call in this process
// returns (until 2⁶⁴ calls have been made), for [Event.Flow]. It is one
// atomic addition: cheap enough for every connection and query.
func NewFlowID() uint64 {
	for {
		if id := lastFlow.Add(1); id != 0 {
			return id
		}
	}
}
