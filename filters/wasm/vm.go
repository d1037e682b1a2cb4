package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"crypto/rand"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

var errAllocFailed = errors.New("guest allocator returned a null pointer")

// vm is one instance of a VM: its own linear memory, a root context
// per plugin loaded (each configured with its plugin's configuration),
// and the stream contexts of the streams pinned to it, each under its
// plugin's root. Callbacks into one instance are serialized by mu, since
// a Wasm instance is single threaded; hostcalls run with mu held, inside
// the callback that made them.
type vm struct {
	pool *pool
	slot int
	mod  api.Module
	fn   exports
	log  *slog.Logger

	// base is the context every call derives its deadline from. It is
	// never a request's context: a client going away must not kill the
	// instance serving other streams.
	base context.Context
	// deadline is base with the per-call deadline, for every call.
	deadline *deadline
	// probe marks an instance started only to check a plugin joining
	// the VM, and closed right after: it takes no shared queue.
	probe bool

	mu         sync.Mutex
	dead       atomic.Bool
	nextID     uint32 // context ids, one counter per instance
	roots      map[*plugin]*rootContext
	rootByID   map[uint32]*rootContext
	starting   bool // newVM is starting the root contexts
	streams    map[uint32]*filter
	active     uint32  // the effective context of the running callback
	calling    *filter // the stream whose own callback is running
	callResp   *callResponse
	nextCallID uint32
	grpc       map[uint32]*grpcCall // outstanding gRPC calls and streams
	grpcIn     *grpcIn              // what the running gRPC callback reads
	stack      [8]uint64
	allocStack [1]uint64
	scratch    []byte
	lastError  string // the last error-level log, for a failed start's message
}

// rootContext is a plugin's root context in one instance.
type rootContext struct {
	id     uint32
	plugin *plugin
	err    error // why it failed to start; its streams fail
	// tickStop stops its proxy_on_tick timer.
	tickStop chan struct{}
	// draining is set when its plugin was unloaded and proxy_on_done
	// returned false: it lives on, its calls still answered, until it
	// calls proxy_done.
	draining bool
}

// exports are the plugin's callbacks; a nil one is not exported.
type exports struct {
	malloc, initialize                                 api.Function
	onVMStart, onConfigure, onContextCreate            api.Function
	onRequestHeaders, onRequestBody, onRequestTrailers api.Function
	onResponseHeaders, onResponseBody                  api.Function
	onResponseTrailers, onLog, onDone, onDelete        api.Function
	onTick, onHTTPCallResponse, onQueueReady           api.Function
	onGRPCInitialMetadata, onGRPCReceive               api.Function
	onGRPCTrailingMetadata, onGRPCClose                api.Function
	requestHeadersArgs, responseHeadersArgs            int
}

type vmKey struct{}

// vmOf is the instance a hostcall was made from.
func vmOf(ctx context.Context) *vm { return ctx.Value(vmKey{}).(*vm) }

// newVM instantiates the module and starts it: _initialize (or _start),
// then a root context for each plugin loaded. Lifecycle per
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#integration
func newVM(p *pool, slot int) (*vm, error) {
	return startVM(p, slot, false)
}

// startVM is newVM, for a probe instance too.
func startVM(p *pool, slot int, probe bool) (*vm, error) {
	v := &vm{pool: p, slot: slot, log: p.log, streams: map[uint32]*filter{},
		roots: map[*plugin]*rootContext{}, rootByID: map[uint32]*rootContext{}, probe: probe}
	v.base = context.WithValue(context.Background(), vmKey{}, v)
	v.deadline = newDeadline(v.base)
	out := &logWriter{log: p.log, stream: "stdout"}
	errw := &logWriter{log: p.log, stream: "stderr"}
	mc := wazero.NewModuleConfig().WithName("").WithStartFunctions().
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().
		WithRandSource(rand.Reader).WithStdout(out).WithStderr(errw)
	for _, k := range p.cfg.hostEnvKeys {
		if val, ok := os.LookupEnv(k); ok {
			mc = mc.WithEnv(k, val)
		}
	}
	for k, val := range p.cfg.env {
		mc = mc.WithEnv(k, val)
	}
	ctx, cancel := context.WithTimeout(v.base, p.opts.StartTimeout)
	defer cancel()
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
	v.bind()
	fail := func(err error) (*vm, error) {
		v.dead.Store(true)
		mod.Close(context.Background())
		return nil, err
	}
	if v.fn.initialize != nil {
		if _, err := v.fn.initialize.Call(ctx); err != nil {
			name := v.fn.initialize.Definition().ExportNames()[0]
			var exit *sys.ExitError
			if errors.As(err, &exit) && exit.ExitCode() == 0 {
				// A command module: its _start ran main, which exited.
				return fail(fmt.Errorf("%s: the module exited; build it as a reactor (Go: -buildmode=c-shared)", name))
			}
			return fail(fmt.Errorf("%s: %w", name, err))
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.starting = true
	defer func() { v.starting = false }()
	for _, pl := range p.pluginList() {
		if r := v.startRoot(ctx, pl); r.err != nil && v.dead.Load() {
			return nil, r.err
		}
	}
	return v, nil
}

// startRoot starts pl's root context, as Envoy does for each plugin it
// loads into a VM: proxy_on_context_create, proxy_on_vm_start with the
// VM configuration, then proxy_on_configure with the plugin's. A
// plugin refusing either gets no root context here: its streams fail.
// v.mu is held.
func (v *vm) startRoot(ctx context.Context, pl *plugin) *rootContext {
	v.nextID++
	r := &rootContext{id: v.nextID, plugin: pl}
	v.roots[pl] = r
	v.rootByID[r.id] = r
	v.enterRoot(r.id)
	v.lastError = ""
	call := func(f api.Function, name string, a1 uint64, checked bool) bool {
		if f == nil {
			return true
		}
		v.stack[0], v.stack[1] = uint64(r.id), a1
		if err := f.CallWithStack(ctx, v.stack[:]); err != nil {
			if v.starting {
				// Not in its slot yet: the pool's start fails instead.
				v.dead.Store(true)
				v.mod.Close(context.Background())
			} else {
				v.fail(err)
			}
			r.err = fmt.Errorf("%s: %w", name, err)
			return false
		}
		if checked && uint32(v.stack[0]) == 0 {
			r.err = fmt.Errorf("%s failed%s", name, v.reason())
			return false
		}
		return true
	}
	_ = call(v.fn.onContextCreate, "proxy_on_context_create", 0, false) &&
		call(v.fn.onVMStart, "proxy_on_vm_start", uint64(len(v.pool.cfg.vmConfig)), true) &&
		call(v.fn.onConfigure, "proxy_on_configure", uint64(len(pl.cfg.pluginConfig)), true)
	return r
}

// root is pl's root context, started now if the instance started
// before pl was loaded. v.mu is held.
func (v *vm) root(pl *plugin) *rootContext {
	if r := v.roots[pl]; r != nil {
		return r
	}
	ctx, cancel := context.WithTimeout(v.base, v.pool.opts.StartTimeout)
	defer cancel()
	defer v.deadline.intr.bound(ctx)()
	return v.startRoot(ctx, pl)
}

// checkRoot reports whether pl started in the instance.
func (v *vm) checkRoot(pl *plugin) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if r := v.roots[pl]; r != nil && r.err != nil {
		return r.err
	}
	if v.dead.Load() {
		return errDead
	}
	return v.root(pl).err
}

// dropRoot ends pl's root context (proxy_on_done, proxy_on_delete),
// once the plugin is unloaded and none of its streams is left.
func (v *vm) dropRoot(pl *plugin) {
	v.mu.Lock()
	defer v.mu.Unlock()
	r := v.roots[pl]
	if r == nil {
		return
	}
	v.endRoot(pl, r, true)
}

// endRoot ends pl's root context r: proxy_on_done, then proxy_on_delete,
// unless proxy_on_done returns false and the VM runs on: then, as in
// Envoy, the root context is deleted once the plugin calls proxy_done.
// v.mu is held.
func (v *vm) endRoot(pl *plugin, r *rootContext, drain bool) {
	delete(v.roots, pl)
	r.stopTick()
	if v.dead.Load() || r.err != nil {
		delete(v.rootByID, r.id)
		return
	}
	v.enterRoot(r.id)
	v.stack[0] = uint64(r.id)
	done, err := v.invoke(v.fn.onDone)
	if err != nil {
		delete(v.rootByID, r.id)
		return
	}
	if drain && v.fn.onDone != nil && done == 0 {
		r.draining = true
		return
	}
	v.deleteRoot(r)
}

// deleteRoot calls proxy_on_delete on root context r. v.mu is held.
func (v *vm) deleteRoot(r *rootContext) {
	delete(v.rootByID, r.id)
	r.draining = false
	v.enterRoot(r.id)
	v.stack[0] = uint64(r.id)
	_, _ = v.invoke(v.fn.onDelete)
}

// reason is the plugin's last error log, to explain a failed start.
func (v *vm) reason() string {
	if v.lastError == "" {
		return ""
	}
	return ": " + v.lastError
}

func (v *vm) bind() {
	get := func(name string) api.Function { return v.mod.ExportedFunction(name) }
	v.fn = exports{
		malloc:             get("proxy_on_memory_allocate"),
		initialize:         get("_initialize"),
		onVMStart:          get("proxy_on_vm_start"),
		onConfigure:        get("proxy_on_configure"),
		onContextCreate:    get("proxy_on_context_create"),
		onRequestHeaders:   get("proxy_on_request_headers"),
		onRequestBody:      get("proxy_on_request_body"),
		onRequestTrailers:  get("proxy_on_request_trailers"),
		onResponseHeaders:  get("proxy_on_response_headers"),
		onResponseBody:     get("proxy_on_response_body"),
		onResponseTrailers: get("proxy_on_response_trailers"),
		onLog:              get("proxy_on_log"),
		onDone:             get("proxy_on_done"),
		onDelete:           get("proxy_on_delete"),
		onTick:             get("proxy_on_tick"),
		onHTTPCallResponse: get("proxy_on_http_call_response"),
		onQueueReady:       get("proxy_on_queue_ready"),

		onGRPCInitialMetadata:  get("proxy_on_grpc_receive_initial_metadata"),
		onGRPCReceive:          get("proxy_on_grpc_receive"),
		onGRPCTrailingMetadata: get("proxy_on_grpc_receive_trailing_metadata"),
		onGRPCClose:            get("proxy_on_grpc_close"),
	}
	if v.fn.malloc == nil {
		v.fn.malloc = get("malloc")
	}
	if v.fn.initialize == nil {
		v.fn.initialize = get("_start")
	}
}

// invoke calls f with its arguments in v.stack, under the per-call
// deadline, and returns its first result. A function reads only the
// arguments it declares: ABI 0.1.0's header callbacks, which lack
// end_of_stream, ignore the third. v.mu is held. An
// error means the instance is dead: a trap, a Go panic (which reaches
// the host as unreachable or proc_exit), memory exhausted, or the
// deadline (see interrupter for how a call is stopped).
func (v *vm) invoke(f api.Function) (uint32, error) {
	if v.dead.Load() {
		return 0, errDead
	}
	if f == nil {
		return actionContinue, nil
	}
	var err error
	if t := v.pool.opts.CallTimeout; t > 0 {
		v.deadline.arm(t)
		err = f.CallWithStack(v.deadline, v.stack[:])
		v.deadline.disarm()
		if err != nil && v.deadline.fired.Load() {
			err = fmt.Errorf("the call ran past its deadline (%v): %w", t, err)
		}
	} else {
		// No deadline: the module was compiled without the checks that
		// let one end a call.
		err = f.CallWithStack(v.base, v.stack[:])
	}
	if err != nil {
		v.fail(err)
		return 0, err
	}
	return uint32(v.stack[0]), nil
}

var errDead = errors.New("wasm: plugin instance failed")

// fail retires a crashed instance: the pool counts the failure and
// starts a fresh instance in its slot. The stream whose callback crashed
// it and the streams paused on it get the plugin's fail strategy; the
// others, which the plugin had already let go on, finish without it
// (Envoy fails those too; failing them for another stream's crash
// would spread one bad request to its neighbors). v.mu is held.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#plugin-crashes
func (v *vm) fail(err error) {
	if v.dead.Swap(true) {
		return
	}
	v.log.Error("wasm plugin instance failed; replacing it", "error", err)
	v.stopTicks()
	v.deadline.stop()
	v.cancelGRPC()
	go v.mod.Close(context.Background())
	for _, s := range v.streams {
		switch {
		case s.paused:
			s.vmFailed = true
			s.wakeUp()
		case s == v.calling:
			s.vmFailed = true
		default:
			s.orphaned = true
		}
	}
	v.pool.failed(v)
}

// isDead reports whether the instance failed or was closed.
func (v *vm) isDead() bool { return v.dead.Load() }

// close stops the instance for good (its factory is closed).
func (v *vm) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.probe {
		// The VM shuts down: its root contexts end first, as Envoy ends
		// them, so plugins may flush what they hold.
		for pl, r := range v.roots {
			v.endRoot(pl, r, false)
		}
		// Root contexts still finishing end with the VM.
		for _, r := range v.rootByID {
			if r.draining {
				v.deleteRoot(r)
			}
		}
	}
	if v.dead.Swap(true) {
		return
	}
	v.stopTicks()
	v.deadline.stop()
	v.cancelGRPC()
	for _, s := range v.streams {
		s.vmFailed = true
		if s.paused {
			s.wakeUp()
		}
	}
	v.mod.Close(context.Background())
}

// setTick arms proxy_on_tick every period on the running context's
// root; 0 stops it. v.mu is held.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#proxy_set_tick_period_milliseconds
func (v *vm) setTick(period time.Duration) {
	r := v.rootByID[v.rootOfActive()]
	if r == nil {
		return
	}
	r.stopTick()
	if period <= 0 || v.fn.onTick == nil {
		return
	}
	stop := make(chan struct{})
	r.tickStop = stop
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			v.mu.Lock()
			if !v.dead.Load() && v.rootByID[r.id] == r {
				v.enterRoot(r.id)
				v.stack[0] = uint64(r.id)
				_, _ = v.invoke(v.fn.onTick)
			}
			v.mu.Unlock()
		}
	}()
}

func (r *rootContext) stopTick() {
	if r.tickStop != nil {
		close(r.tickStop)
		r.tickStop = nil
	}
}

func (v *vm) stopTicks() {
	for _, r := range v.roots {
		r.stopTick()
	}
}

// rootCall runs a callback on root context root from a goroutine of the
// host (an http call's answer, a queue notification), unless that root
// context has ended.
func (v *vm) rootCall(root uint32, f api.Function, args ...uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.dead.Load() || f == nil || v.rootByID[root] == nil {
		return
	}
	v.enterRoot(root)
	copy(v.stack[:], args)
	_, _ = v.invoke(f)
}

// enterRoot makes root context id the running one, for a callback of
// the host (an http or gRPC call's answer, a tick). v.mu is held.
func (v *vm) enterRoot(id uint32) { v.active, v.calling = id, nil }

// plugin is the plugin of the running context, whose configuration and
// names the plugin reads. v.mu is held.
func (v *vm) plugin() *plugin {
	if s := v.streams[v.active]; s != nil {
		return s.f.plugin
	}
	if r := v.rootByID[v.active]; r != nil {
		return r.plugin
	}
	// A root context still starting, or ended: the first plugin.
	if l := v.pool.pluginList(); len(l) > 0 {
		return l[0]
	}
	return &plugin{cfg: v.pool.cfg}
}

// rootOfActive is the root context of the running context, which owns
// the calls it makes and its tick, as in Envoy. v.mu is held.
func (v *vm) rootOfActive() uint32 {
	if s := v.streams[v.active]; s != nil {
		return s.root
	}
	return v.active
}

// setActive makes context id (a root or a stream) the effective one,
// for proxy_set_effective_context; false if there is none. v.mu is held.
func (v *vm) setActive(id uint32) bool {
	if v.rootByID[id] == nil && v.streams[id] == nil {
		return false
	}
	v.active = id
	return true
}

// callResponse is the answer to a proxy_http_call, readable during
// proxy_on_http_call_response.
type callResponse struct {
	status  int
	header  http.Header
	trailer http.Header
	body    []byte
}

// logWriter turns a plugin's stdout and stderr (where a Go guest's panic
// and stack trace go, a few bytes per write) into log lines.
type logWriter struct {
	log    *slog.Logger
	stream string
	mu     sync.Mutex
	line   []byte
}

// maxLogLine flushes a line that never ends.
const maxLogLine = 4 << 10

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range p {
		if c == '\n' || len(w.line) >= maxLogLine {
			w.log.Info("wasm plugin output", "stream", w.stream, "text", string(w.line))
			w.line = w.line[:0]
			if c == '\n' {
				continue
			}
		}
		w.line = append(w.line, c)
	}
	return len(p), nil
}
