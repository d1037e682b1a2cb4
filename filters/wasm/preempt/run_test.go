package preempt

import (
	"context"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// runModule has a function "spin" that loops forever, "count" that
// counts to its argument in a loop, and "nested" that spins in a loop
// inside a loop inside a called function.
var runModule = wasmModule(
	sec(secType, vec(functype(nil, nil), functype([]byte{tI32}, []byte{tI32}))),
	sec(secFunction, vec(u32(0), u32(1), u32(0), u32(0))),
	sec(secExport, vec(exportFunc("spin", 0), exportFunc("count", 1), exportFunc("nested", 2))),
	codeSec(
		// spin: loop br 0 end
		fn(noLocals, loop(e), br(0), end, end),
		// count(n): i := 0; loop { i++; br_if i < n }; return i
		fn(vec(cat(u32(1), tI32)),
			loop(e),
			localGet(1), i32c(1), i32Add, localSet(1),
			localGet(1), localGet(0), i32LtU, brIf(0),
			end,
			localGet(1), end),
		// nested: loop { call inner; br 0 }
		fn(noLocals, loop(e), call(3), br(0), end, end),
		// inner: counts down from 1000 in a loop, then returns
		fn(vec(cat(u32(1), tI32)),
			i32c(1000), localSet(0),
			loop(e), localGet(0), i32c(-1), i32Add, localSet(0), localGet(0), brIf(0), end,
			end),
	),
)

// instantiate instruments bin and instantiates it on a compiler runtime
// without wazero's termination checks.
func instantiate(t *testing.T, bin []byte) (api.Module, api.MutableGlobal) {
	t.Helper()
	out, _, err := Instrument(bin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	t.Cleanup(func() { rt.Close(ctx) })
	mod, err := rt.Instantiate(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := mod.ExportedGlobal(ExportName).(api.MutableGlobal)
	if !ok {
		t.Fatalf("%s is not a mutable global: %v", ExportName, mod.ExportedGlobal(ExportName))
	}
	if g.Type() != api.ValueTypeI32 || g.Get() != 0 {
		t.Fatalf("%s: type %v value %d, want i32 0", ExportName, g.Type(), g.Get())
	}
	return mod, g
}

// interrupt calls the function name in a goroutine, sets g after a few milliseconds
// and wants the call to end with the unreachable trap within a second.
func interrupt(t *testing.T, mod api.Module, name string, g api.MutableGlobal) {
	t.Helper()
	f := mod.ExportedFunction(name)
	done := make(chan error, 1)
	go func() {
		_, err := f.Call(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("%s returned before the interrupt: %v", name, err)
	case <-time.After(5 * time.Millisecond):
	}
	start := time.Now()
	g.Set(1)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("%s: err = %v, want the unreachable trap", name, err)
		}
		t.Logf("%s stopped %v after the interrupt", name, time.Since(start))
	case <-time.After(time.Second):
		t.Fatalf("%s still running a second after the interrupt", name)
	}
}

// noGC turns the garbage collector off for the rest of the test. A
// goroutine running compiled Wasm cannot be preempted, so a collection
// that stops the world while a guest spins waits for the guest, and the
// goroutine that would set the global waits for the collection: see
// the package documentation. A cycle may have started just before the
// collector was turned off: runtime.GC waits for it to end.
func noGC(t *testing.T) {
	prev := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	runtime.GC()
}

func TestInterrupt(t *testing.T) {
	noGC(t)
	mod, g := instantiate(t, runModule)
	ctx := context.Background()

	interrupt(t, mod, "spin", g)

	g.Set(0)
	res, err := mod.ExportedFunction("count").Call(ctx, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	if res[0] != 1_000_000 {
		t.Fatalf("count(1e6) = %d", res[0])
	}

	// Again, with the trap in a loop of a called function.
	interrupt(t, mod, "nested", g)
	g.Set(0)
	interrupt(t, mod, "spin", g)
	g.Set(0)
	if res, err := mod.ExportedFunction("count").Call(ctx, 10); err != nil || res[0] != 10 {
		t.Fatalf("count(10) after interrupts = %v, %v", res, err)
	}
}

// TestInterruptImportedGlobals checks the index of the new global when
// the module imports globals of other types: a wrong index would not
// even validate.
func TestInterruptImportedGlobals(t *testing.T) {
	noGC(t)
	ctx := context.Background()
	env := wasmModule(
		sec(secGlobal, vec(mutI64, cat(tF32, 0x00, cat(0x43, 0, 0, 0x80, 0x3f), end))),
		sec(secExport, vec(cat(name("g0"), 0x03, u32(0)), cat(name("g1"), 0x03, u32(1)))),
	)
	guest := wasmModule(
		sec(secType, vec(functype(nil, nil))),
		sec(secImport, vec(
			cat(name("env"), name("g0"), 0x03, tI64, 0x01),
			cat(name("env"), name("g1"), 0x03, tF32, 0x00),
		)),
		sec(secFunction, vec(u32(0))),
		sec(secGlobal, vec(constI32)),
		sec(secExport, vec(exportFunc("spin", 0))),
		codeSec(fn(noLocals, loop(e), br(0), end, end)),
	)
	out, loops, err := Instrument(guest)
	if err != nil || loops != 1 {
		t.Fatalf("Instrument: %d loops, %v", loops, err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer rt.Close(ctx)
	if _, err := rt.InstantiateWithConfig(ctx, env, wazero.NewModuleConfig().WithName("env")); err != nil {
		t.Fatal(err)
	}
	mod, err := rt.Instantiate(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := mod.ExportedGlobal(ExportName).(api.MutableGlobal)
	if !ok || g.Type() != api.ValueTypeI32 {
		t.Fatalf("%s: %v", ExportName, mod.ExportedGlobal(ExportName))
	}
	interrupt(t, mod, "spin", g)
}
