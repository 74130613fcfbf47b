package policy

import (
	"math/bits"
	"math/rand/v2"
)

// suffixTable maps domain suffixes ("com", "example.com") to what the rules
// say about them. It is an open-addressing hash table shaped for the match
// walk:
//
//   - a suffix's hash extends its parent's by one label, so walking a name
//     from its top-level label down hashes each byte once;
//   - hashes fold ASCII case, so a name that arrives in upper case finds its
//     suffixes without being copied;
//   - a slot holds the hash and the flags together, so stepping through a
//     suffix that no rule mentions, or that is only the parent of rules,
//     costs one memory access — as much as a miss in a Go map.
//
// Hits that allow a name are confirmed by comparing the name with the rule,
// so no hash collision can allow a name. A collision of the 61 stored hash
// bits between a name's suffix and a different suffix in the table (about
// 2⁻⁶¹ per probe, with a seed chosen at random for each table) could at
// worst refuse a name that a rule allows.
type suffixTable struct {
	// slots has a power-of-two length. An empty slot is 0; a used one holds
	// the suffix's hash with the low flagBits replaced by its flags.
	slots []uint64
	// keys holds, for each used slot, "*." + the suffix when flagWildcard
	// is set, else the suffix itself.
	keys []string
	used int
	seed uint64
}

const (
	flagExact    = 1 << iota // the suffix itself is allowed
	flagWildcard             // every name below the suffix is allowed
	flagParent               // some rule names something below the suffix
	flagBits     = iota
	flagMask     = 1<<flagBits - 1
)

// newSuffixTable returns a table sized for about n suffixes.
func newSuffixTable(n int) *suffixTable {
	size := 16
	for size < 2*n {
		size <<= 1
	}
	return &suffixTable{
		slots: make([]uint64, size),
		keys:  make([]string, size),
		seed:  rand.Uint64(),
	}
}

// find returns the position and flags of the suffix whose hash is h; flags
// is 0 when the table has no such suffix.
func (t *suffixTable) find(h uint64) (pos int, flags uint8) {
	mask := uint64(len(t.slots) - 1)
	tag := h &^ flagMask
	for i := h >> 32 & mask; ; i = (i + 1) & mask {
		slot := t.slots[i]
		if slot == 0 {
			return 0, 0
		}
		if slot&^flagMask == tag {
			return int(i), uint8(slot & flagMask)
		}
	}
}

// suffix returns the suffix stored at pos.
func (t *suffixTable) suffix(pos int) string {
	if t.slots[pos]&flagWildcard != 0 {
		return t.keys[pos][2:]
	}
	return t.keys[pos]
}

// confirm reports whether the suffix stored at pos is name, in any case.
func (t *suffixTable) confirm(pos int, name string) bool {
	key := t.suffix(pos)
	if len(key) != len(name) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if lowerByte[name[i]] != key[i] {
			return false
		}
	}
	return true
}

// lowerByte maps 'A'-'Z' to 'a'-'z' and every other byte to itself.
var lowerByte = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = byte(c) + 'a' - 'A'
	}
	return t
}()

// add sets flags on suffix, a canonical name whose hash is h, adding it if
// needed; a wildcard's key becomes rule. It reports false if a different
// suffix already has the same hash, in which case the caller rebuilds the
// table with another seed.
func (t *suffixTable) add(h uint64, suffix string, flags uint8, rule string) bool {
	mask := uint64(len(t.slots) - 1)
	tag := h &^ flagMask
	i := h >> 32 & mask
	for ; t.slots[i] != 0; i = (i + 1) & mask {
		if t.slots[i]&^flagMask == tag {
			if t.suffix(int(i)) != suffix {
				return false
			}
			t.slots[i] |= uint64(flags)
			if flags&flagWildcard != 0 {
				t.keys[i] = rule
			}
			return true
		}
	}
	t.slots[i] = tag | uint64(flags)
	t.keys[i] = suffix
	if flags&flagWildcard != 0 {
		t.keys[i] = rule
	}
	t.used++
	if 2*t.used > len(t.slots) {
		t.grow()
	}
	return true
}

// grow doubles the table and re-inserts every suffix.
func (t *suffixTable) grow() {
	slots, keys := t.slots, t.keys
	t.slots = make([]uint64, 2*len(slots))
	t.keys = make([]string, 2*len(keys))
	mask := uint64(len(t.slots) - 1)
	for j, slot := range slots {
		if slot == 0 {
			continue
		}
		i := slot >> 32 & mask
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i], t.keys[i] = slot, keys[j]
	}
}

// hashLabel extends h, the hash of a suffix, by the label in front of it.
// It reads the label eight bytes at a time, setting bit 5 of every byte so
// that ASCII letters hash alike in either case, and mixes with one 128-bit
// multiplication per word, in the manner of wyhash. (Setting the bit also
// makes some invalid bytes hash like valid ones; confirm tells them apart.)
// The result is never 0 in its upper bits, which mark an empty slot.
func hashLabel(h uint64, label string) uint64 {
	const fold = 0x2020202020202020
	h ^= uint64(len(label)) * 0x9e3779b97f4a7c15
	for len(label) > 8 {
		h = mix(h, le64(label)|fold)
		label = label[8:]
	}
	var tail uint64
	for i := 0; i < len(label); i++ {
		tail |= uint64(label[i]|0x20) << (8 * i)
	}
	if h = mix(h, tail); h&^flagMask == 0 {
		h = 1 << flagBits
	}
	return h
}

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a^0xa0761d6478bd642f, b^0xe7037ed1a0b428db)
	return hi ^ lo
}

// le64 reads the first eight bytes of b as a little-endian word.
func le64(b string) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}
