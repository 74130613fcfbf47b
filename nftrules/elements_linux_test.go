package nftrules

import (
	"net/netip"
	"testing"

	"github.com/google/nftables"
	"github.com/stretchr/testify/assert"
)

func TestSetElements(t *testing.T) {
	key := func(s string) []byte { return netip.MustParseAddr(s).AsSlice() }
	got := setElements(pfx("10.0.0.0/24", "1.2.3.4/32", "255.255.255.0/24", "2001:db8::/32", "::/0"), true)
	assert.Equal(t, []nftables.SetElement{
		{Key: key("10.0.0.0")}, {Key: key("10.0.1.0"), IntervalEnd: true},
		{Key: key("1.2.3.4")}, {Key: key("1.2.3.5"), IntervalEnd: true},
		{Key: key("255.255.255.0")}, // reaches the top: no end
		{Key: key("2001:db8::")}, {Key: key("2001:db9::"), IntervalEnd: true},
		{Key: key("::")},
	}, got)
	assert.Equal(t, []nftables.SetElement{{Key: key("10.0.0.0")}}, setElements(pfx("10.0.0.0/24"), false))
}

func TestChunks(t *testing.T) {
	elems := setElements(pfx("10.0.0.0/24", "10.0.2.0/24", "255.255.255.255/32", "10.0.4.0/24"), true)
	// start, end, start, end, start(top), start, end
	got := chunks(elems, 2)
	assert.Len(t, got, 3)
	for _, c := range got {
		assert.LessOrEqual(t, len(c), 3)
		assert.False(t, c[0].IntervalEnd, "a chunk never starts with an interval end")
	}
	var n int
	for _, c := range got {
		n += len(c)
	}
	assert.Equal(t, len(elems), n)
	assert.Empty(t, chunks(nil, 1024))
}
