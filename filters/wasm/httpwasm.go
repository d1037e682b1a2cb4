package wasm

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"

	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	"github.com/tetratelabs/wazero/api"

	"github.com/waygate/waygate/filters"
)

// httpWasmFactory is a compiled http-wasm plugin (the ABI of Traefik's
// plugins, https://http-wasm.io/http-handler-abi/): its code compiled
// once and its pool of instances. The Envoy Wasm filter config carries
// it as it carries a Proxy-Wasm plugin; the builder tells them apart by
// the module's imports.
type httpWasmFactory struct {
	cfg  *pluginConfig
	pool *hwPool
	retirement
}

var _ io.Closer = (*httpWasmFactory)(nil)

// newHTTPWasm compiles an http-wasm plugin and starts one instance, so
// that a guest failing to start (a trap in its initialization, a missing
// export) is refused with the reason and the config NACKed.
func newHTTPWasm(ctx context.Context, pb *wasmfilterv3.Wasm, code []byte, env filters.Env, o Options) (*httpWasmFactory, error) {
	o = o.withDefaults()
	cfg, err := compileConfig(pb.GetConfig())
	if err != nil {
		return nil, err
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("plugin", cfg.name)
	sum := sha256.Sum256(code)
	key, shared := hwKeyFor(string(sum[:]), pb.GetConfig(), o, env)
	p, err := hwAcquire(key, shared, func() (*hwPool, error) {
		e, err := newHTTPWasmEngine(ctx, code, o, log)
		if err != nil {
			return nil, fmt.Errorf("config.vm_config.code: %w", err)
		}
		p := &hwPool{
			cfg:    cfg,
			engine: e,
			opts:   o,
			log:    log,
		}
		p.vmFailures = counter(env.Stats, "wasm."+statName(cfg)+".vm_failures")
		p.vmCreated = counter(env.Stats, "wasm."+statName(cfg)+".vm_created")
		p.inst = newInstances[hwVM](o.PoolSize, "http-wasm", log,
			func(i int) (*hwVM, error) { return newHWVM(p, i) }, p.vmCreated.Inc)
		if _, err := p.inst.fill(0); err != nil {
			p.close()
			e.close(ctx)
			return nil, fmt.Errorf("config: plugin %q: %w", cfg.name, err)
		}
		log.Debug("http-wasm plugin loaded", "sha256", e.sha256)
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	f := &httpWasmFactory{cfg: cfg, pool: p}
	f.retirement = newRetirement(o.CloseDelay, p.release)
	return f, nil
}

// newHTTPWasmEngine compiles the guest, checks the exports the ABI
// requires and links http_handler, WASI and stubs for anything else.
func newHTTPWasmEngine(ctx context.Context, code []byte, o Options, log *slog.Logger) (*engine, error) {
	e, err := compileCode(ctx, code, o)
	if err != nil {
		return nil, err
	}
	e.abi = "http-wasm"
	if err := checkHTTPWasmExports(e); err != nil {
		e.close(ctx)
		return nil, err
	}
	if err := linkHTTPWasm(ctx, e, log); err != nil {
		e.close(ctx)
		return nil, err
	}
	return e, nil
}

// checkHTTPWasmExports verifies the guest exports memory,
// handle_request () -> i64 and handle_response (i32, i32) -> ().
func checkHTTPWasmExports(e *engine) error {
	fns := e.compiled.ExportedFunctions()
	req, resp := fns["handle_request"], fns["handle_response"]
	switch {
	case req == nil:
		return fmt.Errorf("http-wasm guest exports no handle_request")
	case len(req.ParamTypes()) != 0 || !sameTypes(req.ResultTypes(), api.ValueTypeI64):
		return fmt.Errorf("http-wasm guest's handle_request must be () -> i64")
	case resp == nil:
		return fmt.Errorf("http-wasm guest exports no handle_response")
	case !sameTypes(resp.ParamTypes(), api.ValueTypeI32, api.ValueTypeI32) || len(resp.ResultTypes()) != 0:
		return fmt.Errorf("http-wasm guest's handle_response must be (i32, i32) -> ()")
	}
	if _, ok := e.compiled.ExportedMemories()["memory"]; !ok {
		return fmt.Errorf("http-wasm guest exports no memory")
	}
	return nil
}

func sameTypes(got []api.ValueType, want ...api.ValueType) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// linkHTTPWasm instantiates WASI and the http_handler host module. An
// import the host does not implement, or one with a signature other
// than the ABI's, is defined to trap when called, so the guest links
// and fails only if it uses it.
func linkHTTPWasm(ctx context.Context, e *engine, log *slog.Logger) error {
	byModule, err := e.linkWASI(ctx, log)
	if err != nil {
		return err
	}
	for m, defs := range byModule {
		b := e.rt.NewHostModuleBuilder(m)
		for _, def := range defs {
			_, name, _ := def.Import()
			h, ok := hwHostcalls[name]
			if m == httpHandlerModule && ok && sameTypes(def.ParamTypes(), h.params...) && sameTypes(def.ResultTypes(), h.results...) {
				b.NewFunctionBuilder().WithGoModuleFunction(h.fn, h.params, h.results).Export(name)
				continue
			}
			log.Warn("http-wasm guest imports a function the host lacks; calling it traps", "module", m, "function", name)
			missing := m + "." + name
			b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {
				panic("host function " + missing + " is not implemented")
			}), def.ParamTypes(), def.ResultTypes()).Export(name)
		}
		if _, err := b.Instantiate(ctx); err != nil {
			return fmt.Errorf("linking %s: %w", m, err)
		}
	}
	return nil
}

// NewFilter pins the stream to one instance of the pool. An instance
// that cannot start now is retried at the stream's first phase, which
// then gets the fail strategy.
func (f *httpWasmFactory) NewFilter(x *filters.Exchange) any {
	f.begin()
	v, _ := f.pool.pick()
	return &hwStream{f: f, vm: v}
}
