package events

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestReasonBypass(t *testing.T) {
	for _, r := range []Reason{ReasonForgedMark, ReasonLocalService, ReasonRawFrame,
		ReasonSpoofedSource, ReasonInjected, ReasonForgedConn} {
		assert.True(t, r.Bypass(), "%s", r)
	}
	for _, r := range []Reason{ReasonNotAllowlisted, ReasonAllowlisted, ReasonTimeout, ""} {
		assert.False(t, r.Bypass(), "%q", r)
	}
}
