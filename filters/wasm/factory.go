package wasm

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"time"

	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/filters"
)

// Factory is a compiled Wasm filter: the plugin's code compiled once and
// its pool of instances. It implements io.Closer: closing it stops the
// instances once no listener uses the config and its last stream ended.
type Factory struct {
	cfg    *pluginConfig
	pool   *pool
	plugin *plugin
	retirement
}

var _ io.Closer = (*Factory)(nil)

// New loads and compiles the plugin, and starts one instance to check
// that it starts and accepts its configuration: a plugin whose
// proxy_on_vm_start or proxy_on_configure fails is refused here, with
// the plugin's last error log as the reason, so the config is NACKed.
func New(ctx context.Context, pb *wasmfilterv3.Wasm, env filters.Env, o Options) (*Factory, error) {
	code, err := loadPluginCode(ctx, pb.GetConfig(), env.Upstream, o)
	if err != nil {
		return nil, err
	}
	return newFromCode(ctx, pb, code, env, o)
}

// newFromCode is New for a Proxy-Wasm plugin whose code is loaded.
func newFromCode(ctx context.Context, pb *wasmfilterv3.Wasm, code []byte, env filters.Env, o Options) (*Factory, error) {
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
	key, shared := keyFor(string(sum[:]), vmConfigKey(pb.GetConfig()), o, env)
	p, pl, joined, err := acquire(key, shared, pluginKey(pb.GetConfig()), cfg, func() (*pool, error) {
		start := time.Now()
		e, err := newEngine(ctx, code, o, log)
		if err != nil {
			return nil, fmt.Errorf("config.vm_config.code: %w", err)
		}
		log.Debug("wasm plugin compiled", "sha256", e.sha256, "abi", e.abi, "took", time.Since(start))
		p := &pool{
			cfg:    cfg,
			engine: e,
			opts:   o,
			env:    env,
			log:    log,
			shared: sharedFor(cfg.vmID),
		}
		p.inst = newInstances[vm](o.PoolSize, "wasm", log,
			func(i int) (*vm, error) { return newVM(p, i) },
			func() {
				for _, pl := range p.pluginList() {
					pl.vmCreated.Inc()
				}
			})
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	// One instance, started now if need be, checks that the plugin
	// starts and takes its configuration. A plugin joining a VM that
	// serves others is checked in a probe instance instead: one whose
	// proxy_on_configure aborts must not kill the instances the others
	// run in (and their streams), nor hold a slot in restart backoff.
	if joined {
		err = p.probe(pl)
	} else {
		var v *vm
		if v, err = p.inst.fill(0); err == nil {
			err = v.checkRoot(pl)
		}
	}
	if err != nil {
		p.release(pl)
		return nil, fmt.Errorf("config: plugin %q: %w", cfg.name, err)
	}
	f := &Factory{cfg: cfg, pool: p, plugin: pl}
	f.retirement = newRetirement(o.CloseDelay, func() { p.release(pl) })
	return f, nil
}

// vmConfigKey is the VmConfig without the code's source, which the code's
// sha256 stands for in a pool's key: plugins with the same key share
// their instances.
func vmConfigKey(pc *wasmv3.PluginConfig) string {
	vc := proto.Clone(pc.GetVmConfig()).(*wasmv3.VmConfig)
	vc.Code = nil
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(vc)
	return string(b)
}

// pluginKey is the PluginConfig without its VM, which the pool's key
// stands for: a plugin's identity within its pool.
func pluginKey(pc *wasmv3.PluginConfig) string {
	pc = proto.Clone(pc).(*wasmv3.PluginConfig)
	pc.Vm = nil
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(pc)
	return string(b)
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
	f.begin()
	// An instance that cannot start now is retried at the stream's
	// first callback, which then gets the fail strategy.
	v, _ := f.pool.pick()
	return &filter{f: f, vm: v}
}

// SHA256 is the hex sha256 of the plugin's code.
func (f *Factory) SHA256() string { return f.pool.engine.sha256 }
