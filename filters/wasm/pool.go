package wasm

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

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

	slots  []slot
	next   atomic.Uint32
	closed atomic.Bool

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
	for i := range p.slots {
		if v := p.slots[i].vm.Load(); v != nil {
			v.dropRoot(pl)
		}
	}
}

type slot struct {
	vm atomic.Pointer[vm]
	mu sync.Mutex
	// lastErr and lastTry pace restarts of an instance that fails to
	// start, so a plugin crashing on start is not restarted in a loop.
	lastErr error
	lastTry time.Time
}

// restartBackoff is the least time between two failed starts in a slot.
const restartBackoff = time.Second

var errClosed = errors.New("wasm: plugin closed")

// pick returns an instance for a new stream, starting one in an empty
// or dead slot.
func (p *pool) pick() (*vm, error) {
	i := int(p.next.Add(1)) % len(p.slots)
	if v := p.slots[i].vm.Load(); v != nil && !v.dead.Load() {
		return v, nil
	}
	return p.start(i)
}

// start fills slot i with a fresh instance unless one is running.
func (p *pool) start(i int) (*vm, error) {
	s := &p.slots[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.closed.Load() {
		return nil, errClosed
	}
	if v := s.vm.Load(); v != nil && !v.dead.Load() {
		return v, nil
	}
	if s.lastErr != nil && time.Since(s.lastTry) < restartBackoff {
		return nil, s.lastErr
	}
	s.lastTry = time.Now()
	v, err := newVM(p, i)
	if err != nil {
		s.lastErr = err
		p.log.Error("starting wasm plugin instance", "error", err)
		return nil, err
	}
	s.lastErr = nil
	for _, pl := range p.pluginList() {
		pl.vmCreated.Inc()
	}
	s.vm.Store(v)
	if p.closed.Load() {
		// Closed while starting: do not leak the instance.
		s.vm.Store(nil)
		v.close()
		return nil, errClosed
	}
	return v, nil
}

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
	if p.closed.Load() {
		return
	}
	go func() {
		if _, err := p.start(v.slot); err != nil && !errors.Is(err, errClosed) {
			p.log.Warn("replacing failed wasm plugin instance", "error", err)
		}
	}()
}

func (p *pool) close() {
	if p.closed.Swap(true) {
		return
	}
	defer p.grpc.close()
	for i := range p.slots {
		s := &p.slots[i]
		s.mu.Lock()
		if v := s.vm.Swap(nil); v != nil {
			v.close()
		}
		s.mu.Unlock()
	}
}
