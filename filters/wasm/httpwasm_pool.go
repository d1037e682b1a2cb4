package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/waygate/waygate/filters"
)

// hwPool is an http-wasm plugin's set of instances, about one per core.
// A stream is pinned to one instance from handle_request to
// handle_response; streams on one instance interleave (the guest
// correlates its two calls with the reqCtx it returned), so a slow
// upstream holds no instance.
type hwPool struct {
	cfg    *pluginConfig
	engine *engine
	opts   Options
	log    *slog.Logger

	inst instances[hwVM, *hwVM]

	vmFailures filters.Counter
	vmCreated  filters.Counter

	// key, registered and refs are guarded by hwPools' lock.
	key        hwPoolKey
	registered bool
	refs       int
}

// pick returns an instance for a new stream.
func (p *hwPool) pick() (*hwVM, error) { return p.inst.pick() }

// failed replaces a dead instance with a fresh one.
func (p *hwPool) failed(v *hwVM) {
	p.vmFailures.Inc()
	p.inst.replace(v.slot)
}

func (p *hwPool) close() { p.inst.close() }

// hwVM is one instance of an http-wasm guest. Calls into it are
// serialized by mu; host functions run inside them with mu held and
// find the stream being served in cur.
type hwVM struct {
	pool *hwPool
	slot int
	mod  api.Module
	log  *slog.Logger

	handleRequest, handleResponse api.Function

	// deadline bounds each call; it is paused while a host function
	// waits on the downstream (reading the request body), so a slow
	// client cannot get an instance killed.
	deadline *hwDeadline

	mu       sync.Mutex
	dead     atomic.Bool
	features uint32 // enabled while the guest started, for every request
	cur      *hwStream
	stack    [2]uint64
}

type hwVMKey struct{}

// hwVMOf is the instance a host function was called from.
func hwVMOf(ctx context.Context) *hwVM { return ctx.Value(hwVMKey{}).(*hwVM) }

// newHWVM instantiates the guest and runs its initialization
// (_initialize for a reactor, else _start), where guests usually read
// their configuration and enable features.
func newHWVM(p *hwPool, slot int) (*hwVM, error) {
	v := &hwVM{pool: p, slot: slot, log: p.log}
	base := context.WithValue(context.Background(), hwVMKey{}, v)
	v.deadline = newHWDeadline(base)
	mc := wazero.NewModuleConfig().WithName("").WithStartFunctions().
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().
		WithRandSource(rand.Reader).
		WithStdout(&logWriter{log: p.log, stream: "stdout"}).
		WithStderr(&logWriter{log: p.log, stream: "stderr"})
	for _, k := range p.cfg.hostEnvKeys {
		if val, ok := os.LookupEnv(k); ok {
			mc = mc.WithEnv(k, val)
		}
	}
	for k, val := range p.cfg.env {
		mc = mc.WithEnv(k, val)
	}
	ctx, cancel := context.WithTimeout(base, p.opts.StartTimeout)
	defer cancel()
	v.mu.Lock()
	defer v.mu.Unlock()
	mod, err := p.engine.rt.InstantiateModule(ctx, p.engine.compiled, mc)
	if err != nil {
		return nil, fmt.Errorf("instantiating: %w", err)
	}
	v.mod = mod
	v.deadline.intr = newInterrupter(mod)
	defer v.deadline.intr.bound(ctx)()
	if err := runStart(ctx, mod); err != nil {
		v.dead.Store(true)
		mod.Close(context.Background())
		return nil, err
	}
	v.handleRequest = mod.ExportedFunction("handle_request")
	v.handleResponse = mod.ExportedFunction("handle_response")
	for _, name := range []string{"_initialize", "_start"} {
		fn := mod.ExportedFunction(name)
		if fn == nil {
			continue
		}
		if _, err := fn.Call(ctx); err != nil {
			v.dead.Store(true)
			mod.Close(context.Background())
			var exit *sys.ExitError
			if errors.As(err, &exit) && exit.ExitCode() == 0 {
				return nil, fmt.Errorf("%s: the module exited; build it as a reactor (Go: -buildmode=c-shared)", name)
			}
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		break
	}
	return v, nil
}

// call runs fn with args under the per-call deadline, for stream s, and
// returns its first result. An error means the instance is dead: a
// trap, a Go panic (unreachable or proc_exit), memory past the page
// limit, a host function refusing a call the ABI forbids, or the
// deadline. v.mu is held.
func (v *hwVM) call(s *hwStream, fn api.Function, args ...uint64) (uint64, error) {
	if v.dead.Load() {
		return 0, errDead
	}
	copy(v.stack[:], args)
	v.cur = s
	v.deadline.arm(v.pool.opts.CallTimeout)
	err := fn.CallWithStack(v.deadline, v.stack[:])
	v.deadline.disarm()
	v.cur = nil
	if err != nil && v.deadline.Err() != nil {
		err = fmt.Errorf("the call ran past its deadline (%v): %w", v.pool.opts.CallTimeout, err)
	}
	if err != nil {
		v.fail(err)
		return 0, err
	}
	return v.stack[0], nil
}

// fail retires a crashed instance; the pool starts a fresh one in its
// slot. Streams that were between their two calls on it finish without
// the plugin, whose state for them is gone. v.mu is held.
func (v *hwVM) fail(err error) {
	if v.dead.Swap(true) {
		return
	}
	v.log.Error("http-wasm plugin instance failed; replacing it", "error", err)
	go v.mod.Close(context.Background())
	v.pool.failed(v)
}

// isDead reports whether the instance failed or was closed.
func (v *hwVM) isDead() bool { return v.dead.Load() }

// close stops the instance for good (its factory is closed).
func (v *hwVM) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.dead.Swap(true) {
		return
	}
	v.mod.Close(context.Background())
}
