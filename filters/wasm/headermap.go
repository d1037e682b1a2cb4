package wasm

import (
	"encoding/binary"
	"errors"
	"iter"
)

// The wire form of a header map, as hostcalls exchange it:
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#maps-with-http-fields-andor-grpc-metadata
// a little-endian uint32 count, count pairs of uint32 sizes (name, value),
// then each name and value followed by a NUL byte.

// errMalformedMap is returned for a serialized map whose sizes run past
// its end or whose strings lack their NUL terminator.
var errMalformedMap = errors.New("malformed header map")

// encodeMap appends the serialized fields to dst[:0] and returns it.
// Names are lower-cased on the way, since Proxy-Wasm plugins see
// HTTP/2-style names whatever the downstream protocol was.
func encodeMap(dst []byte, fields iter.Seq2[string, string]) []byte {
	n, size := 0, 4
	for k, v := range fields {
		n++
		size += 8 + len(k) + len(v) + 2
	}
	if cap(dst) < size {
		dst = make([]byte, size)
	}
	dst = dst[:size]
	binary.LittleEndian.PutUint32(dst, uint32(n))
	sizes, data := 4, 4+8*n
	for k, v := range fields {
		binary.LittleEndian.PutUint32(dst[sizes:], uint32(len(k)))
		binary.LittleEndian.PutUint32(dst[sizes+4:], uint32(len(v)))
		sizes += 8
		for i := 0; i < len(k); i++ {
			c := k[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst[data+i] = c
		}
		data += len(k)
		dst[data] = 0
		data += 1 + copy(dst[data+1:], v)
		dst[data] = 0
		data++
	}
	return dst
}

// decodeMap calls yield for each field of a serialized map. An empty
// input, or a single NUL byte, is the empty map, as the spec allows. The
// strings passed to yield alias b only for the call.
func decodeMap(b []byte, yield func(k, v []byte)) error {
	if len(b) == 0 || (len(b) == 1 && b[0] == 0) {
		return nil
	}
	if len(b) < 4 {
		return errMalformedMap
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	if 4+8*n > uint64(len(b)) {
		return errMalformedMap
	}
	sizes, data := uint64(4), 4+8*n
	for i := uint64(0); i < n; i++ {
		kl := uint64(binary.LittleEndian.Uint32(b[sizes:]))
		vl := uint64(binary.LittleEndian.Uint32(b[sizes+4:]))
		sizes += 8
		if data+kl+vl+2 > uint64(len(b)) || b[data+kl] != 0 || b[data+kl+1+vl] != 0 {
			return errMalformedMap
		}
		yield(b[data:data+kl], b[data+kl+1:data+kl+1+vl])
		data += kl + vl + 2
	}
	return nil
}

// pairsOf lists pairs as a field sequence.
func pairsOf(pairs [][2]string) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for _, p := range pairs {
			if !yield(p[0], p[1]) {
				return
			}
		}
	}
}

// decodePairs decodes a serialized map into string pairs.
func decodePairs(b []byte) ([][2]string, error) {
	var out [][2]string
	err := decodeMap(b, func(k, v []byte) { out = append(out, [2]string{string(k), string(v)}) })
	return out, err
}
