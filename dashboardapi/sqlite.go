package dashboardapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/g0lab/g0efilter/events"

	_ "modernc.org/sqlite" // the pure-Go "sqlite" database/sql driver
)

// DefaultMaxEvents is how many events a [SQLiteStore] keeps when
// [SQLiteConfig.MaxEvents] is zero.
const DefaultMaxEvents = 1_000_000

// SQLiteConfig configures [OpenSQLite]. Its zero value keeps up to
// [DefaultMaxEvents] events of any age.
type SQLiteConfig struct {
	// MaxEvents is how many events are kept; older ones are deleted as new
	// ones arrive. Zero means DefaultMaxEvents; negative means no limit.
	MaxEvents int
	// MaxAge is how long an event is kept, by its time. Zero means no
	// limit.
	MaxAge time.Duration
	// Now tells the time for MaxAge. Nil means time.Now.
	Now func() time.Time
}

// SQLiteStore keeps events in an SQLite database file, so that the history
// survives restarts. It uses modernc.org/sqlite, which needs no C compiler.
// Make it with [OpenSQLite].
type SQLiteStore struct {
	db  *sql.DB
	cfg SQLiteConfig

	mu     sync.Mutex // serialises Append, so IDs and retention agree
	closed bool
}

var _ Store = (*SQLiteStore)(nil)

const sqliteSchema = `
CREATE TABLE IF NOT EXISTS events (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	time      INTEGER NOT NULL, -- Unix milliseconds
	host      TEXT NOT NULL,
	component TEXT NOT NULL,
	action    INTEGER NOT NULL,
	name      TEXT NOT NULL,
	src_ip    TEXT NOT NULL,
	dst_ip    TEXT NOT NULL,
	data      BLOB NOT NULL,    -- the event's wire JSON
	reason    TEXT NOT NULL DEFAULT '',
	rule      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS events_time ON events(time);
`

// sqliteAddSearch adds the columns that a database made before the search
// covered reason and rule lacks, filled from each event's JSON.
const sqliteAddSearch = `
ALTER TABLE events ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN rule TEXT NOT NULL DEFAULT '';
UPDATE events SET
	reason = coalesce(json_extract(CAST(data AS TEXT), '$.reason'), ''),
	rule = coalesce(json_extract(CAST(data AS TEXT), '$.rule'), '');
`

// OpenSQLite opens, or creates, the database at path and applies the
// retention of cfg at once.
func OpenSQLite(path string, cfg SQLiteConfig) (*SQLiteStore, error) {
	if path == "" {
		return nil, errors.New("dashboardapi: sqlite: empty path")
	}
	if cfg.MaxEvents == 0 {
		cfg.MaxEvents = DefaultMaxEvents
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := url.Values{}
	v.Add("_pragma", "busy_timeout(5000)")
	v.Add("_pragma", "journal_mode(WAL)")
	v.Add("_pragma", "synchronous(NORMAL)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+v.Encode())
	if err != nil {
		return nil, fmt.Errorf("dashboardapi: sqlite: %w", err)
	}
	// One connection: writes are serial anyway, and reads of a few hundred
	// rows are quick.
	db.SetMaxOpenConns(1)
	s := &SQLiteStore{db: db, cfg: cfg}
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, sqliteSchema+sqliteUnblocksSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("dashboardapi: sqlite: %s: %w", path, err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("dashboardapi: sqlite: %s: %w", path, err)
	}
	if err := s.prune(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// migrate brings a database made by an earlier version to the schema.
func migrate(ctx context.Context, db *sql.DB) error {
	var n int
	if err := db.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM pragma_table_info('events') WHERE name = 'rule'`).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, sqliteAddSearch); err != nil {
		return err
	}
	return tx.Commit()
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// prune applies the retention.
func (s *SQLiteStore) prune(ctx context.Context, x execer) error {
	if s.cfg.MaxEvents > 0 {
		if _, err := x.ExecContext(ctx,
			`DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?)`,
			s.cfg.MaxEvents); err != nil {
			return fmt.Errorf("dashboardapi: sqlite: retention: %w", err)
		}
	}
	if s.cfg.MaxAge > 0 {
		cut := s.cfg.Now().Add(-s.cfg.MaxAge).UnixMilli()
		if _, err := x.ExecContext(ctx, `DELETE FROM events WHERE time < ?`, cut); err != nil {
			return fmt.Errorf("dashboardapi: sqlite: retention: %w", err)
		}
	}
	return nil
}

// Append implements [Store].
func (s *SQLiteStore) Append(ctx context.Context, evs []events.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("dashboardapi: sqlite: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx,
		`INSERT INTO events (time, host, component, action, name, src_ip, dst_ip, data, reason, rule) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("dashboardapi: sqlite: %w", err)
	}
	defer stmt.Close()
	for _, e := range evs {
		data, err := e.MarshalJSON()
		if err != nil {
			return err
		}
		if _, err := stmt.ExecContext(ctx, e.Time.UnixMilli(), e.Host, string(e.Component), int(e.Action),
			e.Name, addrString(e.Source), addrString(e.Destination), data, string(e.Reason), e.Rule); err != nil {
			return fmt.Errorf("dashboardapi: sqlite: %w", err)
		}
	}
	if err := s.prune(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("dashboardapi: sqlite: %w", err)
	}
	return nil
}

// Query implements [Store].
func (s *SQLiteStore) Query(ctx context.Context, q Query) ([]Record, bool, error) {
	if s.isClosed() {
		return nil, false, ErrClosed
	}
	var where []string
	var args []any
	if q.After > 0 {
		where, args = append(where, "id > ?"), append(args, int64(min(q.After, 1<<63-1)))
	}
	if q.Before > 0 {
		where, args = append(where, "id < ?"), append(args, int64(min(q.Before, 1<<63-1)))
	}
	if q.Action != 0 {
		where, args = append(where, "action = ?"), append(args, int(q.Action))
	}
	if q.Component != "" {
		where, args = append(where, "component = ?"), append(args, string(q.Component))
	}
	if q.Text != "" {
		t := asciiLower(q.Text)
		where = append(where, "(instr(lower(host), ?) > 0 OR instr(lower(name), ?) > 0 OR instr(src_ip, ?) > 0 OR instr(dst_ip, ?) > 0"+
			" OR instr(lower(reason), ?) > 0 OR instr(lower(rule), ?) > 0)")
		args = append(args, t, t, t, t, t, t)
	}
	query := "SELECT id, data FROM events"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	if q.Oldest {
		query += " ORDER BY id ASC"
	} else {
		query += " ORDER BY id DESC"
	}
	if q.Limit > 0 {
		query += " LIMIT ?"
		args = append(args, q.Limit+1)
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, false, fmt.Errorf("dashboardapi: sqlite: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var (
			id   int64
			data []byte
		)
		if err := rows.Scan(&id, &data); err != nil {
			return nil, false, fmt.Errorf("dashboardapi: sqlite: %w", err)
		}
		r := Record{ID: uint64(id)}
		if err := r.Event.UnmarshalJSON(data); err != nil {
			return nil, false, fmt.Errorf("dashboardapi: sqlite: event %d: %w", id, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("dashboardapi: sqlite: %w", err)
	}
	more := q.Limit > 0 && len(out) > q.Limit
	if more {
		out = out[:q.Limit]
	}
	if !q.Oldest {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out, more, nil
}

// Clear implements [Store].
func (s *SQLiteStore) Clear(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM events`)
	if err != nil {
		return 0, fmt.Errorf("dashboardapi: sqlite: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("dashboardapi: sqlite: %w", err)
	}
	return int(n), nil
}

// Stats implements [Store].
func (s *SQLiteStore) Stats(ctx context.Context) (Stats, error) {
	if s.isClosed() {
		return Stats{}, ErrClosed
	}
	var st Stats
	var last sql.NullInt64
	err := s.db.QueryRowContext(ctx,
		`SELECT (SELECT COUNT(*) FROM events), (SELECT seq FROM sqlite_sequence WHERE name = 'events')`).
		Scan(&st.Count, &last)
	if err != nil {
		return Stats{}, fmt.Errorf("dashboardapi: sqlite: %w", err)
	}
	st.LastID = uint64(last.Int64)
	return st, nil
}

// Close implements [Store].
func (s *SQLiteStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.db.Close()
}

func (s *SQLiteStore) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
