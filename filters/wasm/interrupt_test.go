package wasm

import (
	"os"
	"slices"
	"testing"

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
