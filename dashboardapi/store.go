package dashboardapi

import (
	"context"
	"errors"
	"strings"

	"github.com/g0lab/g0efilter/events"
)

// ErrClosed is returned by a store's methods after Close.
var ErrClosed = errors.New("dashboardapi: store closed")

// Store keeps the events a [Server] ingests. [MemoryStore] (the default)
// and [SQLiteStore] implement it; both pass the same test suite. A Store
// is safe for concurrent use.
type Store interface {
	// Append stores evs, in order, giving each the next ID. IDs grow by one
	// per event and are never reused, not even after Clear.
	Append(ctx context.Context, evs []events.Event) error
	// Query returns the records that match q, oldest first, and whether the
	// limit left out more that match (see [Query.Oldest]).
	Query(ctx context.Context, q Query) (recs []Record, more bool, err error)
	// Clear removes every record and returns how many there were. IDs go
	// on from where they were.
	Clear(ctx context.Context) (int, error)
	// Stats describes what the store holds.
	Stats(ctx context.Context) (Stats, error)
	// Close releases the store. Calls after it fail with [ErrClosed].
	Close() error
}

// Stats describes a store's content.
type Stats struct {
	// Count is how many records it holds.
	Count int
	// LastID is the newest ID given, 0 before the first event; it stays
	// after Clear and after the record is dropped by retention.
	LastID uint64
}

// Query selects records. Its zero value matches every record.
type Query struct {
	// After keeps only records with a greater ID.
	After uint64
	// Before, when not zero, keeps only records with a smaller ID.
	Before uint64
	// Action, when not zero, keeps only that verdict.
	Action events.Action
	// Component, when not empty, keeps only that component.
	Component events.Component
	// Text, when not empty, keeps only records whose filter host, name,
	// source or destination address, reason or rule contains it, ignoring
	// ASCII case: the fields the dashboard's page searches.
	Text string
	// Limit is the most records returned; zero or less means no limit.
	Limit int
	// Oldest chooses which records the limit keeps: false (the default)
	// keeps the newest, for a page that ends at Before or at the newest
	// record; true keeps the oldest, for reading on from After.
	Oldest bool
}

// match reports whether r passes q's filters (not its ID bounds).
func (q *Query) match(r *Record) bool {
	e := &r.Event
	if q.Action != 0 && e.Action != q.Action {
		return false
	}
	if q.Component != "" && e.Component != q.Component {
		return false
	}
	if q.Text == "" {
		return true
	}
	t := asciiLower(q.Text)
	if containsFold(e.Host, t) || containsFold(e.Name, t) ||
		containsFold(string(e.Reason), t) || containsFold(e.Rule, t) {
		return true
	}
	for _, ap := range [...]string{addrString(e.Source), addrString(e.Destination)} {
		if ap != "" && strings.Contains(ap, t) {
			return true
		}
	}
	return false
}

func containsFold(s, lowerSub string) bool {
	return strings.Contains(asciiLower(s), lowerSub)
}

// asciiLower lowers ASCII letters only, as SQLite's lower() does, so that
// both stores search alike.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
