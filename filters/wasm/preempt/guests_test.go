package preempt

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
)

// EnvGuests names a directory of more guests (.wasm) for
// TestRepoGuests and BenchmarkInstrument, such as the test plugins
// that the wasm package builds only while its tests run.
const EnvGuests = "WAYGATE_PREEMPT_GUESTS"

// wasmFiles lists the .wasm files under dir.
func wasmFiles(t testing.TB, dir string) []string {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "node_modules" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".wasm") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return files
}

// repoGuests are the guests built on disk: under the wasm package's
// testdata, the AssemblyScript plugin its tests build and keep in a
// cache (see asPlugin in the wasm package), and in the directory
// EnvGuests names.
func repoGuests(t testing.TB) []string {
	files := wasmFiles(t, filepath.Join("..", "testdata"))
	files = append(files, wasmFiles(t, filepath.Join(os.TempDir(), "waygate-assemblyscript"))...)
	if dir := os.Getenv(EnvGuests); dir != "" {
		files = append(files, wasmFiles(t, dir)...)
	}
	return files
}

// TestRepoGuests instruments every guest built on disk (Go SDK,
// AssemblyScript SDK, raw-ABI and http-wasm plugins) and compiles the
// result as the host does.
func TestRepoGuests(t *testing.T) {
	files := repoGuests(t)
	if len(files) == 0 {
		t.Skipf("no built guest on disk (the wasm package builds its Go plugins only while its tests run); set %s to a directory of built guests", EnvGuests)
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer rt.Close(ctx)
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			bin, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			out, loops, err := Instrument(bin)
			if err != nil {
				t.Fatal(err)
			}
			if loops == 0 {
				t.Error("no loops instrumented")
			}
			if err := compiles(rt, out); err != nil {
				t.Fatalf("wazero refuses the instrumented guest: %v", err)
			}
			checkInstrumented(t, out, loops)
			t.Logf("%d bytes, %d loops, %d bytes instrumented", len(bin), loops, len(out))
		})
	}
}

// wazeroDir is where the wazero module is, with the Wasm binaries of
// its tests and examples: the spec test suites (core 1.0 and 2.0,
// threads, tail calls, exceptions, typed function references, extended
// constants), its fuzzers' cases and guests built by TinyGo, Rust, Zig,
// Emscripten and Go.
func wazeroDir(t testing.TB) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/tetratelabs/wazero").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Skipf("wazero's module directory: %v", err)
	}
	return dir
}

// TestWazeroCorpus instruments every Wasm binary of wazero's own tests:
// each one wazero compiles must instrument (or be unsupported, never
// malformed) and compile once instrumented.
func TestWazeroCorpus(t *testing.T) {
	files := wasmFiles(t, wazeroDir(t))
	if len(files) == 0 {
		t.Skip("no .wasm in wazero's module directory")
	}
	if testing.Short() {
		files = files[:len(files)/10]
	}
	rt := newRuntime(t)
	var accepted, instrumented, loops int
	unsupported := map[string]int{}
	for _, path := range files {
		bin, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out, n, ierr := Instrument(bin)
		if err := compiles(rt, bin); err != nil {
			continue // wazero refuses it too: Instrument only must not panic
		}
		accepted++
		switch {
		case errors.Is(ierr, ErrUnsupported):
			unsupported[ierr.Error()]++
			continue
		case ierr != nil:
			t.Errorf("%s: wazero compiles it, Instrument: %v", path, ierr)
			continue
		}
		if err := compiles(rt, out); err != nil {
			t.Errorf("%s: wazero refuses it instrumented: %v", path, err)
			continue
		}
		checkInstrumented(t, out, n)
		instrumented++
		loops += n
	}
	t.Logf("%d files, %d compiled by wazero, %d instrumented with %d loops", len(files), accepted, instrumented, loops)
	for msg, n := range unsupported {
		t.Logf("unsupported %d times: %s", n, msg)
	}
}
