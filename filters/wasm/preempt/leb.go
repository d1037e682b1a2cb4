package preempt

import "errors"

// LEB128 is how Wasm writes every index, count, size and integer
// immediate. The rewriter needs the values of counts and sizes, and
// only the length of the rest, so reading an integer is split between
// readU32 (a value) and skipLEB (a length). The maximum lengths are
// those of the types wazero reads: a longer encoding is malformed.

const (
	maxLenU32 = 5  // u32, s32 and s33
	maxLenS64 = 10 // s64
)

var (
	errTruncated = errors.New("truncated")
	errLEB       = errors.New("integer too long")
)

// readU32 decodes the unsigned LEB128 at b[i:], of at most 5 bytes and
// 32 bits, and returns it with the offset after it.
func readU32(b []byte, i int) (uint32, int, error) {
	var v uint32
	for n := 0; n < maxLenU32; n++ {
		if i >= len(b) {
			return 0, i, errTruncated
		}
		c := b[i]
		i++
		if n == maxLenU32-1 && c&0xf0 != 0 {
			return 0, i, errLEB
		}
		v |= uint32(c&0x7f) << (7 * n)
		if c < 0x80 {
			return v, i, nil
		}
	}
	return 0, i, errLEB
}

// readS33 decodes the signed LEB128 at b[i:] of at most 5 bytes, the
// encoding of block types and heap types.
func readS33(b []byte, i int) (int64, int, error) {
	var v int64
	shift := 0
	for n := 0; n < maxLenU32; n++ {
		if i >= len(b) {
			return 0, i, errTruncated
		}
		c := b[i]
		i++
		v |= int64(c&0x7f) << shift
		shift += 7
		if c < 0x80 {
			if c&0x40 != 0 {
				v |= -1 << shift
			}
			return v, i, nil
		}
	}
	return 0, i, errLEB
}

// skipLEB returns the offset after the LEB128 at b[i:] of at most max
// bytes, signed or not: its value does not matter to the rewriter.
func skipLEB(b []byte, i, max int) (int, error) {
	for n := 0; n < max; n++ {
		if i >= len(b) {
			return i, errTruncated
		}
		c := b[i]
		i++
		if c < 0x80 {
			return i, nil
		}
	}
	return i, errLEB
}

// appendU32 appends v as the shortest unsigned LEB128.
func appendU32(dst []byte, v uint32) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// sizeU32 is the length of appendU32(nil, v).
func sizeU32(v uint32) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
