package dashboardapi

import (
	"context"
	"net/netip"
	"slices"
	"sync"

	"github.com/g0lab/g0efilter/events"
)

// DefaultBufferSize is the capacity of a [MemoryStore] made with size zero
// (BUFFER_SIZE).
const DefaultBufferSize = 5000

// MemoryStore keeps the newest events in a ring buffer; when it is full,
// each new event pushes out the oldest. Nothing survives a restart. Make it
// with [NewMemoryStore].
type MemoryStore struct {
	mu     sync.RWMutex
	ring   []Record
	start  int    // index of the oldest record
	n      int    // records held
	lastID uint64 // ID of the newest record given
	closed bool
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore makes a store holding up to size events. Zero or less
// means [DefaultBufferSize].
func NewMemoryStore(size int) *MemoryStore {
	if size <= 0 {
		size = DefaultBufferSize
	}
	return &MemoryStore{ring: make([]Record, size)}
}

// Append implements [Store].
func (m *MemoryStore) Append(_ context.Context, evs []events.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	size := len(m.ring)
	for _, e := range evs {
		m.lastID++
		i := (m.start + m.n) % size
		m.ring[i] = Record{ID: m.lastID, Event: e}
		if m.n < size {
			m.n++
		} else {
			m.start = (m.start + 1) % size
		}
	}
	return nil
}

// at returns the record k places after the oldest.
func (m *MemoryStore) at(k int) *Record {
	return &m.ring[(m.start+k)%len(m.ring)]
}

// Query implements [Store].
func (m *MemoryStore) Query(_ context.Context, q Query) ([]Record, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, false, ErrClosed
	}
	if m.n == 0 {
		return nil, false, nil
	}
	// IDs in the ring are consecutive, so an ID bound is a position.
	oldest := m.lastID - uint64(m.n) + 1
	lo, hi := 0, m.n // positions [lo, hi)
	if q.After >= oldest {
		lo = int(min(q.After-oldest+1, uint64(m.n)))
	}
	if q.Before != 0 {
		if q.Before <= oldest {
			return nil, false, nil
		}
		hi = int(min(q.Before-oldest, uint64(m.n)))
	}
	var out []Record
	full := func() bool { return q.Limit > 0 && len(out) == q.Limit }
	if q.Oldest {
		for k := lo; k < hi; k++ {
			if r := m.at(k); q.match(r) {
				if full() {
					return out, true, nil
				}
				out = append(out, *r)
			}
		}
		return out, false, nil
	}
	for k := hi - 1; k >= lo; k-- {
		if r := m.at(k); q.match(r) {
			if full() {
				slices.Reverse(out)
				return out, true, nil
			}
			out = append(out, *r)
		}
	}
	slices.Reverse(out)
	return out, false, nil
}

// Clear implements [Store].
func (m *MemoryStore) Clear(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	n := m.n
	clear(m.ring)
	m.start, m.n = 0, 0
	return n, nil
}

// Stats implements [Store].
func (m *MemoryStore) Stats(context.Context) (Stats, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return Stats{}, ErrClosed
	}
	return Stats{Count: m.n, LastID: m.lastID}, nil
}

// Close implements [Store]; it drops the records.
func (m *MemoryStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.ring = nil
	return nil
}

func addrString(ap netip.AddrPort) string {
	if !ap.Addr().IsValid() {
		return ""
	}
	return ap.Addr().String()
}
