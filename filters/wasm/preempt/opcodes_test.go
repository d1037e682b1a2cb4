package preempt

import (
	"bytes"
	"fmt"
	"testing"
)

// samples are canonical encodings of immediates of shape k, valid in
// opcodeEnv: index 0, lane 0 and so on; a memarg with each alignment,
// as an atomic access needs its natural alignment. Constants are made
// of the loop opcode, so that reading them as instructions, or one
// byte too many, shows in the count of loops.
func samples(k imm) [][]byte {
	switch k {
	case immMemarg, immMemargLane:
		var all [][]byte
		for align := byte(0); align <= 4; align++ {
			s := []byte{align, 0x00}
			if k == immMemargLane {
				s = append(s, 0x00)
			}
			all = append(all, s)
		}
		return all
	}
	return [][]byte{sample(k)}
}

func sample(k imm) []byte {
	switch k {
	case immBlock, immLoop:
		return []byte{0x40}
	case immU32, immS32, immS64, immLane, immFence:
		return []byte{0x00}
	case immU32x2, immMemarg:
		return []byte{0x00, 0x00}
	case immMemargLane:
		return []byte{0x00, 0x00, 0x00}
	case immBrTable:
		return []byte{0x01, 0x00, 0x00}
	case immBytes4:
		return bytes.Repeat([]byte{opLoop}, 4)
	case immBytes8:
		return bytes.Repeat([]byte{opLoop}, 8)
	case immBytes16:
		return bytes.Repeat([]byte{opLoop}, 16)
	case immSelectT:
		return []byte{0x01, tI32}
	case immRefNull:
		return []byte{0x70}
	case immTryTable:
		return []byte{0x40, 0x00}
	}
	return nil
}

// opcodeEnv is a module in which the function 1 runs instr from an
// unreachable state, so that any operands type-check, then a loop:
//
//	unreachable  instr  unreachable  loop end  end
//
// It has a local, global, table, memory, tag, element and data segment
// for instr's indices to name.
func opcodeEnv(instr []byte) []byte {
	return wasmModule(
		types,
		sec(secFunction, vec(u32(0), u32(0))),
		sec(secTable, vec(cat(0x70, 0x00, u32(1)))),
		sec(secMemory, vec(cat(0x01, u32(1), u32(1)))),
		sec(secTag, vec(cat(0x00, u32(0)))),
		sec(secGlobal, vec(cat(tI32, 0x01, i32c(0), end))),
		sec(secElement, vec(cat(0x03, 0x00, vec(u32(0))))),
		sec(secDataCount, u32(1)),
		codeSec(fn(noLocals, end), fn(vec(cat(u32(1), tI32)),
			unreachable, instr, unreachable, loop(e), end, end)),
		sec(secData, vec(cat(0x01, name("x")))),
	)
}

// notAlone are opcodes the tables know but that are refused out of
// their construct (else, end) or by wazero v1.12 at all (the legacy
// exception handling opcodes).
var notAlone = map[string]bool{
	"05": true, "0b": true, // else, end
	"06": true, "07": true, "09": true, "18": true, "19": true, // try, catch, rethrow, delegate, catch_all
}

// TestOpcodeTables checks the opcode tables against wazero: every
// opcode, with every prefix, with the immediates of its shape. An
// opcode wazero compiles must instrument, with the loop after it found
// and the result compiled; an opcode the tables know must be one
// wazero compiles, but for notAlone.
func TestOpcodeTables(t *testing.T) {
	rt := newRuntime(t)
	type opcode struct {
		enc []byte // opcode and sub-opcode
		k   imm
	}
	var all []opcode
	for op := 0; op < 256; op++ {
		switch op {
		case 0xfc:
			for sub := 0; sub < 32; sub++ {
				k := immInvalid
				if sub < len(miscOps) {
					k = miscOps[sub]
				}
				all = append(all, opcode{cat(op, u32(uint32(sub))), k})
			}
		case 0xfd:
			for sub := 0; sub < 256; sub++ {
				all = append(all, opcode{cat(op, u32(uint32(sub))), simdOps[sub]})
			}
		case 0xfe:
			for sub := 0; sub < 256; sub++ {
				all = append(all, opcode{cat(op, sub), atomicOps[sub]})
			}
		default:
			all = append(all, opcode{cat(op), ops[op]})
		}
	}
	var known, accepted int
	for _, o := range all {
		var in []byte
		var werr error
		for _, imm := range samples(o.k) {
			instr := cat(o.enc, imm)
			switch o.k {
			case immBlock, immLoop, immTryTable:
				instr = cat(instr, end)
			}
			if bytes.Equal(o.enc, []byte{0xd6}) {
				// br_on_non_null branches with the reference: to a
				// label that takes one.
				instr = cat(block([]byte{0x70}), unreachable, instr, end)
			}
			in = opcodeEnv(instr)
			if werr = compiles(rt, in); werr == nil {
				break
			}
		}
		out, loops, err := Instrument(in)
		name := fmt.Sprintf("% x", o.enc)
		if o.k != immInvalid {
			known++
		}
		if werr == nil {
			accepted++
			want := 1
			if bytes.Equal(o.enc, []byte{opLoop}) {
				want = 2
			}
			switch {
			case err != nil:
				t.Errorf("%s: wazero compiles it, Instrument: %v", name, err)
			case loops != want:
				t.Errorf("%s: %d loops, want %d", name, loops, want)
			default:
				if err := compiles(rt, out); err != nil {
					t.Errorf("%s: wazero refuses it instrumented: %v", name, err)
				}
			}
			continue
		}
		if o.k != immInvalid && !notAlone[name] {
			t.Errorf("%s: the tables know it, wazero refuses it: %v", name, werr)
		}
		if o.k == immInvalid && err == nil {
			t.Errorf("%s: unknown to the tables, yet instrumented", name)
		}
	}
	t.Logf("%d opcodes tried, %d known to the tables, %d compiled by wazero", len(all), known, accepted)
}
