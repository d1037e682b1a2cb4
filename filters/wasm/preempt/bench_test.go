package preempt

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkInstrument instruments the largest guest built on disk (see
// repoGuests), or else the largest Wasm binary of wazero's tests.
func BenchmarkInstrument(b *testing.B) {
	files := repoGuests(b)
	if len(files) == 0 {
		files = wasmFiles(b, wazeroDir(b))
	}
	var path string
	var bin []byte
	for _, p := range files {
		c, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		if len(c) > len(bin) {
			path, bin = p, c
		}
	}
	if bin == nil {
		b.Skip("no Wasm binary found")
	}
	_, loops, err := Instrument(bin)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: %d bytes, %d loops", filepath.Base(path), len(bin), loops)
	b.SetBytes(int64(len(bin)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Instrument(bin); err != nil {
			b.Fatal(err)
		}
	}
}
