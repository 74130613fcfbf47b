package events

import (
	"context"
	"sync"
	"sync/atomic"
)

// DefaultQueueSize is the capacity of a [Queue] made with size zero.
const DefaultQueueSize = 1024

// Queue is a bounded asynchronous Sink in front of a slower one. Emit puts
// the event in a buffer and returns at once; one goroutine hands the events
// to the next sink, in the order they were emitted. When the buffer is full
// the event is dropped and counted: the data path never waits for the
// dashboard, a file or Gotify.
//
// A Queue must be made with [NewQueue] and should be ended with
// [Queue.Close].
type Queue struct {
	next    Sink
	ch      chan Event
	dropped atomic.Uint64

	// state holds the stateClosed and stateShut flags and, below them,
	// the number of Emits under way. ch is closed (and stateShut set) by
	// whichever of Close and the Emits finds stateClosed set and no Emit
	// under way, so never while an Emit may send on it.
	state atomic.Int64

	quit     chan struct{} // closed when Close gives up waiting
	quitOnce sync.Once
	done     chan struct{} // closed when the goroutine has ended
}

const (
	stateClosed = 1 << 62 // Close was called: Emit drops
	stateShut   = 1 << 61 // ch is closed
)

var _ Sink = (*Queue)(nil)

// NewQueue starts a Queue holding up to size events for next. A size of zero
// or less means [DefaultQueueSize]; a nil next means [Discard].
func NewQueue(next Sink, size int) *Queue {
	if size <= 0 {
		size = DefaultQueueSize
	}
	if next == nil {
		next = Discard
	}
	q := &Queue{
		next: next,
		ch:   make(chan Event, size),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	go q.run()
	return q
}

// Emit queues e for the next sink without waiting. If the queue is full or
// closed, e is dropped and counted in [Queue.Dropped].
func (q *Queue) Emit(e Event) {
	if q.state.Add(1)&stateClosed == 0 {
		select {
		case q.ch <- e:
		default:
			q.dropped.Add(1)
		}
	} else {
		q.dropped.Add(1)
	}
	if q.state.Add(-1) == stateClosed {
		q.shut()
	}
}

// shut closes ch once Close has been called and no Emit is in flight.
func (q *Queue) shut() {
	if q.state.CompareAndSwap(stateClosed, stateClosed|stateShut) {
		close(q.ch)
	}
}

// Dropped returns how many events were not delivered: emitted to a full or
// closed queue, or still queued when Close gave up.
func (q *Queue) Dropped() uint64 { return q.dropped.Load() }

// Close stops accepting events and waits until every event already queued
// has been delivered. If ctx ends first, the event being delivered is let
// finish, the rest are dropped (and counted), and Close returns ctx.Err().
// Either way Close returns only when the queue's goroutine has ended, so it
// waits as long as one Emit of the next sink may take. Calling Close again
// waits in the same way and returns nil once the goroutine has ended.
func (q *Queue) Close(ctx context.Context) error {
	q.state.Or(stateClosed)
	q.shut()
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
	}
	select {
	case <-q.done: // finished as ctx ended
		return nil
	default:
	}
	q.quitOnce.Do(func() { close(q.quit) })
	<-q.done
	return ctx.Err()
}

func (q *Queue) run() {
	defer close(q.done)
	for e := range q.ch {
		select {
		case <-q.quit:
			q.dropped.Add(1)
			continue // ch is closed: drain it, counting what is left
		default:
		}
		q.next.Emit(e)
	}
}
