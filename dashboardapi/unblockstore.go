package dashboardapi

import (
	"context"
	"encoding/json"
	"fmt"
)

// UnblockStore keeps unblock requests and their audit across restarts, for
// [OpenUnblocks]. [SQLiteStore] is one.
type UnblockStore interface {
	// LoadUnblocks returns the requests kept, oldest first, and the newest
	// maxAudit audit records, oldest first.
	LoadUnblocks(ctx context.Context, maxAudit int) ([]UnblockRequest, []UnblockAudit, error)
	// SaveUnblock adds a request or replaces the one of its ID.
	SaveUnblock(ctx context.Context, r UnblockRequest) error
	// DeleteUnblock forgets a request.
	DeleteUnblock(ctx context.Context, id string) error
	// AppendAudit adds an audit record and forgets all but the newest
	// keep.
	AppendAudit(ctx context.Context, rec UnblockAudit, keep int) error
}

var _ UnblockStore = (*SQLiteStore)(nil)

const sqliteUnblocksSchema = `
CREATE TABLE IF NOT EXISTS unblocks (
	seq  INTEGER PRIMARY KEY AUTOINCREMENT, -- order of creation
	id   TEXT NOT NULL UNIQUE,
	data TEXT NOT NULL                      -- the request's JSON
);
CREATE TABLE IF NOT EXISTS unblock_audit (
	seq  INTEGER PRIMARY KEY AUTOINCREMENT,
	data TEXT NOT NULL                      -- the record's JSON
);
`

// LoadUnblocks implements [UnblockStore].
func (s *SQLiteStore) LoadUnblocks(ctx context.Context, maxAudit int) ([]UnblockRequest, []UnblockAudit, error) {
	var reqs []UnblockRequest
	rows, err := s.db.QueryContext(ctx, `SELECT data FROM unblocks ORDER BY seq`)
	if err != nil {
		return nil, nil, fmt.Errorf("dashboardapi: sqlite: unblocks: %w", err)
	}
	for rows.Next() {
		var data []byte
		var r UnblockRequest
		if err := rows.Scan(&data); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("dashboardapi: sqlite: unblocks: %w", err)
		}
		if err := json.Unmarshal(data, &r); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("dashboardapi: sqlite: unblocks: %w", err)
		}
		reqs = append(reqs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("dashboardapi: sqlite: unblocks: %w", err)
	}
	var recs []UnblockAudit
	rows, err = s.db.QueryContext(ctx, `SELECT data FROM (SELECT seq, data FROM unblock_audit ORDER BY seq DESC LIMIT ?) ORDER BY seq`, maxAudit)
	if err != nil {
		return nil, nil, fmt.Errorf("dashboardapi: sqlite: unblock audit: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var data []byte
		var rec UnblockAudit
		if err := rows.Scan(&data); err != nil {
			return nil, nil, fmt.Errorf("dashboardapi: sqlite: unblock audit: %w", err)
		}
		if err := json.Unmarshal(data, &rec); err != nil {
			return nil, nil, fmt.Errorf("dashboardapi: sqlite: unblock audit: %w", err)
		}
		recs = append(recs, rec)
	}
	return reqs, recs, rows.Err()
}

// SaveUnblock implements [UnblockStore].
func (s *SQLiteStore) SaveUnblock(ctx context.Context, r UnblockRequest) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO unblocks (id, data) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data`, r.ID, data)
	if err != nil {
		return fmt.Errorf("dashboardapi: sqlite: save unblock: %w", err)
	}
	return nil
}

// DeleteUnblock implements [UnblockStore].
func (s *SQLiteStore) DeleteUnblock(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM unblocks WHERE id = ?`, id); err != nil {
		return fmt.Errorf("dashboardapi: sqlite: delete unblock: %w", err)
	}
	return nil
}

// AppendAudit implements [UnblockStore].
func (s *SQLiteStore) AppendAudit(ctx context.Context, rec UnblockAudit, keep int) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO unblock_audit (data) VALUES (?)`, data)
	if err == nil {
		var seq int64
		if seq, err = res.LastInsertId(); err == nil {
			_, err = s.db.ExecContext(ctx, `DELETE FROM unblock_audit WHERE seq <= ?`, seq-int64(keep))
		}
	}
	if err != nil {
		return fmt.Errorf("dashboardapi: sqlite: audit: %w", err)
	}
	return nil
}
