package preempt

import (
	"context"
	"runtime"
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
	memSec,
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

func TestInterrupt(t *testing.T) {
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
		memSec,
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

// TestSpinnersYield runs as many spinning guests as there are Ps, then
// collects garbage and sets the interrupt from other goroutines: both
// need a P, which they get only because the check leaves compiled code
// for Go every 65,536 iterations (Go cannot preempt compiled Wasm).
// Without that exit, the collection waits forever and so does the test.
func TestSpinnersYield(t *testing.T) {
	n := runtime.GOMAXPROCS(0)
	type spinner struct {
		g    api.MutableGlobal
		done chan error
	}
	var spinners []spinner
	for range n {
		mod, g := instantiate(t, runModule)
		sp := spinner{g: g, done: make(chan error, 1)}
		go func() {
			_, err := mod.ExportedFunction("spin").Call(context.Background())
			sp.done <- err
		}()
		spinners = append(spinners, sp)
	}
	time.Sleep(20 * time.Millisecond)
	gc := make(chan struct{})
	go func() {
		runtime.GC()
		close(gc)
	}()
	select {
	case <-gc:
	case <-time.After(10 * time.Second):
		t.Fatal("a collection did not finish in 10s while every P ran a spinning guest")
	}
	stop := make(chan struct{})
	go func() {
		for _, sp := range spinners {
			sp.g.Set(1)
		}
		close(stop)
	}()
	for i, sp := range spinners {
		select {
		case err := <-sp.done:
			if err == nil || !strings.Contains(err.Error(), "unreachable") {
				t.Errorf("spinner %d: err = %v, want the unreachable trap", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("spinner %d still running 10s after the interrupt", i)
		}
	}
	<-stop
}

// TestStartExported checks that a start function no longer runs inside
// instantiation, where it could not be interrupted, but is exported as
// StartExport for the host to call.
func TestStartExported(t *testing.T) {
	guest := wasmModule(
		sec(secType, vec(functype(nil, nil), functype(nil, []byte{tI32}))),
		sec(secFunction, vec(u32(0), u32(1))),
		memSec,
		sec(secGlobal, vec(cat(tI32, 0x01, i32c(0), end))),
		sec(secExport, vec(exportFunc("started", 1))),
		sec(secStart, u32(0)),
		codeSec(
			// start: global 0 = 7
			fn(noLocals, i32c(7), cat(0x24, u32(0)), end),
			// started: global 0
			fn(noLocals, globalGet(0), end),
		),
	)
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer rt.Close(ctx)
	mod, err := rt.InstantiateWithConfig(ctx, guest, wazero.NewModuleConfig().WithName("plain"))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := mod.ExportedFunction("started").Call(ctx); err != nil || res[0] != 7 {
		t.Fatalf("uninstrumented: started() = %v, %v; want 7", res, err)
	}
	out, _, err := Instrument(guest)
	if err != nil {
		t.Fatal(err)
	}
	mod, err = rt.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithName("instrumented"))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := mod.ExportedFunction("started").Call(ctx); err != nil || res[0] != 0 {
		t.Fatalf("instrumented, before %s: started() = %v, %v; want 0", StartExport, res, err)
	}
	start := mod.ExportedFunction(StartExport)
	if start == nil {
		t.Fatalf("%s is not exported", StartExport)
	}
	if _, err := start.Call(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := mod.ExportedFunction("started").Call(ctx); err != nil || res[0] != 7 {
		t.Fatalf("instrumented, after %s: started() = %v, %v; want 7", StartExport, res, err)
	}
}
