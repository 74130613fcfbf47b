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
//   - a bitmap of eight bits per suffix, small enough to stay in the CPU's
//     cache when the table does not, answers "certainly absent" for most
//     suffixes that no rule mentions, which is what the walk meets most;
//   - a slot holds the hash and the flags together, with the key beside
//     them for the hits that must be confirmed.
//
// Hits that allow a name are confirmed by comparing the name with the rule,
// so no hash collision can allow a name. A collision of the 61 stored hash
// bits between a name's suffix and a different suffix in the table (about
// 2⁻⁶¹ per probe, with a seed chosen at random for each table) could at
// worst refuse a name that a rule allows.
type suffixTable struct {
	slots []slot // a power-of-two number of them
	used  int
	seed  uint64
	// filter has a bit set for the hash of every suffix in the table (see
	// filterBit); a clear bit means the suffix is absent. Its length is a
	// power of two. It is built by seal, once the table is complete.
	filter []uint64
}

type slot struct {
	// hash is 0 for an empty slot; else the suffix's hash with the low
	// flagBits replaced by its flags.
	hash uint64
	// key is "*." + the suffix when flagWildcard is set, else the suffix.
	key string
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
	return &suffixTable{slots: make([]slot, size), seed: rand.Uint64()}
}

// filterBit returns the word and bit of the filter that stand for hash h.
// It uses hash bits below those that pick a slot, so that the two tests are
// independent.
func (t *suffixTable) filterBit(h uint64) (word int, bit uint64) {
	b := h >> flagBits & (uint64(len(t.filter))*64 - 1)
	return int(b / 64), 1 << (b % 64)
}

// seal builds the filter for the suffixes now in the table.
func (t *suffixTable) seal() {
	words := 1
	for words*64 < 8*t.used {
		words <<= 1
	}
	t.filter = make([]uint64, words)
	for _, s := range t.slots {
		if s.hash != 0 {
			w, b := t.filterBit(s.hash)
			t.filter[w] |= b
		}
	}
}

// find returns the position and flags of the suffix whose hash is h; flags
// is 0 when the table has no such suffix.
func (t *suffixTable) find(h uint64) (pos int, flags uint8) {
	if w, b := t.filterBit(h); t.filter[w]&b == 0 {
		return 0, 0
	}
	mask := uint64(len(t.slots) - 1)
	tag := h &^ flagMask
	for i := h >> 32 & mask; ; i = (i + 1) & mask {
		h := t.slots[i].hash
		if h == 0 {
			return 0, 0
		}
		if h&^flagMask == tag {
			return int(i), uint8(h & flagMask)
		}
	}
}

// suffix returns the suffix stored at pos.
func (t *suffixTable) suffix(pos int) string {
	if s := &t.slots[pos]; s.hash&flagWildcard != 0 {
		return s.key[2:]
	} else {
		return s.key
	}
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
	for ; t.slots[i].hash != 0; i = (i + 1) & mask {
		if t.slots[i].hash&^flagMask == tag {
			if t.suffix(int(i)) != suffix {
				return false
			}
			break
		}
	}
	s := &t.slots[i]
	if s.hash == 0 {
		s.hash, s.key = tag, suffix
		t.used++
	}
	s.hash |= uint64(flags)
	if flags&flagWildcard != 0 {
		s.key = rule
	}
	if 2*t.used > len(t.slots) {
		t.grow()
	}
	return true
}

// grow doubles the table and re-inserts every suffix.
func (t *suffixTable) grow() {
	old := t.slots
	t.slots = make([]slot, 2*len(old))
	mask := uint64(len(t.slots) - 1)
	for _, s := range old {
		if s.hash == 0 {
			continue
		}
		i := s.hash >> 32 & mask
		for t.slots[i].hash != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// hashLabel extends h, the hash of a suffix, by the label name[start:end]
// in front of it. It reads the label eight bytes at a time from its end,
// setting bit 5 of every byte so that ASCII letters hash alike in either
// case, and mixes with one 128-bit multiplication per word, in the manner of
// wyhash. (Setting the bit also makes some invalid bytes hash like valid
// ones; confirm tells them apart.) The last, partial word is read in one
// load from the bytes around it whenever the name is long enough. The
// result is never 0 above its flag bits, which marks an empty slot.
func hashLabel(h uint64, name string, start, end int) uint64 {
	const fold = 0x2020202020202020
	h ^= uint64(end-start) * 0x9e3779b97f4a7c15
	for end-start > 8 {
		h = mix(h, le64(name[end-8:end])|fold)
		end -= 8
	}
	var tail uint64
	switch unused := 8 * uint(8-(end-start)); {
	case end >= 8: // the label ends a word that starts before it
		tail = (le64(name[end-8:end]) | fold) >> unused
	case start+8 <= len(name): // the label starts a word that ends after it
		tail = (le64(name[start:start+8]) | fold) << unused >> unused
	default:
		for i := start; i < end; i++ {
			tail |= uint64(name[i]|0x20) << (8 * (i - start))
		}
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
