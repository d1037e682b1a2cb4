package preempt

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzInstrument checks that Instrument never panics and that whenever
// it succeeds on a module wazero compiles, wazero compiles the
// instrumented module too, with a check after every loop.
func FuzzInstrument(f *testing.F) {
	f.Add(runModule)
	f.Add(wasmModule(looksLikeLoops(nil)...))
	f.Add(wasmModule(types, oneFunc, codeSec(fn(noLocals, loop(e), end, i32c(1), end))))
	// wazero's fuzzers' cases, and the spec tests of the proposals
	// with prefixed or unusual instructions.
	dir := wazeroDir(f)
	for _, sub := range []string{
		"internal/integration_test/fuzzcases/testdata",
		"internal/integration_test/spectest/threads/testdata",
		"internal/integration_test/spectest/exception-handling/testdata",
		"internal/integration_test/spectest/tail-call/testdata",
	} {
		for _, path := range wasmFiles(f, filepath.Join(dir, sub)) {
			b, err := os.ReadFile(path)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	rt := newRuntime(f)
	f.Fuzz(func(t *testing.T, bin []byte) {
		out, loops, err := Instrument(bin)
		if err != nil {
			if out != nil || loops != 0 {
				t.Fatalf("output with error %v", err)
			}
			return
		}
		if hugeCount(bin) || compiles(rt, bin) != nil {
			return
		}
		if err := compiles(rt, out); err != nil {
			t.Fatalf("wazero compiles the module but not its instrumented copy: %v", err)
		}
		checkInstrumented(t, out, loops)
	})
}

// hugeCount tells whether bin holds a LEB128 of 4 bytes or more whose
// value exceeds the length of bin. wazero's decoder sizes slices by the
// counts it reads before reading their items, so a few bytes that
// declare a few hundred million types, globals, locals or elements
// take it seconds and gigabytes to refuse: such inputs are left to
// Instrument alone. (A large constant looks the same and is skipped as
// well.)
func hugeCount(bin []byte) bool {
	run := 0
	var v uint64
	for _, c := range bin {
		if run < 10 {
			v |= uint64(c&0x7f) << (7 * run)
		}
		if c >= 0x80 {
			run++
			continue
		}
		if run >= 3 && v > uint64(len(bin)) {
			return true
		}
		run, v = 0, 0
	}
	return false
}
