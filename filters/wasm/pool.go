package wasm

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/waygate/waygate/filters"
)

// pool is a VM's set of instances, about one per core as Envoy runs
// one per worker thread. A stream is pinned to one instance for its
// life (its context lives in that instance's memory); instances share
// nothing but what the host keeps for their vm_id (shared data, queues,
// metrics). Several plugins whose vm_config is the same (vm_id, code,
// VM configuration, environment) share the pool, as Envoy loads them
// into one VM: each is a root context of every instance, with its own
// configuration.
type pool struct {
	// cfg is the configuration of the pool's first plugin; only its VM
	// part (vm_id, VM configuration, environment), the same for every
	// plugin of the pool, is read through it.
	cfg    *pluginConfig
	engine *engine
	opts   Options
	env    filters.Env
	log    *slog.Logger
	shared *shared
	grpc   grpcConns

	inst instances[vm, *vm]

	// plugins are the plugins loaded, copied on write under pluginsMu:
	// an instance starts a root context for each.
	pluginsMu sync.Mutex
	plugins   atomic.Pointer[[]*plugin]

	// key, registered, refs and byKey are guarded by pools' lock
	// (pools.go).
	key        poolKey
	registered bool
	refs       int
	byKey      map[string]*plugin
}

// plugin is one PluginConfig loaded into a pool: a root context
// (root_id) in each instance, configured with its own configuration,
// under which its streams' contexts are created.
type plugin struct {
	cfg  *pluginConfig
	key  string // the PluginConfig, for pools' table
	refs int    // factories using it, guarded by pools' lock

	vmFailures filters.Counter
	vmCreated  filters.Counter
}

// pluginList is the plugins loaded now.
func (p *pool) pluginList() []*plugin {
	if l := p.plugins.Load(); l != nil {
		return *l
	}
	return nil
}

// attach loads pl into the pool: instances started from now on start
// its root context; running ones start it on its first stream.
func (p *pool) attach(pl *plugin) {
	p.pluginsMu.Lock()
	defer p.pluginsMu.Unlock()
	l := append(append([]*plugin(nil), p.pluginList()...), pl)
	p.plugins.Store(&l)
}

// detach unloads pl: its root context ends in every running instance.
func (p *pool) detach(pl *plugin) {
	p.pluginsMu.Lock()
	var l []*plugin
	for _, x := range p.pluginList() {
		if x != pl {
			l = append(l, x)
		}
	}
	p.plugins.Store(&l)
	p.pluginsMu.Unlock()
	for i := range p.inst.len() {
		if v := p.inst.at(i); v != nil {
			v.dropRoot(pl)
		}
	}
}

// pick returns an instance for a new stream.
func (p *pool) pick() (*vm, error) { return p.inst.pick() }

// probe checks that pl starts and takes its configuration in an
// instance of its own, started with every plugin of the VM and closed
// right after, without touching the instances serving the others.
func (p *pool) probe(pl *plugin) error {
	v, err := startVM(p, 0, true)
	if err != nil {
		return err
	}
	defer v.close()
	return v.checkRoot(pl)
}

// failed is called by a dying instance: a fresh one takes its slot.
func (p *pool) failed(v *vm) {
	for _, pl := range p.pluginList() {
		pl.vmFailures.Inc()
	}
	p.inst.replace(v.slot)
}

func (p *pool) close() {
	if p.inst.close() {
		p.grpc.close()
	}
}
