package events

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is a Sink that keeps what it receives.
type recorder struct {
	mu  sync.Mutex
	got []Event
}

func (r *recorder) Emit(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, e)
}

func (r *recorder) flows() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]uint64, len(r.got))
	for i, e := range r.got {
		out[i] = e.Flow
	}
	return out
}

// gate is a Sink that records, but holds the first event until released.
type gate struct {
	recorder
	started chan struct{} // closed when the first event arrives
	release chan struct{} // close to let it go
	once    sync.Once
}

func newGate() *gate {
	return &gate{started: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) Emit(e Event) {
	g.once.Do(func() {
		close(g.started)
		<-g.release
	})
	g.recorder.Emit(e)
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestQueueOverflowCountsDrops(t *testing.T) {
	const size = 8
	next := newGate()
	q := NewQueue(next, size)
	q.Emit(Event{Flow: 1})
	<-next.started // the goroutine holds event 1; the buffer is empty
	for i := uint64(2); i <= size+1+5; i++ {
		q.Emit(Event{Flow: i})
	}
	assert.Equal(t, uint64(5), q.Dropped())
	close(next.release)
	require.NoError(t, q.Close(context.Background()))
	assert.Equal(t, seq(1, size+1), next.flows(), "delivered in order, the overflow dropped")
	assert.Equal(t, uint64(5), q.Dropped())
}

func TestQueueFlushesOnClose(t *testing.T) {
	var next recorder
	q := NewQueue(&next, 0)
	for i := uint64(1); i <= 1000; i++ {
		q.Emit(Event{Flow: i})
	}
	require.NoError(t, q.Close(context.Background()))
	assert.Equal(t, seq(1, 1000), next.flows())
	assert.Zero(t, q.Dropped())
}

func TestQueueEmitAfterClose(t *testing.T) {
	var next recorder
	q := NewQueue(&next, 1)
	require.NoError(t, q.Close(context.Background()))
	q.Emit(Event{Flow: 1})
	assert.Equal(t, uint64(1), q.Dropped())
	assert.Empty(t, next.flows())
	require.NoError(t, q.Close(context.Background()), "Close again")
}

func TestQueueCloseExpiredContext(t *testing.T) {
	next := newGate()
	q := NewQueue(next, 10)
	for i := uint64(1); i <= 5; i++ {
		q.Emit(Event{Flow: i})
	}
	<-next.started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	closed := make(chan error)
	go func() { closed <- q.Close(ctx) }()
	<-q.quit // Close gave up waiting
	close(next.release)
	require.ErrorIs(t, <-closed, context.Canceled)
	assert.Equal(t, []uint64{1}, next.flows(), "the event in delivery finishes, no more")
	assert.Equal(t, uint64(4), q.Dropped())
}

func TestQueueConcurrentEmit(t *testing.T) {
	const writers, each = 8, 500
	var next recorder
	q := NewQueue(&next, 64)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				q.Emit(Event{Flow: uint64(w*each + i)})
			}
		})
	}
	closeDone := make(chan error)
	go func() {
		wg.Wait()
		closeDone <- q.Close(context.Background())
	}()
	require.NoError(t, <-closeDone)
	assert.Equal(t, uint64(writers*each), uint64(len(next.flows()))+q.Dropped())
	// Each writer's events stay in its order.
	last := map[uint64]uint64{}
	for _, f := range next.flows() {
		w := f / each
		if prev, ok := last[w]; ok {
			assert.Less(t, prev, f)
		}
		last[w] = f
	}
}

// TestQueueEmitRacesClose emits from several goroutines while two Closes
// run, round after round. No Emit may send on a closed channel (a panic),
// and every event must be delivered or counted as dropped.
func TestQueueEmitRacesClose(t *testing.T) {
	const rounds, writers, each = 200, 4, 100
	for range rounds {
		var delivered atomic.Uint64
		q := NewQueue(SinkFunc(func(Event) { delivered.Add(1) }), 16)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range writers {
			wg.Go(func() {
				<-start
				for range each {
					q.Emit(Event{})
				}
			})
		}
		for range 2 {
			wg.Go(func() {
				<-start
				assert.NoError(t, q.Close(context.Background()))
			})
		}
		close(start)
		wg.Wait()
		require.Equal(t, uint64(writers*each), delivered.Load()+q.Dropped())
	}
}

func TestBatchQueue(t *testing.T) {
	next := newGate()
	var sizes []int
	q := NewBatchQueue(func(b []Event) {
		sizes = append(sizes, len(b))
		for _, e := range b {
			next.Emit(e)
		}
	}, 100, 4)
	q.Emit(Event{Flow: 1})
	<-next.started // the goroutine holds a batch of one
	for i := uint64(2); i <= 11; i++ {
		q.Emit(Event{Flow: i})
	}
	close(next.release)
	require.NoError(t, q.Close(context.Background()))
	assert.Equal(t, seq(1, 11), next.flows())
	assert.Equal(t, []int{1, 4, 4, 2}, sizes, "what waits, at most 4 at a time")
}

func TestQueueNilNext(t *testing.T) {
	q := NewQueue(nil, 0)
	q.Emit(Event{})
	require.NoError(t, q.Close(context.Background()))
	assert.Zero(t, q.Dropped())
	assert.Equal(t, DefaultQueueSize, cap(q.ch))
}

// BenchmarkQueueEmit measures Emit from parallel emitters (-cpu sets how
// many). In drain, the queue's goroutine discards what it takes, as fast as
// it can; in full, it is held and every Emit finds the buffer full, which
// leaves the cost of Emit's own bookkeeping. drops/op is the share of
// events dropped.
func BenchmarkQueueEmit(b *testing.B) {
	e := Event{Component: HTTPS, Action: Blocked, Name: "evil.example"}
	b.Run("drain", func(b *testing.B) {
		benchEmit(b, NewQueue(Discard, 0), e)
	})
	b.Run("full", func(b *testing.B) {
		next := newGate()
		q := NewQueue(next, 1)
		q.Emit(e)
		<-next.started // the goroutine holds it
		q.Emit(e)      // and this one fills the buffer
		defer close(next.release)
		benchEmit(b, q, e)
	})
}

func benchEmit(b *testing.B, q *Queue, e Event) {
	before := q.Dropped()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			q.Emit(e)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(q.Dropped()-before)/float64(b.N), "drops/op")
	go q.Close(context.Background()) // ends once the gate is released
}
