package dashboardapi

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/g0lab/g0efilter/events"
)

func TestRecordJSON(t *testing.T) {
	r := Record{ID: 1<<53 - 1, Event: ev(1, events.Blocked, events.HTTPS)}
	r.Event.Flow = 7
	data, err := json.Marshal(r)
	require.NoError(t, err)
	var back Record
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Equal(t, r, back)

	for _, bad := range []string{
		`{"time":"2026-11-24T21:52:26Z","component":"dns","action":"allowed"}`,
		`{"id":"1","time":"2026-11-24T21:52:26Z","component":"dns","action":"allowed"}`,
		`{"id":1,"component":"dns","action":"allowed"}`,
		`[]`,
	} {
		assert.Error(t, json.Unmarshal([]byte(bad), &back), bad)
	}
	_, err = json.Marshal(Record{ID: 1})
	assert.ErrorIs(t, err, events.ErrInvalid)
}
