package wasm

import (
	"errors"
	"fmt"
)

// httpHandlerModule is the host module http-wasm guests import from.
// https://http-wasm.io/http-handler-abi/
const httpHandlerModule = "http_handler"

var errNotWasm = errors.New("not a WebAssembly 1.0 binary")

// importsModule reports whether the Wasm binary code imports anything
// from module. It reads the import section only, so the filter's
// builder picks the ABI (http-wasm or Proxy-Wasm) before compiling, and
// compiles each plugin once.
// https://webassembly.github.io/spec/core/binary/modules.html#import-section
func importsModule(code []byte, module string) (bool, error) {
	if len(code) < 8 || string(code[:4]) != "\x00asm" || string(code[4:8]) != "\x01\x00\x00\x00" {
		return false, errNotWasm
	}
	r := wasmReader{b: code[8:]}
	for len(r.b) > 0 {
		id := r.byte()
		size := r.u32()
		if r.err != nil {
			return false, r.err
		}
		if uint64(size) > uint64(len(r.b)) {
			return false, fmt.Errorf("section %d: size %d past the end of the module", id, size)
		}
		body := wasmReader{b: r.b[:size]}
		r.b = r.b[size:]
		if id != 2 {
			continue
		}
		for n := body.u32(); n > 0 && body.err == nil; n-- {
			mod := body.name()
			body.name()
			body.importDesc()
			if body.err == nil && mod == module {
				return true, nil
			}
		}
		return false, body.err
	}
	return false, nil
}

// wasmReader decodes the binary format's primitives, remembering the
// first error.
type wasmReader struct {
	b   []byte
	err error
}

var errTruncated = errors.New("truncated module")

func (r *wasmReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errTruncated
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// uleb reads an unsigned LEB128 number of at most bits bits.
func (r *wasmReader) uleb(bits uint) uint64 {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if shift >= bits {
			r.err = errors.New("integer too long")
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
}

func (r *wasmReader) u32() uint32 { return uint32(r.uleb(32)) }

func (r *wasmReader) name() string {
	n := r.u32()
	if r.err != nil {
		return ""
	}
	if uint64(n) > uint64(len(r.b)) {
		r.err = errTruncated
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// importDesc skips an import's description: a function's type index, a
// table, a memory, a global or a tag.
func (r *wasmReader) importDesc() {
	switch kind := r.byte(); kind {
	case 0: // func typeidx
		r.u32()
	case 1: // table: reftype, limits
		r.byte()
		r.limits()
	case 2: // memory: limits
		r.limits()
	case 3: // global: valtype, mutability
		r.byte()
		r.byte()
	case 4: // tag (exception handling): attribute, typeidx
		r.byte()
		r.u32()
	default:
		if r.err == nil {
			r.err = fmt.Errorf("unknown import kind %#x", kind)
		}
	}
}

// limits skips a table's or memory's limits: flags, minimum and, when
// flag bit 0 says so, maximum (64-bit with memory64's flag bit 2).
func (r *wasmReader) limits() {
	flags := r.byte()
	bits := uint(32)
	if flags&4 != 0 {
		bits = 64
	}
	r.uleb(bits)
	if flags&1 != 0 {
		r.uleb(bits)
	}
}
