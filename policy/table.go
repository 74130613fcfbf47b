package policy

import (
	"math/bits"
	"math/rand/v2"
	"strings"
)

// suffixTable maps domain suffixes ("com", "example.com") to what the rules
// say about them. It is an open-addressing hash table shaped for the match
// walk, and kept small, since over many rules a lookup costs what its cache
// misses cost:
//
//   - a suffix's hash extends its parent's by one label, so walking a name
//     from its top-level label down hashes each byte once;
//   - hashes fold ASCII case, so a name that arrives in upper case finds its
//     suffixes without being copied;
//   - a bitmap of eight bits per suffix, small enough to stay in the CPU's
//     cache when the table does not, answers "certainly absent" for most
//     suffixes that no rule mentions, which is what the walk meets most;
//   - a slot is one word: the suffix's flags, its length, a tag of its
//     hash, and where it lies in keys, one string holding every rule; the
//     key is read only for the hits that must be confirmed.
//
// Hits that allow a name are confirmed by comparing the name with the rule,
// so no hash collision can allow a name. Between the slot a suffix's hash
// picks and the slot the suffix sits in, no other suffix has its tag (the
// table is built again with another seed when one would), so a lookup
// finds every suffix in the table. It can only take a suffix that is not
// in the table for one that is, and that mistake can neither allow a name
// (confirmation fails) nor end a walk that should go on (an absent suffix
// has no rule below it).
type suffixTable struct {
	// slots are 0 when empty (a used slot has a length). There are a
	// third more than suffixes or more: the table grows when three
	// quarters are used.
	slots []uint64
	used  int
	seed  uint64
	// keys holds the rules, each written once; a suffix's slot points into
	// the rule it came from. A wildcard suffix points into a wildcard rule,
	// so "*." stands just before it.
	keys string
	// build collects keys while the table is built.
	build strings.Builder
	// filter has a bit set for the tag of every suffix in the table (see
	// filterBit); a clear bit means the suffix is absent. Its length is a
	// power of two. It is built by seal, once the table is complete.
	filter []uint64
}

// The fields of a slot, from its low bits up.
const (
	flagExact    = 1 << iota // the suffix itself is allowed
	flagWildcard             // every name below the suffix is allowed
	flagParent               // some rule names something below the suffix
	flagMask     = 1<<iota - 1

	lenShift = 3 // the suffix's length, 1 to 253
	lenBits  = 8
	tagShift = lenShift + lenBits // the top tagBits bits of the suffix's hash
	tagBits  = 25
	tagMask  = (1<<tagBits - 1) << tagShift
	offShift = tagShift + tagBits // where the suffix starts in keys
	maxKeys  = 1 << (64 - offShift)
)

// A hash picks a slot with its low bits and gives its tag from its top
// bits; the filter bit comes from the tag. The only tags a lookup compares
// are those on its probe run, whatever their filter bits, so sharing bits
// with the filter costs the tag nothing.

// tag returns the tag of hash h, placed as in a slot.
func tag(h uint64) uint64 { return h >> (64 - tagBits) << tagShift }

// newSuffixTable returns a table sized for about n suffixes of rules that
// take about size bytes.
func newSuffixTable(n, size int) *suffixTable {
	t := &suffixTable{slots: make([]uint64, max(16, n+n/3)), seed: rand.Uint64()}
	t.build.Grow(size)
	return t
}

// filterBit returns the word and bit of the filter that stand for tg, a
// tag placed as in a slot.
func (t *suffixTable) filterBit(tg uint64) (word int, bit uint64) {
	b := tg >> tagShift & (uint64(len(t.filter))*64 - 1)
	return int(b / 64), 1 << (b % 64)
}

// seal ends the build: it fixes keys and builds the filter.
func (t *suffixTable) seal() {
	t.keys = t.build.String()
	t.build = strings.Builder{}
	words := 1
	for words*64 < 8*t.used {
		words <<= 1
	}
	t.filter = make([]uint64, words)
	for _, s := range t.slots {
		if s != 0 {
			w, b := t.filterBit(s & tagMask)
			t.filter[w] |= b
		}
	}
}

// home returns the slot where a suffix with hash h is looked for first: a
// position in the table in proportion to h's low 32 bits.
func (t *suffixTable) home(h uint64) int {
	return int(uint64(uint32(h)) * uint64(len(t.slots)) >> 32)
}

// next returns the slot after i, wrapping around.
func (t *suffixTable) next(i int) int {
	if i++; i == len(t.slots) {
		return 0
	}
	return i
}

// probe returns the first slot from i on that has tag tg or is empty. A
// lookup reads slot i itself first; probe serves the rest of a probe run.
func (t *suffixTable) probe(i int, tg uint64) uint64 {
	for ; ; i = t.next(i) {
		if s := t.slots[i]; s == 0 || s&tagMask == tg {
			return s
		}
	}
}

// slotLen and slotOff return the length of slot s's suffix and where it
// starts in keys.
func slotLen(s uint64) int { return int(s >> lenShift & (1<<lenBits - 1)) }
func slotOff(s uint64) int { return int(s >> offShift) }

// suffix returns the suffix of slot s.
func (t *suffixTable) suffix(s uint64) string {
	return t.keys[slotOff(s) : slotOff(s)+slotLen(s)]
}

// wildcard returns the wildcard rule of slot s, which has flagWildcard.
func (t *suffixTable) wildcard(s uint64) string {
	return t.keys[slotOff(s)-2 : slotOff(s)+slotLen(s)]
}

// confirm reports whether the suffix of slot s is name, in any case.
func (t *suffixTable) confirm(s uint64, name string) bool {
	if len(name) != slotLen(s) {
		return false
	}
	key := t.suffix(s)
	return name == key || equalFold(name, key)
}

// equalFold reports whether name, in any case, is key, which is in lower
// case and as long as name. It compares eight bytes at a time, the last
// word overlapping the one before.
func equalFold(name, key string) bool {
	n := len(key)
	if len(name) != n {
		return false
	}
	if n < 8 {
		for i := 0; i < n; i++ {
			if lowerByte[name[i]] != key[i] {
				return false
			}
		}
		return true
	}
	diff := lower8(le64(name[n-8:])) ^ le64(key[n-8:])
	for i := 0; i < n-8; i += 8 {
		diff |= lower8(le64(name[i:])) ^ le64(key[i:])
	}
	return diff == 0
}

// lower8 maps the bytes 'A'-'Z' of w to 'a'-'z' and leaves the others.
func lower8(w uint64) uint64 {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	low7 := w &^ high
	atLeastA := low7 + (0x80-'A')*ones      // top bit set where low7 >= 'A'
	aboveZ := low7 + (0x80-'Z'-1)*ones      // top bit set where low7 > 'Z'
	upper := atLeastA &^ aboveZ &^ w & high // and the byte itself is ASCII
	return w | upper>>2
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

// addRule writes a canonical rule to keys and returns where it starts.
func (t *suffixTable) addRule(rule string) int {
	off := t.build.Len()
	t.build.WriteString(rule)
	return off
}

// add sets flags on the suffix whose hash is h and which starts at off in
// keys, adding it if needed; off must have "*." before it when flags has
// flagWildcard. It reports false if another suffix with the same tag lies
// between the slot h picks and the suffix's own, where a lookup would take
// it for this one; the caller then starts again with another seed.
func (t *suffixTable) add(h uint64, off, n int, flags uint64) bool {
	keys := t.build.String()
	suffix := keys[off : off+n]
	tg := tag(h)
	i := t.home(h)
	for ; t.slots[i] != 0; i = t.next(i) {
		if s := t.slots[i]; s&tagMask == tg {
			if keys[slotOff(s):slotOff(s)+slotLen(s)] != suffix {
				return false
			}
			break
		}
	}
	s := t.slots[i]
	if s == 0 {
		t.used++
	}
	if s == 0 || flags&flagWildcard != 0 && s&flagWildcard == 0 {
		s = uint64(off)<<offShift | tg | uint64(n)<<lenShift | s&flagMask
	}
	t.slots[i] = s | flags
	if 4*t.used > 3*len(t.slots) {
		return t.grow()
	}
	return true
}

// grow doubles the table and re-inserts every suffix. Like add, it reports
// false if a suffix would sit behind another with the same tag.
func (t *suffixTable) grow() bool {
	old := t.slots
	t.slots = make([]uint64, 2*len(old))
	for _, s := range old {
		if s == 0 {
			continue
		}
		// The slot keeps the tag, not the hash; hash the key again.
		i := t.home(t.hash(t.build.String()[slotOff(s):][:slotLen(s)]))
		for ; t.slots[i] != 0; i = t.next(i) {
			if t.slots[i]&tagMask == s&tagMask {
				return false
			}
		}
		t.slots[i] = s
	}
	return true
}

// hash returns the hash of a canonical suffix, as the match walk computes it.
func (t *suffixTable) hash(suffix string) uint64 {
	h := t.seed
	for end := len(suffix); ; {
		dot, next := hashLabel(h, suffix, end)
		if h = next; dot < 0 {
			return h
		}
		end = dot
	}
}

// hashLabel extends h, the hash of a suffix, by the label that ends at end
// in name, and returns the index of the dot before the label (-1 when the
// label starts the name) with the new hash. It reads the label eight bytes
// at a time from its end, looking for the dot in the words it hashes,
// setting bit 5 of every byte so that ASCII letters hash alike in either
// case, and mixes with one 128-bit multiplication per word, in the manner
// of wyhash. (Setting the bit also makes some invalid bytes hash like valid
// ones; confirm tells them apart.) The last, partial word is read in one
// load from the start of the name whenever the name is long enough.
func hashLabel(h uint64, name string, end int) (dot int, hash uint64) {
	const fold = 0x2020202020202020
	last := end
	for ; end >= 8; end -= 8 {
		w := le64(name[end-8 : end])
		if d := dotBytes(w); d != 0 {
			k := (63 - bits.LeadingZeros64(d)) / 8
			dot = end - 8 + k
			return dot, mix(h^uint64(last-dot-1)*lengthMul, (w|fold)>>(8*(k+1)))
		}
		h = mix(h, w|fold)
	}
	// The label's first bytes: up to 7, placed at the top of w.
	var w uint64
	if len(name) >= 8 {
		w = le64(name[:8]) << (8 * (8 - end))
	} else {
		for i := 0; i < end; i++ {
			w |= uint64(name[i]) << (8 * (8 - end + i))
		}
	}
	dot, skip := -1, 8-end
	if d := dotBytes(w); d != 0 {
		k := (63 - bits.LeadingZeros64(d)) / 8
		dot, skip = end-8+k, k+1
	}
	return dot, mix(h^uint64(last-dot-1)*lengthMul, (w|fold)>>(8*skip))
}

const lengthMul = 0x9e3779b97f4a7c15

// dotBytes returns w with the top bit of each byte set where that byte is
// '.', and every other bit clear.
func dotBytes(w uint64) uint64 {
	const (
		dots = 0x2e2e2e2e2e2e2e2e
		low7 = 0x7f7f7f7f7f7f7f7f
	)
	// Bytes equal to '.' become 0; a byte's top bit in the result is set
	// exactly when the byte is 0 (no carries cross bytes).
	x := w ^ dots
	return ^((x&low7 + low7) | x | low7)
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
