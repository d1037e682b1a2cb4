package wasm

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/filters"
)

// TypeURL is the config type the filter is registered under.
const TypeURL = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"

func init() {
	filters.Register(TypeURL, build)
}

func build(cfg proto.Message, env filters.Env) (filters.Factory, error) {
	pb, ok := cfg.(*wasmfilterv3.Wasm)
	if !ok {
		return nil, fmt.Errorf("wasm: config is %T, want Wasm", cfg)
	}
	return New(context.Background(), pb, env, DefaultOptions())
}

// Factory is a compiled Wasm filter: the plugin's code compiled once and
// its pool of instances. It implements io.Closer: closing it stops the
// instances once no listener uses the config.
type Factory struct {
	cfg  *pluginConfig
	pool *pool
}

var _ io.Closer = (*Factory)(nil)

// New loads and compiles the plugin, and starts one instance to check
// that it starts and accepts its configuration: a plugin whose
// proxy_on_vm_start or proxy_on_configure fails is refused here, with
// the plugin's last error log as the reason, so the config is NACKed.
func New(ctx context.Context, pb *wasmfilterv3.Wasm, env filters.Env, o Options) (*Factory, error) {
	o = o.withDefaults()
	cfg, err := compileConfig(pb.GetConfig())
	if err != nil {
		return nil, err
	}
	code, err := loadCode(ctx, pb.GetConfig().GetVmConfig().GetCode(), env.Upstream)
	if err != nil {
		return nil, err
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("plugin", cfg.name)
	start := time.Now()
	e, err := newEngine(ctx, code, o, log)
	if err != nil {
		return nil, fmt.Errorf("config.vm_config.code: %w", err)
	}
	p := &pool{
		cfg:    cfg,
		engine: e,
		opts:   o,
		env:    env,
		log:    log,
		shared: sharedFor(cfg.vmID),
		slots:  make([]slot, o.PoolSize),
	}
	p.vmFailures, p.vmCreated = counter(env.Stats, "wasm."+statName(cfg)+".vm_failures"), counter(env.Stats, "wasm."+statName(cfg)+".vm_created")
	if _, err := p.start(0); err != nil {
		p.close()
		e.close(ctx)
		return nil, fmt.Errorf("config: plugin %q: %w", cfg.name, err)
	}
	log.Debug("wasm plugin loaded", "sha256", e.sha256, "abi", e.abi, "took", time.Since(start))
	return &Factory{cfg: cfg, pool: p}, nil
}

// statName names the plugin in its stats: its name, else its vm_id.
func statName(c *pluginConfig) string {
	if c.name != "" {
		return c.name
	}
	if c.vmID != "" {
		return c.vmID
	}
	return "plugin"
}

// counter creates a stat at the store's root when the stats allow it,
// where Envoy keeps its wasm.* stats.
func counter(st filters.Stats, name string) filters.Counter {
	if st == nil {
		return nopCounter{}
	}
	if ms, ok := st.(filters.MetricStats); ok {
		return ms.Root().Counter(name)
	}
	return st.Counter(name)
}

type nopCounter struct{}

func (nopCounter) Inc()         {}
func (nopCounter) Add(n uint64) {}

// NewFilter pins the stream to one instance of the pool.
func (f *Factory) NewFilter(x *filters.Exchange) any {
	v, err := f.pool.pick()
	return &filter{f: f, vm: v, err: err}
}

// Close stops every instance and releases the compiled code.
func (f *Factory) Close() error {
	f.pool.close()
	f.pool.engine.close(context.Background())
	return nil
}

// SHA256 is the hex sha256 of the plugin's code.
func (f *Factory) SHA256() string { return f.pool.engine.sha256 }
