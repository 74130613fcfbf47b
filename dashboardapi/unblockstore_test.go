package dashboardapi

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUnblocksSurviveRestart makes requests and acks on a dashboard with a
// database, closes it, opens another on the same file and finds them all.
func TestUnblocksSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	clock := &fakeClock{t: t0}
	open := func() (*Server, *SQLiteStore) {
		store, err := OpenSQLite(path, SQLiteConfig{})
		require.NoError(t, err)
		u, err := OpenUnblocks(context.Background(), UnblocksConfig{Now: clock.Now, MaxRecords: 3, Expiry: time.Hour}, store)
		require.NoError(t, err)
		return newTestServer(t, ServerConfig{Store: store, Unblocks: u}), store
	}

	s, store := open()
	applied := mustCreate(t, s, "web-1", "a.example")
	pending := mustCreate(t, s, "web-1", "b.example")
	ack(t, s, UnblockAck{ID: applied.ID, Applied: true})
	before := audit(t, s, "")
	require.Len(t, before, 3)
	s.Close()
	require.NoError(t, store.Close())

	clock.Add(50 * time.Minute)
	s, store = open()
	defer store.Close()
	got := status(t, s, "")
	require.Len(t, got, 2)
	assert.Equal(t, UnblockApplied, got[0].State)
	assert.Equal(t, pending, got[1], "still pending, as it was")
	assert.Equal(t, before, audit(t, s, ""), "the audit as it was, with who asked")
	assert.Equal(t, "anonymous (AUTH=none)", before[0].User)

	// The filter picks up the pending one after the restart, and its ack
	// of the request made before it is recorded, not unknown.
	assert.Equal(t, []UnblockRequest{pending}, fetch(t, s, "web-1"))
	assert.Equal(t, []UnblockAckResult{{ID: pending.ID, Result: AckRecorded, State: UnblockApplied}},
		ack(t, s, UnblockAck{ID: pending.ID, Applied: true}))
	// A duplicate of a pending request made before the restart collapses.
	again := mustCreate(t, s, "web-1", "c.example")
	w := create(s, "web-1", "c.example")
	assert.Equal(t, 200, w.Code)
	assert.Equal(t, again, decode[UnblockRequest](t, w))

	// The audit in the file keeps MaxRecords, like the one in memory.
	s.Close()
	_, recs, err := store.LoadUnblocks(context.Background(), 100)
	require.NoError(t, err)
	assert.Len(t, recs, 3)
	assert.Equal(t, "duplicate", recs[2].Result)
}
