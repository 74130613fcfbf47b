package sni

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// checkNameReference is checkName written the obvious way.
func checkNameReference(name []byte) ([]byte, bool) {
	name = bytes.TrimSuffix(name, []byte("."))
	if len(name) == 0 || len(name) > maxNameLen {
		return nil, false
	}
	for label := range bytes.SplitSeq(name, []byte(".")) {
		if len(label) == 0 || len(label) > maxLabelLen ||
			strings.Trim(string(label), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			return nil, false
		}
	}
	return name, true
}

// randomName returns a name of labels of random lengths, mostly of allowed
// bytes.
func randomName(rng *rand.Rand) []byte {
	const alphabet = "abcxyzABCXYZ0189-_"
	const bad = ". \x00/:@[`{\x7f\x80\xc3\xff"
	var name []byte
	for range rng.IntN(6) {
		for range rng.IntN(70) {
			if rng.IntN(50) == 0 {
				name = append(name, bad[rng.IntN(len(bad))])
			} else {
				name = append(name, alphabet[rng.IntN(len(alphabet))])
			}
		}
		name = append(name, '.')
	}
	return name[:rng.IntN(len(name)+1)]
}

func TestCheckNameMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		name := randomName(rng)
		got, err := checkName(name)
		want, ok := checkNameReference(name)
		require.Equal(t, ok, err == nil, "%q: %v", name, err)
		if ok {
			require.Equal(t, want, got, "%q", name)
			last := got[bytes.LastIndexByte(got, '.')+1:]
			require.Equal(t, isNumber(last), endsInNumber(got), "%q", name)
		}
	}
}

func TestAppendLower(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := range 40 {
		name := make([]byte, n)
		for i := range name {
			name[i] = byte(rng.IntN(0x80))
		}
		got := appendLower([]byte("Prefix"), name)
		require.Equal(t, "Prefix"+strings.ToLower(string(name)), string(got), "%q", name)
	}
}

// TestCheckNameEveryByteEverywhere puts every byte value at every offset of
// names of 1 to 24 bytes, and two dots at every pair of offsets.
func TestCheckNameEveryByteEverywhere(t *testing.T) {
	for n := 1; n <= 24; n++ {
		for pos := range n {
			for c := range 256 {
				name := bytes.Repeat([]byte("a"), n)
				name[pos] = byte(c)
				got, err := checkName(name)
				want, ok := checkNameReference(name)
				require.Equal(t, ok, err == nil, "%q: %v", name, err)
				require.Equal(t, want, got, "%q", name)
			}
			for pos2 := pos + 1; pos2 < n; pos2++ {
				name := bytes.Repeat([]byte("a"), n)
				name[pos], name[pos2] = '.', '.'
				_, err := checkName(name)
				_, ok := checkNameReference(name)
				require.Equal(t, ok, err == nil, "%q: %v", name, err)
			}
		}
	}
}
