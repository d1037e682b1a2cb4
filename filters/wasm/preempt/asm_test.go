package preempt

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// A small assembler of Wasm binaries, so that tests state modules
// byte by byte without a text-format compiler.

// cat concatenates byte slices and single bytes.
func cat(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch p := p.(type) {
		case []byte:
			b = append(b, p...)
		case byte:
			b = append(b, p)
		case int:
			b = append(b, byte(p))
		case string:
			b = append(b, p...)
		default:
			panic("cat: unexpected part")
		}
	}
	return b
}

func u32(v uint32) []byte { return appendU32(nil, v) }

// s64 is a signed LEB128.
func s64(v int64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func name(s string) []byte { return cat(u32(uint32(len(s))), s) }

// vec is a vector: its length, then its items.
func vec(items ...[]byte) []byte {
	return cat(u32(uint32(len(items))), bytes.Join(items, nil))
}

// sec is a section of id with the given contents.
func sec(id byte, contents ...any) []byte {
	c := cat(contents...)
	return cat(id, u32(uint32(len(c))), c)
}

func wasmModule(sections ...[]byte) []byte { return cat(header, bytes.Join(sections, nil)) }

// Value types.
const (
	tI32  = 0x7f
	tI64  = 0x7e
	tF32  = 0x7d
	tF64  = 0x7c
	tV128 = 0x7b
)

// functype is a function type.
func functype(params, results []byte) []byte {
	return cat(0x60, u32(uint32(len(params))), params, u32(uint32(len(results))), results)
}

// fn is one entry of the code section: locals (a vector of
// count/type pairs) then the instructions.
func fn(locals []byte, instrs ...[]byte) []byte {
	b := cat(locals, bytes.Join(instrs, nil))
	return cat(u32(uint32(len(b))), b)
}

// noLocals is an empty locals vector.
var noLocals = []byte{0x00}

// Instructions.
func i32c(v int32) []byte      { return cat(0x41, s64(int64(v))) }
func i64c(v int64) []byte      { return cat(0x42, s64(v)) }
func localGet(i uint32) []byte { return cat(0x20, u32(i)) }
func localSet(i uint32) []byte { return cat(0x21, u32(i)) }
func globalGet(i uint32) []byte {
	return cat(0x23, u32(i))
}
func call(i uint32) []byte { return cat(0x10, u32(i)) }
func br(l uint32) []byte   { return cat(0x0c, u32(l)) }
func brIf(l uint32) []byte { return cat(0x0d, u32(l)) }

var (
	end         = []byte{0x0b}
	drop        = []byte{0x1a}
	nop         = []byte{0x01}
	unreachable = []byte{0x00}
	i32Add      = []byte{0x6a}
	i32LtU      = []byte{0x49}
	emptyBT     = []byte{0x40}
)

func block(bt []byte) []byte { return cat(0x02, bt) }
func loop(bt []byte) []byte  { return cat(0x03, bt) }
func ifBT(bt []byte) []byte  { return cat(0x04, bt) }

// exportFunc is an export entry of function i.
func exportFunc(n string, i uint32) []byte { return cat(name(n), 0x00, u32(i)) }

// allFeatures is every feature wazero v1.12 has.
const allFeatures = api.CoreFeaturesV2 | experimental.CoreFeaturesThreads |
	experimental.CoreFeaturesTailCall | experimental.CoreFeaturesExtendedConst |
	experimental.CoreFeaturesExceptionHandling | experimental.CoreFeaturesTypedFunctionReferences

// newRuntime is a compiler runtime with every feature and no
// termination checks of its own.
func newRuntime(t testing.TB) wazero.Runtime {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCoreFeatures(allFeatures))
	t.Cleanup(func() { rt.Close(ctx) })
	return rt
}

// compiles tells whether rt compiles bin, and why not. wazero v1.12
// panics on some invalid modules (a call to a function whose type
// index is out of range): that is an error here too.
func compiles(rt wazero.Runtime, bin []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("wazero panicked: %v", p)
		}
	}()
	ctx := context.Background()
	c, err := rt.CompileModule(ctx, bin)
	if err != nil {
		return err
	}
	return c.Close(ctx)
}

// checkInstrumented checks that out has loops checks of the exported
// global, each right after a loop's blocktype, by walking out again.
func checkInstrumented(t testing.TB, out []byte, loops int) {
	t.Helper()
	m, err := parseModule(out)
	if err != nil {
		t.Fatalf("instrumented module does not parse: %v", err)
	}
	if m.global < 0 || m.export < 0 {
		t.Fatalf("instrumented module has no global or export section")
	}
	g := m.importedGlobals + m.globals - 2
	chk := check(g)
	var at []int
	if m.code >= 0 {
		if _, at, err = walkCode(out, m.sections[m.code], m.importedFuncs); err != nil {
			t.Fatalf("instrumented code does not decode: %v", err)
		}
	}
	if len(at) != loops {
		t.Fatalf("instrumented module has %d loops, want %d", len(at), loops)
	}
	for _, p := range at {
		if !bytes.HasPrefix(out[p:], chk) {
			t.Fatalf("loop at %#x is not followed by the check % x: % x", p, chk, out[p:min(len(out), p+len(chk))])
		}
	}
	if _, _, err := Instrument(out); err != ErrExported {
		t.Fatalf("instrumenting again: %v, want ErrExported", err)
	}
}
