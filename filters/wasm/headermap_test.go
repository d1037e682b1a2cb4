package wasm

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
)

func TestHeaderMapWireForm(t *testing.T) {
	tests := []struct {
		name  string
		pairs [][2]string
		wire  []byte
	}{
		{"empty", nil, []byte{0, 0, 0, 0}},
		{"spec example", [][2]string{{"a", "1"}, {"b", "22"}}, []byte{
			2, 0, 0, 0,
			1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0,
			'a', 0, '1', 0, 'b', 0, '2', '2', 0,
		}},
		{"names lower-cased", [][2]string{{"Content-Type", "text/plain"}}, append([]byte{
			1, 0, 0, 0, 12, 0, 0, 0, 10, 0, 0, 0,
		}, "content-type\x00text/plain\x00"...)},
		{"empty value", [][2]string{{"x", ""}}, []byte{1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'x', 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := encodeMap(nil, pairsOf(tt.pairs))
			if !bytes.Equal(got, tt.wire) {
				t.Fatalf("encode = %v, want %v", got, tt.wire)
			}
			back, err := decodePairs(got)
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Clone(tt.pairs)
			for i := range want {
				want[i][0] = string(bytes.ToLower([]byte(want[i][0])))
			}
			if !slices.Equal(back, want) {
				t.Errorf("decode = %q, want %q", back, want)
			}
		})
	}
}

func TestHeaderMapMalformed(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		name string
		wire []byte
		ok   bool
	}{
		{"nil is the empty map", nil, true},
		{"one NUL is the empty map", []byte{0}, true},
		{"short count", []byte{1, 0}, false},
		{"count past the end", le.AppendUint32(nil, 1000), false},
		{"huge count", le.AppendUint32(nil, 0xffffffff), false},
		{"size past the end", append(le.AppendUint32(le.AppendUint32(le.AppendUint32(nil, 1), 50), 1), 'a', 0, 'b', 0), false},
		{"missing NUL", append(le.AppendUint32(le.AppendUint32(le.AppendUint32(nil, 1), 1), 1), 'a', 'x', 'b', 0), false},
		{"huge sizes", append(le.AppendUint32(le.AppendUint32(le.AppendUint32(nil, 1), 0xffffffff), 0xffffffff), 0, 0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodePairs(tt.wire)
			if (err == nil) != tt.ok {
				t.Errorf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// FuzzDecodeMap checks that any bytes a plugin passes decode without
// panicking, and that what decodes encodes back to the same pairs.
func FuzzDecodeMap(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add(encodeMap(nil, pairsOf([][2]string{{"a", "1"}, {"b", "22"}})))
	f.Add(encodeMap(nil, pairsOf([][2]string{{":path", "/x"}, {"x-y", ""}})))
	f.Fuzz(func(t *testing.T, b []byte) {
		pairs, err := decodePairs(b)
		if err != nil {
			return
		}
		for i := range pairs {
			pairs[i][0] = string(bytes.ToLower([]byte(pairs[i][0])))
		}
		again, err := decodePairs(encodeMap(nil, pairsOf(pairs)))
		if err != nil || !slices.Equal(again, pairs) {
			t.Fatalf("round trip of %q: %q, %v", pairs, again, err)
		}
	})
}

func BenchmarkEncodeRequestHeaders(b *testing.B) {
	pairs := pairsOf([][2]string{
		{":authority", "bookinfo.example.com"}, {":path", "/productpage"}, {":method", "GET"}, {":scheme", "https"},
		{"User-Agent", "curl/8.0"}, {"Accept", "*/*"}, {"X-Request-Id", "5b0c0e3e-6a0a-4b1c-9c3a-1f0e6b9e7d21"},
		{"X-Forwarded-For", "10.0.0.1"}, {"X-Forwarded-Proto", "https"},
	})
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = encodeMap(buf, pairs)
	}
}
