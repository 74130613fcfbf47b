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
// on, in the order they were emitted. When the buffer is full the event is
// dropped and counted: the data path never waits for the dashboard, a file
// or Gotify.
//
// A Queue must be made with [NewQueue] or [NewBatchQueue] and should be
// ended with [Queue.Close].
type Queue struct {
	deliver func([]Event)
	batch   int // the most events handed to deliver at once
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
	if next == nil {
		next = Discard
	}
	return NewBatchQueue(func(b []Event) { next.Emit(b[0]) }, size, 1)
}

// NewBatchQueue starts a Queue holding up to size events for a consumer
// that takes them in batches, such as one that ships them over the
// network. Each call of deliver gets the events waiting at that moment, in
// order, at least one and at most batch; deliver must not keep the slice.
// A size or batch of zero or less means [DefaultQueueSize] or 1.
func NewBatchQueue(deliver func(batch []Event), size, batch int) *Queue {
	if size <= 0 {
		size = DefaultQueueSize
	}
	q := &Queue{
		deliver: deliver,
		batch:   max(batch, 1),
		ch:      make(chan Event, size),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go q.run()
	return q
}

// Emit queues e without waiting. If the queue is full or closed, e is
// dropped and counted in [Queue.Dropped].
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
// has been delivered. If ctx ends first, the batch being delivered is let
// finish, the rest are dropped (and counted), and Close returns ctx.Err().
// Either way Close returns only when the queue's goroutine has ended, so it
// waits as long as one delivery may take. Calling Close again waits in the
// same way and returns nil once the goroutine has ended.
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
	batch := make([]Event, 0, q.batch)
	for e := range q.ch {
		batch = append(batch[:0], e)
	fill:
		for len(batch) < q.batch {
			select {
			case e, ok := <-q.ch:
				if !ok {
					break fill
				}
				batch = append(batch, e)
			default:
				break fill
			}
		}
		select {
		case <-q.quit:
			q.dropped.Add(uint64(len(batch)))
			continue // ch is closed: drain it, counting what is left
		default:
		}
		q.deliver(batch)
	}
}
