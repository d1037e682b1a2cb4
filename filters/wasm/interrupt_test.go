package wasm

import (
	"context"
	"os"
	"slices"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/waygate/waygate/filters/wasm/preempt"
)

// TestGuestsInterruptible checks that every test guest, built with the
// Go toolchain (and AssemblyScript when it is installed), is compiled
// rewritten for the interrupter rather than with wazero's slower
// termination checks, and that a negative CallTimeout leaves the code
// as it is.
func TestGuestsInterruptible(t *testing.T) {
	names := make([]string, 0, len(pluginPath))
	for name := range pluginPath {
		names = append(names, name)
	}
	slices.Sort(names)
	names = append(names, "assemblyscript")
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			path := pluginPath[name]
			if name == "assemblyscript" {
				path = asPlugin(t)
			}
			code, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			e, err := compileCode(t.Context(), code, Options{}.withDefaults())
			if err != nil {
				t.Fatal(err)
			}
			defer e.close(t.Context())
			if !e.interruptible {
				_, _, err := preempt.Instrument(code)
				t.Fatalf("compiled without the interrupter: %v", err)
			}

			untimed := Options{CallTimeout: -1}.withDefaults()
			e2, err := compileCode(t.Context(), code, untimed)
			if err != nil {
				t.Fatal(err)
			}
			defer e2.close(t.Context())
			if e2.interruptible {
				t.Fatal("code with no call deadline was rewritten")
			}
		})
	}
}

// TestBoundLateFire checks that a start timeout firing after the start's
// calls returned leaves the interrupt clear for the instance's next call.
func TestBoundLateFire(t *testing.T) {
	code, err := os.ReadFile(pluginPath["rawabi"])
	if err != nil {
		t.Fatal(err)
	}
	e, err := compileCode(t.Context(), code, Options{}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	defer e.close(t.Context())
	if err := e.link(t.Context(), testLog(t)); err != nil {
		t.Fatal(err)
	}
	mod, err := e.rt.InstantiateModule(t.Context(), e.compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close(t.Context())
	intr := newInterrupter(mod)
	if intr == nil {
		t.Fatal("no interrupter for a rewritten module")
	}
	ctx, cancel := context.WithCancel(t.Context())
	stop := intr.bound(ctx)
	cancel() // the timeout, after the calls under ctx returned
	eventually(t, "the interrupt set", func() bool { return intr.g.Get() == 1 })
	stop()
	if got := intr.g.Get(); got != 0 {
		t.Fatalf("interrupt = %d after stop, want 0", got)
	}

	// A fire before stop, during a call, stays set until the call ends it.
	ctx, cancel = context.WithCancel(t.Context())
	stop = intr.bound(ctx)
	stop()
	cancel()
	if got := intr.g.Get(); got != 0 {
		t.Fatalf("interrupt = %d after a cancel past stop, want 0", got)
	}
}
