package dashboardapi

import (
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/events"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// ev makes a test event; i varies the name and time.
func ev(i int, action events.Action, comp events.Component) events.Event {
	reason, rule := events.ReasonNotAllowlisted, ""
	if action == events.Allowed {
		reason, rule = events.ReasonAllowlisted, "*.example"
	}
	return events.Event{
		Time:        t0.Add(time.Duration(i) * time.Second),
		Host:        "web-1",
		Component:   comp,
		Action:      action,
		Protocol:    "tcp",
		Source:      netip.MustParseAddrPort("198.18.0.1:40000"),
		Destination: netip.MustParseAddrPort("198.51.100.14:443"),
		Name:        fmt.Sprintf("n%d.example", i),
		Reason:      reason,
		Rule:        rule,
	}
}

func names(recs []Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Event.Name
	}
	return out
}

func ids(recs []Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// storeMaker makes an empty store holding at most size events.
type storeMaker func(t *testing.T, size int) Store

func memoryMaker(t *testing.T, size int) Store {
	s := NewMemoryStore(size)
	t.Cleanup(func() { s.Close() })
	return s
}

func sqliteMaker(t *testing.T, size int) Store {
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "events.db"), SQLiteConfig{MaxEvents: size})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestMemoryStore(t *testing.T) { storeSuite(t, memoryMaker) }
func TestSQLiteStore(t *testing.T) { storeSuite(t, sqliteMaker) }

// storeSuite is what every Store must do.
func storeSuite(t *testing.T, mk storeMaker) {
	ctx := context.Background()

	t.Run("empty", func(t *testing.T) {
		s := mk(t, 10)
		recs, more, err := s.Query(ctx, Query{})
		require.NoError(t, err)
		assert.Empty(t, recs)
		assert.False(t, more)
		st, err := s.Stats(ctx)
		require.NoError(t, err)
		assert.Equal(t, Stats{}, st)
	})

	t.Run("round trip keeps every field", func(t *testing.T) {
		s := mk(t, 10)
		e := ev(1, events.Blocked, events.DNS)
		e.Time = time.Date(2026, 11, 24, 21, 52, 26, 123456789, time.UTC)
		e.QType, e.Detail, e.Rule, e.Flow = "AAAA", "detail <b>", "*.example", 1<<63+5
		e.Source = netip.MustParseAddrPort("[2001:db8::2]:5353")
		require.NoError(t, s.Append(ctx, []events.Event{e}))
		recs, _, err := s.Query(ctx, Query{})
		require.NoError(t, err)
		require.Len(t, recs, 1)
		assert.Equal(t, uint64(1), recs[0].ID)
		assert.Equal(t, e, recs[0].Event)
	})

	t.Run("ids grow and limits pick newest or oldest", func(t *testing.T) {
		s := mk(t, 100)
		var batch []events.Event
		for i := 1; i <= 10; i++ {
			batch = append(batch, ev(i, events.Allowed, events.HTTPS))
		}
		require.NoError(t, s.Append(ctx, batch[:4]))
		require.NoError(t, s.Append(ctx, batch[4:]))

		recs, more, err := s.Query(ctx, Query{Limit: 3})
		require.NoError(t, err)
		assert.Equal(t, []uint64{8, 9, 10}, ids(recs))
		assert.True(t, more)

		recs, more, err = s.Query(ctx, Query{Limit: 3, Before: 8})
		require.NoError(t, err)
		assert.Equal(t, []uint64{5, 6, 7}, ids(recs))
		assert.True(t, more)

		recs, more, err = s.Query(ctx, Query{After: 2, Limit: 3, Oldest: true})
		require.NoError(t, err)
		assert.Equal(t, []uint64{3, 4, 5}, ids(recs))
		assert.True(t, more)

		recs, more, err = s.Query(ctx, Query{After: 7, Limit: 3, Oldest: true})
		require.NoError(t, err)
		assert.Equal(t, []uint64{8, 9, 10}, ids(recs))
		assert.False(t, more)

		recs, more, err = s.Query(ctx, Query{After: 3, Before: 6})
		require.NoError(t, err)
		assert.Equal(t, []uint64{4, 5}, ids(recs))
		assert.False(t, more)

		recs, _, err = s.Query(ctx, Query{After: 10})
		require.NoError(t, err)
		assert.Empty(t, recs)
		recs, _, err = s.Query(ctx, Query{Before: 1})
		require.NoError(t, err)
		assert.Empty(t, recs)

		st, err := s.Stats(ctx)
		require.NoError(t, err)
		assert.Equal(t, Stats{Count: 10, LastID: 10}, st)
	})

	t.Run("filters", func(t *testing.T) {
		s := mk(t, 100)
		a := ev(1, events.Allowed, events.HTTPS)
		b := ev(2, events.Blocked, events.DNS)
		b.Name, b.Host = "Evil.Example", "db-2"
		c := ev(3, events.Blocked, events.Kernel)
		c.Name, c.Destination = "", netip.MustParseAddrPort("[2001:db8::53]:853")
		d := ev(4, events.Error, events.HTTP)
		d.Source = netip.AddrPort{}
		require.NoError(t, s.Append(ctx, []events.Event{a, b, c, d}))

		for _, tc := range []struct {
			name string
			q    Query
			want []uint64
		}{
			{"action", Query{Action: events.Blocked}, []uint64{2, 3}},
			{"component", Query{Component: events.DNS}, []uint64{2}},
			{"both", Query{Action: events.Blocked, Component: events.Kernel}, []uint64{3}},
			{"name ignoring case", Query{Text: "EVIL"}, []uint64{2}},
			{"filter host", Query{Text: "db-2"}, []uint64{2}},
			{"destination ip", Query{Text: "2001:db8::53"}, []uint64{3}},
			{"source ip", Query{Text: "198.18.0.1"}, []uint64{1, 2, 3}},
			// The page searches reason and rule too.
			{"reason", Query{Text: "NOT allow"}, []uint64{2, 3, 4}},
			{"rule", Query{Text: "*.EXAMPLE"}, []uint64{1}},
			{"nothing", Query{Text: "nomatch"}, nil},
			{"filter and limit", Query{Action: events.Blocked, Limit: 1}, []uint64{3}},
			{"filter, limit, oldest", Query{Action: events.Blocked, Limit: 1, Oldest: true}, []uint64{2}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				recs, _, err := s.Query(ctx, tc.q)
				require.NoError(t, err)
				if tc.want == nil {
					assert.Empty(t, recs)
				} else {
					assert.Equal(t, tc.want, ids(recs))
				}
			})
		}
	})

	t.Run("retention by count", func(t *testing.T) {
		s := mk(t, 3)
		for i := 1; i <= 5; i++ {
			require.NoError(t, s.Append(ctx, []events.Event{ev(i, events.Allowed, events.HTTPS)}))
		}
		recs, more, err := s.Query(ctx, Query{})
		require.NoError(t, err)
		assert.Equal(t, []uint64{3, 4, 5}, ids(recs))
		assert.False(t, more)
		recs, _, err = s.Query(ctx, Query{After: 1, Oldest: true, Limit: 2})
		require.NoError(t, err)
		assert.Equal(t, []uint64{3, 4}, ids(recs), "a reader left behind resumes at the oldest kept")

		// One batch larger than the store keeps its newest events.
		var batch []events.Event
		for i := 6; i <= 10; i++ {
			batch = append(batch, ev(i, events.Allowed, events.HTTPS))
		}
		require.NoError(t, s.Append(ctx, batch))
		recs, _, err = s.Query(ctx, Query{})
		require.NoError(t, err)
		assert.Equal(t, []string{"n8.example", "n9.example", "n10.example"}, names(recs))
		st, err := s.Stats(ctx)
		require.NoError(t, err)
		assert.Equal(t, Stats{Count: 3, LastID: 10}, st)
	})

	t.Run("clear keeps ids growing", func(t *testing.T) {
		s := mk(t, 10)
		require.NoError(t, s.Append(ctx, []events.Event{ev(1, events.Allowed, events.DNS), ev(2, events.Allowed, events.DNS)}))
		n, err := s.Clear(ctx)
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		st, err := s.Stats(ctx)
		require.NoError(t, err)
		assert.Equal(t, Stats{Count: 0, LastID: 2}, st)
		recs, _, err := s.Query(ctx, Query{})
		require.NoError(t, err)
		assert.Empty(t, recs)

		require.NoError(t, s.Append(ctx, []events.Event{ev(3, events.Allowed, events.DNS)}))
		recs, _, err = s.Query(ctx, Query{After: 0, Oldest: true})
		require.NoError(t, err)
		assert.Equal(t, []uint64{3}, ids(recs))
	})

	t.Run("concurrent appends give unique ids", func(t *testing.T) {
		s := mk(t, 1000)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 25 {
					assert.NoError(t, s.Append(ctx, []events.Event{ev(g*100+i, events.Allowed, events.HTTP)}))
				}
			})
		}
		wg.Wait()
		recs, _, err := s.Query(ctx, Query{})
		require.NoError(t, err)
		require.Len(t, recs, 100)
		for i, r := range recs {
			assert.Equal(t, uint64(i+1), r.ID)
		}
	})

	t.Run("closed", func(t *testing.T) {
		s := mk(t, 10)
		require.NoError(t, s.Close())
		assert.ErrorIs(t, s.Append(ctx, []events.Event{ev(1, events.Allowed, events.DNS)}), ErrClosed)
		_, _, err := s.Query(ctx, Query{})
		assert.ErrorIs(t, err, ErrClosed)
		_, err = s.Clear(ctx)
		assert.ErrorIs(t, err, ErrClosed)
		_, err = s.Stats(ctx)
		assert.ErrorIs(t, err, ErrClosed)
	})
}

func TestSQLiteSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := OpenSQLite(path, SQLiteConfig{})
	require.NoError(t, err)
	require.NoError(t, s.Append(ctx, []events.Event{ev(1, events.Blocked, events.HTTPS), ev(2, events.Allowed, events.HTTPS)}))
	_, err = s.Clear(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Append(ctx, []events.Event{ev(3, events.Blocked, events.HTTPS)}))
	require.NoError(t, s.Close())

	s, err = OpenSQLite(path, SQLiteConfig{})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Append(ctx, []events.Event{ev(4, events.Blocked, events.HTTPS)}))
	recs, _, err := s.Query(ctx, Query{})
	require.NoError(t, err)
	assert.Equal(t, []uint64{3, 4}, ids(recs), "ids are not reused after a clear and a restart")
	assert.Equal(t, []string{"n3.example", "n4.example"}, names(recs))
}

// TestSQLiteSearchesOlderDatabase opens a database made before reason and
// rule had columns: they are filled from the events, and searched.
func TestSQLiteSearchesOlderDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `CREATE TABLE events (
		id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, host TEXT NOT NULL,
		component TEXT NOT NULL, action INTEGER NOT NULL, name TEXT NOT NULL,
		src_ip TEXT NOT NULL, dst_ip TEXT NOT NULL, data BLOB NOT NULL)`)
	require.NoError(t, err)
	for i, e := range []events.Event{ev(1, events.Allowed, events.HTTPS), ev(2, events.Blocked, events.DNS)} {
		data, err := e.MarshalJSON()
		require.NoError(t, err)
		_, err = db.ExecContext(ctx, `INSERT INTO events (time, host, component, action, name, src_ip, dst_ip, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Time.UnixMilli(), e.Host, string(e.Component), int(e.Action), e.Name, "198.18.0.1", "198.51.100.14", data)
		require.NoError(t, err, "event %d", i)
	}
	require.NoError(t, db.Close())

	for range 2 { // the second time, there is nothing to migrate
		s, err := OpenSQLite(path, SQLiteConfig{})
		require.NoError(t, err)
		recs, _, err := s.Query(ctx, Query{Text: "not allowlisted"})
		require.NoError(t, err)
		assert.Equal(t, []uint64{2}, ids(recs))
		recs, _, err = s.Query(ctx, Query{Text: "*.example"})
		require.NoError(t, err)
		assert.Equal(t, []uint64{1}, ids(recs))
		require.NoError(t, s.Close())
	}
}

func TestSQLiteRetentionByAge(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	cfg := SQLiteConfig{MaxAge: 30 * time.Minute, Now: func() time.Time { return now }}
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := OpenSQLite(path, cfg)
	require.NoError(t, err)
	old, fresh := ev(0, events.Blocked, events.DNS), ev(1, events.Blocked, events.DNS)
	old.Time, fresh.Time = now.Add(-31*time.Minute), now.Add(-29*time.Minute)
	require.NoError(t, s.Append(ctx, []events.Event{old, fresh}))
	recs, _, err := s.Query(ctx, Query{})
	require.NoError(t, err)
	assert.Equal(t, []uint64{2}, ids(recs))
	require.NoError(t, s.Close())

	// Reopening later applies the retention at once.
	now = now.Add(time.Hour)
	s, err = OpenSQLite(path, cfg)
	require.NoError(t, err)
	defer s.Close()
	st, err := s.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, Stats{Count: 0, LastID: 2}, st)
}

func TestOpenSQLiteErrors(t *testing.T) {
	_, err := OpenSQLite("", SQLiteConfig{})
	assert.ErrorContains(t, err, "empty path")
	_, err = OpenSQLite(filepath.Join(t.TempDir(), "missing-dir", "events.db"), SQLiteConfig{})
	assert.Error(t, err)
}
