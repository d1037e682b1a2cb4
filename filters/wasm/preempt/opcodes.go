package preempt

import "fmt"

// The instruction decoder. Finding every loop means walking every
// instruction with the length of its immediates exactly right: one byte
// off and an immediate is read as an opcode. The tables below give the
// immediates of each opcode wazero v1.12 accepts (the Wasm 2.0 core,
// threads, tail calls, exception handling with its legacy opcodes, and
// typed function references), read the way wazero reads them. Any
// other opcode is unsupported rather than guessed at.

// imm is the shape of the immediates that follow an opcode.
type imm uint8

const (
	immInvalid    imm = iota // not an opcode wazero knows
	immNone                  // no immediate
	immBlock                 // blocktype (block, if, legacy try)
	immLoop                  // blocktype, after which the check goes
	immU32                   // one index or label
	immU32x2                 // two indices
	immBrTable               // vec(label) label
	immMemarg                // memarg
	immS32                   // i32.const
	immS64                   // i64.const
	immBytes4                // f32.const
	immBytes8                // f64.const
	immSelectT               // vec(valtype)
	immRefNull               // heap type, as wazero reads it
	immTryTable              // blocktype vec(catch)
	immMisc                  // 0xFC prefix: u32 sub-opcode
	immSIMD                  // 0xFD prefix: sub-opcode byte
	immAtomic                // 0xFE prefix: sub-opcode byte
	immBytes16               // v128.const, i8x16.shuffle
	immLane                  // one lane byte
	immMemargLane            // memarg and a lane byte
	immFence                 // atomic.fence: one reserved byte
)

const opLoop = 0x03

// ops gives the immediates of each one-byte opcode.
var ops = func() (t [256]imm) {
	set := func(k imm, lo, hi int) {
		for op := lo; op <= hi; op++ {
			t[op] = k
		}
	}
	set(immNone, 0x00, 0x01)   // unreachable nop
	set(immBlock, 0x02, 0x02)  // block
	t[opLoop] = immLoop        // loop
	set(immBlock, 0x04, 0x04)  // if
	set(immNone, 0x05, 0x05)   // else
	set(immBlock, 0x06, 0x06)  // try (legacy)
	set(immU32, 0x07, 0x09)    // catch (legacy) throw rethrow (legacy)
	set(immNone, 0x0a, 0x0b)   // throw_ref end
	set(immU32, 0x0c, 0x0d)    // br br_if
	t[0x0e] = immBrTable       // br_table
	set(immNone, 0x0f, 0x0f)   // return
	set(immU32, 0x10, 0x10)    // call
	set(immU32x2, 0x11, 0x11)  // call_indirect
	set(immU32, 0x12, 0x12)    // return_call
	set(immU32x2, 0x13, 0x13)  // return_call_indirect
	set(immU32, 0x14, 0x15)    // call_ref return_call_ref
	set(immU32, 0x18, 0x18)    // delegate (legacy)
	set(immNone, 0x19, 0x1b)   // catch_all (legacy) drop select
	t[0x1c] = immSelectT       // select t*
	t[0x1f] = immTryTable      // try_table
	set(immU32, 0x20, 0x26)    // local.* global.* table.get table.set
	set(immMemarg, 0x28, 0x3e) // loads and stores
	set(immU32, 0x3f, 0x40)    // memory.size memory.grow
	t[0x41] = immS32           // i32.const
	t[0x42] = immS64           // i64.const
	t[0x43] = immBytes4        // f32.const
	t[0x44] = immBytes8        // f64.const
	set(immNone, 0x45, 0xc4)   // numeric, conversions, sign extension
	t[0xd0] = immRefNull       // ref.null
	set(immNone, 0xd1, 0xd1)   // ref.is_null
	set(immU32, 0xd2, 0xd2)    // ref.func
	set(immNone, 0xd4, 0xd4)   // ref.as_non_null
	set(immU32, 0xd5, 0xd6)    // br_on_null br_on_non_null
	t[0xfc] = immMisc
	t[0xfd] = immSIMD
	t[0xfe] = immAtomic
	return t
}()

// miscOps gives the immediates of the 0xFC sub-opcodes.
var miscOps = [...]imm{
	0x00: immNone, 0x01: immNone, 0x02: immNone, 0x03: immNone, // i32.trunc_sat_*
	0x04: immNone, 0x05: immNone, 0x06: immNone, 0x07: immNone, // i64.trunc_sat_*
	0x08: immU32x2, // memory.init data mem
	0x09: immU32,   // data.drop
	0x0a: immU32x2, // memory.copy mem mem
	0x0b: immU32,   // memory.fill mem
	0x0c: immU32x2, // table.init elem table
	0x0d: immU32,   // elem.drop
	0x0e: immU32x2, // table.copy table table
	0x0f: immU32,   // table.grow
	0x10: immU32,   // table.size
	0x11: immU32,   // table.fill
}

// simdOps gives the immediates of the 0xFD sub-opcodes. The reserved
// gaps of the SIMD opcode space stay immInvalid.
var simdOps = func() (t [256]imm) {
	for op := range t {
		t[op] = immNone
	}
	for op := 0x00; op <= 0x0b; op++ { // v128.load*, v128.store
		t[op] = immMemarg
	}
	t[0x0c] = immBytes16               // v128.const
	t[0x0d] = immBytes16               // i8x16.shuffle
	for op := 0x15; op <= 0x22; op++ { // extract_lane, replace_lane
		t[op] = immLane
	}
	for op := 0x54; op <= 0x5b; op++ { // v128.load*_lane, v128.store*_lane
		t[op] = immMemargLane
	}
	t[0x5c] = immMemarg // v128.load32_zero
	t[0x5d] = immMemarg // v128.load64_zero
	for _, op := range []int{
		0x9a, 0xa2, 0xa5, 0xa6, 0xaf, 0xb0, 0xb2, 0xb3, 0xb4, 0xbb,
		0xc2, 0xc5, 0xc6, 0xcf, 0xd0, 0xd2, 0xd3, 0xd4, 0xe2, 0xee,
	} {
		t[op] = immInvalid
	}
	return t
}()

// atomicOps gives the immediates of the 0xFE sub-opcodes.
var atomicOps = func() (t [256]imm) {
	for op := 0x00; op <= 0x02; op++ { // memory.atomic.notify, wait32, wait64
		t[op] = immMemarg
	}
	t[0x03] = immFence
	for op := 0x10; op <= 0x4e; op++ { // atomic loads, stores, rmw
		t[op] = immMemarg
	}
	return t
}()

// walkBody decodes the instructions in b[i:end] and appends to loops
// the offset just after the blocktype of each loop: where its check
// goes.
func walkBody(b []byte, i, end int, loops []int) ([]int, error) {
	b = b[:end]
	var err error
	for i < end {
		switch ops[b[i]] {
		case immNone:
			i++
		case immLoop:
			at := i
			if i, err = blockType(b, i+1); err != nil {
				return loops, opError(err, at, "opcode 0x03")
			}
			loops = append(loops, i)
		case immU32, immS32:
			// The most common immediates, mostly of one byte: inline.
			if i+1 < end && b[i+1] < 0x80 {
				i += 2
			} else if i, err = instr(b, i); err != nil {
				return loops, err
			}
		case immMemarg:
			if i+2 < end && b[i+1] < 0x40 && b[i+2] < 0x80 {
				i += 3
			} else if i, err = instr(b, i); err != nil {
				return loops, err
			}
		default:
			if i, err = instr(b, i); err != nil {
				return loops, err
			}
		}
	}
	return loops, nil
}

// skipConstExpr returns the offset after the constant expression at
// b[i:], which ends at its first end: a constant expression has no
// blocks.
func skipConstExpr(b []byte, i int) (int, error) {
	for {
		if i >= len(b) {
			return i, malformedAt(i, "constant expression", errTruncated)
		}
		if b[i] == 0x0b {
			return i + 1, nil
		}
		var err error
		if i, err = instr(b, i); err != nil {
			return i, err
		}
	}
}

// instr returns the offset after the instruction at b[i].
func instr(b []byte, i int) (int, error) {
	op := b[i]
	j, err := immediates(b, i+1, ops[op])
	if err != nil {
		return j, opError(err, i, "opcode %#02x", op)
	}
	return j, nil
}

// immediates returns the offset after immediates of shape k at b[i:].
func immediates(b []byte, i int, k imm) (int, error) {
	var err error
	switch k {
	case immNone:
		return i, nil
	case immBlock, immLoop:
		return blockType(b, i)
	case immU32:
		return skipLEB(b, i, maxLenU32)
	case immU32x2:
		if i, err = skipLEB(b, i, maxLenU32); err != nil {
			return i, err
		}
		return skipLEB(b, i, maxLenU32)
	case immBrTable:
		var n uint32
		if n, i, err = readU32(b, i); err != nil {
			return i, err
		}
		for k := uint64(0); k <= uint64(n) && err == nil; k++ {
			i, err = skipLEB(b, i, maxLenU32)
		}
		return i, err
	case immMemarg:
		return memarg(b, i)
	case immS32:
		return skipLEB(b, i, maxLenU32)
	case immS64:
		return skipLEB(b, i, maxLenS64)
	case immBytes4:
		return fixed(b, i, 4)
	case immBytes8:
		return fixed(b, i, 8)
	case immBytes16:
		return fixed(b, i, 16)
	case immLane:
		return fixed(b, i, 1)
	case immFence:
		return fixed(b, i, 1)
	case immMemargLane:
		if i, err = memarg(b, i); err != nil {
			return i, err
		}
		return fixed(b, i, 1)
	case immSelectT:
		var n uint32
		if n, i, err = readU32(b, i); err != nil {
			return i, err
		}
		for k := uint64(0); k < uint64(n) && err == nil; k++ {
			i, err = valType(b, i)
		}
		return i, err
	case immRefNull:
		// wazero takes the abstract heap types func, extern and exn as
		// one byte, and anything else as a u32 type index.
		if i >= len(b) {
			return i, errTruncated
		}
		switch b[i] {
		case 0x70, 0x6f, 0x69:
			return i + 1, nil
		}
		return skipLEB(b, i, maxLenU32)
	case immTryTable:
		return tryTable(b, i)
	case immMisc:
		return misc(b, i)
	case immSIMD:
		return simd(b, i)
	case immAtomic:
		return atomic(b, i)
	}
	return i, errUnknown
}

// errUnknown marks an opcode the tables do not have; opError turns it
// into ErrUnsupported.
var errUnknown = fmt.Errorf("unknown opcode")

func fixed(b []byte, i, n int) (int, error) {
	if len(b)-i < n {
		return len(b), errTruncated
	}
	return i + n, nil
}

// memarg skips an alignment and an offset, with a memory index between
// them when bit 6 of the alignment is set (multiple memories).
func memarg(b []byte, i int) (int, error) {
	align, i, err := readU32(b, i)
	if err != nil {
		return i, err
	}
	if align&0x40 != 0 {
		if i, err = skipLEB(b, i, maxLenU32); err != nil {
			return i, err
		}
	}
	return skipLEB(b, i, maxLenU32)
}

// blockType skips a blocktype: an s33 that is the empty type, a value
// type (a reference type with its heap type) or a type index.
func blockType(b []byte, i int) (int, error) {
	v, i, err := readS33(b, i)
	if err != nil {
		return i, err
	}
	switch {
	case v >= 0: // type index
		return i, nil
	case v == -0x40 || (v >= -5 && v <= -1) || v == -0x10 || v == -0x11 || v == -0x17:
		// empty, i32 i64 f32 f64 v128, funcref externref exnref
		return i, nil
	case v == -0x1d || v == -0x1c: // (ref null ht), (ref ht)
		return skipLEB(b, i, maxLenU32)
	}
	return i, fmt.Errorf("%w: block type %d", errUnknown, v)
}

// valType skips a value type in a typed select or a local declaration.
func valType(b []byte, i int) (int, error) {
	if i >= len(b) {
		return i, errTruncated
	}
	switch b[i] {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f, 0x69:
		return i + 1, nil
	case 0x63, 0x64: // (ref null ht), (ref ht)
		return skipLEB(b, i+1, maxLenU32)
	}
	return i, fmt.Errorf("%w: value type %#02x", errUnknown, b[i])
}

// tryTable skips the blocktype and catch clauses of try_table.
func tryTable(b []byte, i int) (int, error) {
	i, err := blockType(b, i)
	if err != nil {
		return i, err
	}
	var n uint32
	if n, i, err = readU32(b, i); err != nil {
		return i, err
	}
	for k := uint64(0); k < uint64(n); k++ {
		if i >= len(b) {
			return i, errTruncated
		}
		switch kind := b[i]; kind {
		case 0x00, 0x01: // catch, catch_ref: tag label
			i, err = immediates(b, i+1, immU32x2)
		case 0x02, 0x03: // catch_all, catch_all_ref: label
			i, err = skipLEB(b, i+1, maxLenU32)
		default:
			return i, fmt.Errorf("%w: catch kind %#02x", errUnknown, kind)
		}
		if err != nil {
			return i, err
		}
	}
	return i, nil
}

func misc(b []byte, i int) (int, error) {
	sub, i, err := readU32(b, i)
	if err != nil {
		return i, err
	}
	if sub >= uint32(len(miscOps)) {
		return i, fmt.Errorf("%w: 0xfc %d", errUnknown, sub)
	}
	if i, err = immediates(b, i, miscOps[sub]); err != nil {
		return i, fmt.Errorf("0xfc %d: %w", sub, err)
	}
	return i, nil
}

// simd skips a SIMD sub-opcode and its immediates. The sub-opcode is a
// u32 LEB128, but wazero reads it as one byte (and the 0x01 that ends
// the two-byte encoding of 0x80 to 0xFF as a nop): only the shortest
// encoding, where both readings agree, is accepted.
func simd(b []byte, i int) (int, error) {
	if i >= len(b) {
		return i, errTruncated
	}
	sub := b[i]
	i++
	if sub >= 0x80 {
		if i >= len(b) {
			return i, errTruncated
		}
		if b[i] != 0x01 {
			return i, fmt.Errorf("%w: 0xfd %#02x %#02x (beyond 0xff or not the shortest encoding)", errUnknown, sub, b[i])
		}
		i++
	}
	k := simdOps[sub]
	if k == immInvalid {
		return i, fmt.Errorf("%w: 0xfd %#02x", errUnknown, sub)
	}
	return immediates(b, i, k)
}

// atomic skips a threads sub-opcode and its immediates. wazero reads
// the sub-opcode as one byte; all of them are below 0x80.
func atomic(b []byte, i int) (int, error) {
	if i >= len(b) {
		return i, errTruncated
	}
	sub := b[i]
	k := atomicOps[sub]
	if k == immInvalid {
		return i, fmt.Errorf("%w: 0xfe %#02x", errUnknown, sub)
	}
	return immediates(b, i+1, k)
}
