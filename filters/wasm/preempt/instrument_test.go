package preempt

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Sections shared by the hand-assembled modules.
var (
	// Types: 0 ()->(), 1 ()->i32, 2 (i32)->i32.
	types = sec(secType, vec(functype(nil, nil), functype(nil, []byte{tI32}), functype([]byte{tI32}, []byte{tI32})))
	// One function of type 1, and a memory (which Instrument needs).
	oneFunc = cat(sec(secFunction, vec(u32(1))), memSec)
	memSec  = sec(secMemory, vec(cat(0x00, u32(1))))
	e       = emptyBT
)

// nameSec is a name section that names function 0 "f".
var nameSec = func() []byte {
	names := vec(cat(u32(0), name("f")))
	return sec(secCustom, name("name"), 0x01, u32(uint32(len(names))), names)
}()

func codeSec(fns ...[]byte) []byte { return sec(secCode, vec(fns...)) }

// globalSec is the global section an instrumented module has: the
// module's entries, then the new globals.
func globalSec(entries ...[]byte) []byte {
	return sec(secGlobal, vec(append(entries, globals[:5], globals[5:])...))
}

// exportSec is the export section an instrumented module has: the
// module's entries, then the new global as ExportName.
func exportSec(g uint32, entries ...[]byte) []byte {
	return sec(secExport, vec(append(entries, cat(name(ExportName), 0x03, u32(g)))...))
}

// A constant global of type i32, and a mutable one of type i64.
var (
	constI32 = cat(tI32, 0x00, i32c(7), end)
	mutI64   = cat(tI64, 0x01, i64c(-1), end)
)

func TestInstrument(t *testing.T) {
	chk0 := check(0)
	tests := []struct {
		name  string
		in    []byte
		want  []byte
		loops int
	}{{
		name:  "no loops",
		in:    wasmModule(types, oneFunc, codeSec(fn(noLocals, i32c(42), end))),
		want:  wasmModule(types, oneFunc, globalSec(), exportSec(0), codeSec(fn(noLocals, i32c(42), end))),
		loops: 0,
	}, {
		name:  "one loop",
		in:    wasmModule(types, oneFunc, codeSec(fn(noLocals, loop(e), end, i32c(1), end))),
		want:  wasmModule(types, oneFunc, globalSec(), exportSec(0), codeSec(fn(noLocals, loop(e), chk0, end, i32c(1), end))),
		loops: 1,
	}, {
		name: "nested loops",
		in: wasmModule(types, oneFunc, codeSec(fn(noLocals,
			loop(e), loop(e), loop(e), end, end, end, i32c(1), end))),
		want: wasmModule(types, oneFunc, globalSec(), exportSec(0), codeSec(fn(noLocals,
			loop(e), chk0, loop(e), chk0, loop(e), chk0, end, end, end, i32c(1), end))),
		loops: 3,
	}, {
		name: "loops in if, else and block",
		in: wasmModule(types, oneFunc, codeSec(fn(noLocals,
			block(e), i32c(1), ifBT(e), loop(e), end, cat(0x05), loop(e), end, end, end,
			block([]byte{tI32}), loop([]byte{tI32}), i32c(3), end, end, end))),
		want: wasmModule(types, oneFunc, globalSec(), exportSec(0), codeSec(fn(noLocals,
			block(e), i32c(1), ifBT(e), loop(e), chk0, end, cat(0x05), loop(e), chk0, end, end, end,
			block([]byte{tI32}), loop([]byte{tI32}), chk0, i32c(3), end, end, end))),
		loops: 3,
	}, {
		name: "loop with parameters (type index)",
		in: wasmModule(types, sec(secFunction, vec(u32(2))), memSec, codeSec(fn(noLocals,
			localGet(0), loop(u32(2)), i32c(1), i32Add, end, end))),
		want: wasmModule(types, sec(secFunction, vec(u32(2))), memSec, globalSec(), exportSec(0), codeSec(fn(noLocals,
			localGet(0), loop(u32(2)), chk0, i32c(1), i32Add, end, end))),
		loops: 1,
	}, {
		name: "locals and functions several",
		in: wasmModule(types, sec(secFunction, vec(u32(1), u32(0))), memSec, codeSec(
			fn(vec(cat(u32(2), tI32), cat(u32(1), tF64)), loop(e), end, localGet(1), end),
			fn(noLocals, loop(e), end, end))),
		want: wasmModule(types, sec(secFunction, vec(u32(1), u32(0))), memSec, globalSec(), exportSec(0), codeSec(
			fn(vec(cat(u32(2), tI32), cat(u32(1), tF64)), loop(e), chk0, end, localGet(1), end),
			fn(noLocals, loop(e), chk0, end, end))),
		loops: 2,
	}, {
		name: "globals and exports of its own",
		in: wasmModule(types, oneFunc,
			sec(secGlobal, vec(constI32, mutI64)),
			sec(secExport, vec(exportFunc("f", 0), cat(name("g"), 0x03, u32(1)))),
			codeSec(fn(noLocals, loop(e), end, globalGet(0), end))),
		want: wasmModule(types, oneFunc,
			globalSec(constI32, mutI64),
			exportSec(2, exportFunc("f", 0), cat(name("g"), 0x03, u32(1))),
			codeSec(fn(noLocals, loop(e), check(2), end, globalGet(0), end))),
		loops: 1,
	}, {
		name: "imported globals",
		in: wasmModule(types,
			sec(secImport, vec(
				cat(name("env"), name("g0"), 0x03, tI64, 0x00),
				cat(name("env"), name("f"), 0x00, u32(0)),
				cat(name("env"), name("g1"), 0x03, tF32, 0x01),
			)),
			oneFunc,
			sec(secGlobal, vec(constI32)),
			codeSec(fn(noLocals, loop(e), end, globalGet(2), end))),
		want: wasmModule(types,
			sec(secImport, vec(
				cat(name("env"), name("g0"), 0x03, tI64, 0x00),
				cat(name("env"), name("f"), 0x00, u32(0)),
				cat(name("env"), name("g1"), 0x03, tF32, 0x01),
			)),
			oneFunc,
			globalSec(constI32),
			exportSec(3),
			codeSec(fn(noLocals, loop(e), check(3), end, globalGet(2), end))),
		loops: 1,
	}, {
		name:  "no code section",
		in:    wasmModule(types, memSec),
		want:  wasmModule(types, memSec, globalSec(), exportSec(0)),
		loops: 0,
	}, {
		name: "sections around the new ones",
		in: wasmModule(types,
			sec(secImport, vec(cat(name("env"), name("t"), 0x01, 0x70, 0x00, u32(1)))),
			sec(secFunction, vec(u32(1))),
			sec(secMemory, vec(cat(0x01, u32(1), u32(2)))),
			sec(secElement, vec(cat(0x03, 0x00, vec(u32(0))))), // declarative: ref.func 0
			sec(secDataCount, u32(1)),
			codeSec(fn(noLocals, loop(e), end, cat(0xd2, u32(0)), drop, cat(0xfc, u32(9), u32(0)), i32c(0), end)),
			sec(secData, vec(cat(0x01, name("hello"))))),
		want: wasmModule(types,
			sec(secImport, vec(cat(name("env"), name("t"), 0x01, 0x70, 0x00, u32(1)))),
			sec(secFunction, vec(u32(1))),
			sec(secMemory, vec(cat(0x01, u32(1), u32(2)))),
			globalSec(),
			exportSec(0),
			sec(secElement, vec(cat(0x03, 0x00, vec(u32(0))))),
			sec(secDataCount, u32(1)),
			codeSec(fn(noLocals, loop(e), chk0, end, cat(0xd2, u32(0)), drop, cat(0xfc, u32(9), u32(0)), i32c(0), end)),
			sec(secData, vec(cat(0x01, name("hello"))))),
		loops: 1,
	}, {
		name: "custom sections: DWARF dropped, others kept",
		in: wasmModule(sec(secCustom, name("producers"), "x"), types, oneFunc,
			sec(secCustom, name(".debug_info"), "\x03\x03"),
			codeSec(fn(noLocals, loop(e), end, i32c(0), end)),
			sec(secCustom, name(".debug_line"), "\x03"),
			nameSec),
		want: wasmModule(sec(secCustom, name("producers"), "x"), types, oneFunc,
			globalSec(), exportSec(0),
			codeSec(fn(noLocals, loop(e), chk0, end, i32c(0), end)),
			nameSec),
		loops: 1,
	}, {
		// A name subsection longer than its section: wazero reads on
		// into the next section, so nothing may be put after it.
		name:  "new sections before a trailing custom section",
		in:    cat(header, memSec, secCustom, 0x0a, name("name"), 0x02, "0", 0x01, "0", 0x00),
		want:  cat(header, memSec, globalSec(), exportSec(0), secCustom, 0x0a, name("name"), 0x02, "0", 0x01, "0", 0x00),
		loops: 0,
	}, {
		name: "new export after an existing global section, before custom sections",
		in:   wasmModule(types, memSec, sec(secGlobal, vec(constI32)), sec(secCustom, name("x"), "y")),
		want: wasmModule(types, memSec, globalSec(constI32), exportSec(1), sec(secCustom, name("x"), "y")),
	}, {
		// wazero refuses a module that ends with a custom section
		// without contents.
		name: "empty custom sections left last by DWARF dropped",
		in: wasmModule(types, memSec, sec(secCustom, name("a"), "y"), sec(secCustom, name("b")), sec(secCustom, name("c")),
			sec(secCustom, name(".debug_info"), "z"), sec(secCustom, name(".debug_str"), "z")),
		want: wasmModule(types, memSec, globalSec(), exportSec(0), sec(secCustom, name("a"), "y")),
	}, {
		name: "immediates that read as loops",
		in:   wasmModule(looksLikeLoops(nil)...),
		want: wasmModule(looksLikeLoops(check(0))...),
		// A naive scan would count every 0x03 byte.
		loops: 4,
	}}
	rt := newRuntime(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := compiles(rt, tc.in); err != nil {
				t.Fatalf("wazero refuses the module: %v", err)
			}
			out, loops, err := Instrument(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if loops != tc.loops {
				t.Errorf("loops = %d, want %d", loops, tc.loops)
			}
			if !bytes.Equal(out, tc.want) {
				t.Errorf("instrumented\n got % x\nwant % x", out, tc.want)
			}
			if err := compiles(rt, out); err != nil {
				t.Fatalf("wazero refuses the instrumented module: %v", err)
			}
			checkInstrumented(t, out, tc.loops)
		})
	}
}

// looksLikeLoops is a module whose immediates hold many 0x03 bytes, the
// opcode of loop, among loops, in every family of instructions: with
// the check chk after each loop, or none. It needs threads, exception
// handling and tail calls.
func looksLikeLoops(chk []byte) [][]byte {
	l := func(bt []byte) []byte { return cat(loop(bt), chk) }
	three16 := bytes.Repeat([]byte{3}, 16)
	body := fn(vec(cat(u32(4), tI32), cat(u32(1), tV128)),
		i32c(3), localSet(3), i64c(3), drop, i64c(0x0303030303), drop,
		cat(0x43, 3, 3, 3, 3), drop, cat(0x44, three16[:8]), drop,
		block(e), block(e), block(e), block(e),
		l(e),
		localGet(3), cat(0x0e, vec(u32(3), u32(3)), u32(3)), // br_table 3 3 3
		end,
		end, end, end, end,
		// Memory, with align and offset 3.
		i32c(0), cat(0x29, u32(3), u32(3)), drop, // i64.load align=8 offset=3
		i32c(0), cat(0x3f, 0x00), cat(0x36, u32(2), u32(3)), // i32.store offset=3 (memory.size)
		// Bulk memory and tables.
		i32c(3), i32c(3), i32c(3), cat(0xfc, u32(10), 0x00, 0x00), // memory.copy
		i32c(3), i32c(3), i32c(3), cat(0xfc, u32(11), 0x00), // memory.fill
		cat(0xfc, u32(16), u32(0)), drop, // table.size 0
		cat(0xd0, 0x70), cat(0xd1), drop, // ref.null func, ref.is_null
		cat(0xd2, u32(3)), drop, // ref.func 3
		i32c(3), i32c(3), i32c(3), cat(0x1c, vec([]byte{tI32})), drop, // select (result i32)
		// SIMD.
		cat(0xfd, u32(12), three16), // v128.const
		cat(0xfd, u32(12), three16),
		cat(0xfd, u32(13), three16),   // i8x16.shuffle
		cat(0xfd, u32(0x80), 0x01),    // i16x8.abs (two-byte opcode)
		cat(0xfd, u32(0x16), 3), drop, // i8x16.extract_lane_u 3
		i32c(0), localGet(4), cat(0xfd, u32(0x54), u32(0), u32(3), 3), // v128.load8_lane offset=3 lane 3
		localSet(4),
		l(cat(tV128)), cat(0xfd, u32(0x0c), three16), end, drop,
		// Threads.
		cat(0xfe, 0x03, 0x00),                                   // atomic.fence
		i32c(0), i32c(3), cat(0xfe, 0x1e, u32(2), u32(3)), drop, // i32.atomic.rmw.add offset=3
		// Exceptions.
		block(e),
		cat(0x1f, 0x40, vec(cat(0x00, u32(0), u32(0)), cat(0x02, u32(0)))), // try_table (catch 0 0) (catch_all 0)
		l(e), end,
		i32c(3), drop, block(e), cat(0x08, u32(0)), end, // throw 0
		end,
		end,
		// Loop with a value-type blocktype, then a tail call.
		l([]byte{tI32}), i32c(3), end, drop,
		cat(0x12, u32(1)),
		end,
	)
	return [][]byte{
		types,
		sec(secFunction, vec(u32(0), u32(0), u32(0), u32(0))),
		sec(secTable, vec(cat(0x70, 0x00, u32(1)))),
		sec(secMemory, vec(cat(0x00, u32(1)))),
		sec(secTag, vec(cat(0x00, u32(0)))),
		onlyIf(chk != nil, globalSec()),
		onlyIf(chk != nil, exportSec(0)),
		sec(secElement, vec(cat(0x03, 0x00, vec(u32(3))))),
		codeSec(body, fn(noLocals, end), fn(noLocals, end), fn(noLocals, end)),
	}
}

// onlyIf is b when cond holds, else nothing.
func onlyIf(cond bool, b []byte) []byte {
	if !cond {
		return nil
	}
	return b
}

func TestInstrumentErrors(t *testing.T) {
	withBody := func(instrs ...[]byte) []byte {
		return wasmModule(types, sec(secFunction, vec(u32(0), u32(0))),
			codeSec(fn(noLocals, end), fn(noLocals, bytes.Join(instrs, nil))))
	}
	tests := []struct {
		name string
		in   []byte
		want error
		msg  string
	}{
		{"not wasm", []byte("hello, world"), ErrMalformed, "header"},
		{"empty", nil, ErrMalformed, "header"},
		{"component", cat(header[:4], 0x0d, 0x00, 0x01, 0x00), ErrUnsupported, "version"},
		{"already exported", wasmModule(types, oneFunc,
			sec(secGlobal, vec(constI32)),
			sec(secExport, vec(cat(name(ExportName), 0x03, u32(0))))), ErrExported, ""},
		{"ref.eq (GC)", withBody(cat(0xd3), end), ErrUnsupported, "function 1, offset 0x24: opcode 0xd3"},
		{"reserved opcode 0x27", withBody(cat(0x27), end), ErrUnsupported, "opcode 0x27"},
		{"reserved SIMD opcode", withBody(cat(0xfd, 0x9a, 0x01), end), ErrUnsupported, "0xfd 0x9a"},
		{"relaxed SIMD opcode", withBody(cat(0xfd, u32(0x100)), end), ErrUnsupported, "0xfd 0x80 0x02"},
		{"SIMD opcode not shortest", withBody(cat(0xfd, 0x8c, 0x00), end), ErrUnsupported, "0xfd 0x8c 0x00"},
		{"unknown atomic opcode", withBody(cat(0xfe, 0x04), end), ErrUnsupported, "0xfe 0x04"},
		{"unknown misc opcode", withBody(cat(0xfc, u32(18)), end), ErrUnsupported, "0xfc 18"},
		{"unknown block type", withBody(cat(0x03, 0x7a), end, end), ErrUnsupported, "block type -6"},
		{"unknown catch kind", withBody(cat(0x1f, 0x40, vec(cat(0x04, u32(0)))), end, end), ErrUnsupported, "catch kind 0x04"},
		{"unknown local type", wasmModule(types, oneFunc, codeSec(fn(vec(cat(u32(1), 0x6e)), end))), ErrUnsupported, "value type 0x6e"},
		{"64-bit memory import", wasmModule(sec(secImport, vec(cat(name("m"), name("m"), 0x02, 0x04, u32(1))))), ErrUnsupported, "limits flag 0x04"},
		{"truncated immediate", withBody(cat(0x41, 0x80)), ErrMalformed, "opcode 0x41"},
		{"LEB too long", withBody(cat(0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00), end), ErrMalformed, "integer too long"},
		{"body past the section", wasmModule(types, oneFunc, sec(secCode, vec(cat(u32(10), 0x00, 0x0b)))), ErrMalformed, "body"},
		{"section past the end", cat(header, secType, u32(10), 0x00), ErrMalformed, "section 1"},
		{"sections out of order", wasmModule(oneFunc, types), ErrMalformed, "out of order"},
		{"duplicate section", wasmModule(types, types), ErrMalformed, "out of order"},
		{"unknown section", wasmModule(sec(14)), ErrMalformed, "section id 14"},
		{"bytes after the last body", wasmModule(types, oneFunc, sec(secCode, vec(fn(noLocals, end)), 0x00)), ErrMalformed, "left over"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, loops, err := Instrument(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %q, want it to say %q", err, tc.msg)
			}
			if out != nil || loops != 0 {
				t.Errorf("out %d bytes, loops %d with an error", len(out), loops)
			}
			if tc.want == ErrUnsupported && errors.Is(err, ErrMalformed) {
				t.Errorf("err %v is both unsupported and malformed", err)
			}
		})
	}
}
