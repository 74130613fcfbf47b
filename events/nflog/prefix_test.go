package nflog_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/g0lab/g0efilter/events/nflog"
	"github.com/g0lab/g0efilter/nftrules"
)

// The Reader's prefixes are the ruleset's: nflog does not import nftrules,
// so this test keeps the two in step.
func TestPrefixesMatchRuleset(t *testing.T) {
	assert.Equal(t, nftrules.DefaultLogPrefix, nflog.DefaultBlockPrefix)
	assert.Equal(t, nftrules.DefaultAllowLogPrefix, nflog.DefaultAllowPrefix)
	assert.Equal(t, nftrules.DefaultPinnedLogPrefix, nflog.DefaultPinnedPrefix)
	assert.Equal(t, nftrules.ForgedMarkLogPrefix, nflog.DefaultForgedMarkPrefix)
	assert.Equal(t, nftrules.LocalServiceLogPrefix, nflog.DefaultLocalServicePrefix)
	assert.Equal(t, nftrules.SpoofedSourceLogPrefix, nflog.DefaultSpoofedSourcePrefix)
	assert.Equal(t, nftrules.InjectedLogPrefix, nflog.DefaultInjectedPrefix)
	assert.Equal(t, nftrules.ForgedConnLogPrefix, nflog.DefaultForgedConnPrefix)
	assert.Equal(t, nftrules.DeniedLogPrefix, nflog.DefaultDeniedPrefix)
	assert.Equal(t, nftrules.WouldBlockLogPrefix, nflog.DefaultWouldBlockPrefix)
	assert.Equal(t, nftrules.WouldDenyLogPrefix, nflog.DefaultWouldDenyPrefix)
	assert.Equal(t, nftrules.DefaultNflogGroup, nflog.DefaultGroup)
}
