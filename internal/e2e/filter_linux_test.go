//go:build linux

package e2e

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSetElements(t *testing.T) {
	const listing = "table inet g0efilter {\n" +
		"\tset allow4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n" +
		"\t\telements = { 1.1.1.1,\n\t\t\t     10.0.0.0/24 }\n\t}\n\n" +
		"\tset allow6 {\n\t\ttype ipv6_addr\n\t\tflags interval\n\t}\n\n" +
		"\tset pinned4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n" +
		"\t\telements = { 9.9.9.9 }\n\t}\n}\n"
	tests := []struct {
		set     string
		want    []string
		wantErr bool
	}{
		{set: "allow4", want: []string{"1.1.1.1", "10.0.0.0/24"}},
		{set: "allow6", want: nil},
		{set: "pinned4", want: []string{"9.9.9.9"}},
		{set: "allow", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.set, func(t *testing.T) {
			got, err := setElements(listing, tc.set)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
