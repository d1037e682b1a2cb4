package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/waygate/waygate/filters/wasm/preempt"
)

// compilationCaches holds one wazero compilation cache per directory,
// process-wide: a cache is keyed by the sha256 of the code (and
// wazero's version), so every plugin built from the same binary, in any
// listener and across config pushes, compiles once.
var compilationCaches sync.Map // dir -> wazero.CompilationCache

func compilationCache(dir string) wazero.CompilationCache {
	if c, ok := compilationCaches.Load(dir); ok {
		return c.(wazero.CompilationCache)
	}
	c, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		// An unwritable directory costs speed, not correctness.
		c = wazero.NewCompilationCache()
	}
	actual, _ := compilationCaches.LoadOrStore(dir, c)
	return actual.(wazero.CompilationCache)
}

// engine is one plugin binary compiled in its own wazero runtime, with
// the host modules linked for exactly the imports it declares. Every
// instance of the plugin's pool is instantiated from it.
type engine struct {
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	sha256   string
	abi      string // the proxy_abi_version_* export found
	// interruptible is set when the code was rewritten so that a call
	// is stopped through its instance's interrupter (interrupt.go)
	// rather than by wazero closing the module.
	interruptible bool
}

// abiVersions are the Proxy-Wasm ABI markers a module may export, newest
// first: https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#proxy_abi_version_0_2_1
var abiVersions = []string{"proxy_abi_version_0_2_1", "proxy_abi_version_0_2_0", "proxy_abi_version_0_1_0"}

var errNotProxyWasm = errors.New("module exports no proxy_abi_version_* function: not a Proxy-Wasm plugin")

func newEngine(ctx context.Context, code []byte, o Options, log *slog.Logger) (*engine, error) {
	e, err := compileCode(ctx, code, o)
	if err != nil {
		return nil, err
	}
	rt, compiled := e.rt, e.compiled
	exports := compiled.ExportedFunctions()
	for _, v := range abiVersions {
		if _, ok := exports[v]; ok {
			e.abi = v
			break
		}
	}
	if e.abi == "" {
		rt.Close(ctx)
		return nil, errNotProxyWasm
	}
	if _, ok := compiled.ExportedMemories()["memory"]; !ok {
		// Every hostcall passes data through the plugin's memory.
		rt.Close(ctx)
		return nil, errors.New("module exports no memory")
	}
	if _, ok := exports["proxy_on_memory_allocate"]; !ok {
		if _, ok := exports["malloc"]; !ok {
			rt.Close(ctx)
			return nil, errors.New("module exports neither proxy_on_memory_allocate nor malloc")
		}
	}
	if err := e.link(ctx, log); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	return e, nil
}

func (e *engine) close(ctx context.Context) { e.rt.Close(ctx) }

// compileCode compiles code in a wazero runtime of its own, with the
// host's compilation cache, memory page limit and per-call deadline
// (none with a negative CallTimeout): the same runtime for a plugin of
// either ABI, Proxy-Wasm or http-wasm.
//
// The deadline is enforced by rewriting the code with preempt, so that
// the host can stop a call through its instance's interrupter. Code
// preempt cannot rewrite is compiled as it is, with wazero's
// WithCloseOnContextDone: a call ends when its context is done, at a
// cost of a goroutine per call.
func compileCode(ctx context.Context, code []byte, o Options) (*engine, error) {
	sum := sha256.Sum256(code)
	interruptible := false
	if o.CallTimeout >= 0 {
		if rewritten, _, err := preempt.Instrument(code); err == nil {
			code, interruptible = rewritten, true
		}
	}
	cfg := wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(compilationCache(o.CacheDir)).
		WithCloseOnContextDone(o.CallTimeout >= 0 && !interruptible).
		WithMemoryLimitPages(o.MemoryLimitPages)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	compiled, err := rt.CompileModule(ctx, code)
	if err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("compiling: %w", err)
	}
	return &engine{rt: rt, compiled: compiled, sha256: hex.EncodeToString(sum[:]), interruptible: interruptible}, nil
}

// link instantiates the host modules the plugin imports from: WASI
// preview 1 and "env" with the Proxy-Wasm hostcalls. Any imported
// function the host does not implement, in any module, is defined to
// return UNIMPLEMENTED (12), so that plugins built with any SDK link
// and learn at call time what is missing, as in Envoy.
func (e *engine) link(ctx context.Context, log *slog.Logger) error {
	byModule, err := e.linkWASI(ctx, log)
	if err != nil {
		return err
	}

	mods := make([]string, 0, len(byModule))
	for m := range byModule {
		mods = append(mods, m)
	}
	slices.Sort(mods)
	for _, m := range mods {
		b := e.rt.NewHostModuleBuilder(m)
		for _, def := range byModule[m] {
			_, name, _ := def.Import()
			h, ok := hostcalls[name]
			if m == "env" && ok && slices.Equal(h.params, def.ParamTypes()) && slices.Equal(h.results, def.ResultTypes()) {
				fn := h.fn
				if callouts[name] {
					fn = trackCallout(fn)
				}
				b.NewFunctionBuilder().WithGoModuleFunction(fn, h.params, h.results).Export(name)
				continue
			}
			if ok && m == "env" {
				log.Warn("plugin imports a hostcall with an unexpected signature; it returns UNIMPLEMENTED", "function", name)
			}
			stub(b, def, uint64(statusUnimplemented))
		}
		if _, err := b.Instantiate(ctx); err != nil {
			return fmt.Errorf("linking %s: %w", m, err)
		}
	}
	return nil
}

// linkWASI instantiates WASI preview 1, with a stub returning ENOSYS
// for any WASI function the host lacks, and returns the plugin's other
// imports by module, for the caller to link.
func (e *engine) linkWASI(ctx context.Context, log *slog.Logger) (map[string][]api.FunctionDefinition, error) {
	byModule := map[string][]api.FunctionDefinition{}
	for _, def := range e.compiled.ImportedFunctions() {
		mod, _, _ := def.Import()
		byModule[mod] = append(byModule[mod], def)
	}
	wasiBuilder := e.rt.NewHostModuleBuilder(wasi_snapshot_preview1.ModuleName)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(wasiBuilder)
	wasiCompiled, err := wasiBuilder.Compile(ctx)
	if err != nil {
		return nil, err
	}
	wasiNames := wasiCompiled.ExportedFunctions()
	for _, def := range byModule[wasi_snapshot_preview1.ModuleName] {
		if _, name, _ := def.Import(); wasiNames[name] == nil {
			log.Warn("plugin imports a WASI function the host lacks; it returns ENOSYS", "function", name)
			stub(wasiBuilder, def, 52)
		}
	}
	if _, err := wasiBuilder.Instantiate(ctx); err != nil {
		return nil, fmt.Errorf("linking %s: %w", wasi_snapshot_preview1.ModuleName, err)
	}
	delete(byModule, wasi_snapshot_preview1.ModuleName)
	return byModule, nil
}

// stub defines def in b as a function returning ret in each result.
func stub(b wazero.HostModuleBuilder, def api.FunctionDefinition, ret uint64) {
	_, name, _ := def.Import()
	results := def.ResultTypes()
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
		for i := range results {
			stack[i] = ret
		}
	}), def.ParamTypes(), results).Export(name)
}
