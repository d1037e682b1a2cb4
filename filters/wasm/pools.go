package wasm

import (
	"context"
	"reflect"
	"sync"

	"github.com/waygate/waygate/filters"
)

// pools shares instances between factories of plugins of the same VM:
// the same code, vm_config and host options, in the same gateway (the
// same upstreams and stats store). A gateway builds one factory per
// HTTP connection manager, so without sharing every listener port would
// run its own pool of the same plugin; Envoy likewise keeps one VM per
// vm_id and code for all its listeners and plugins.
var pools = struct {
	sync.Mutex
	m map[poolKey]*pool
}{m: map[poolKey]*pool{}}

// poolKey identifies a pool. upstream and stats are the gateway's own
// (stats at the store's root, whatever the listener's scope).
type poolKey struct {
	sha256, config string
	opts           Options
	upstream       filters.Upstream
	stats          filters.Stats
}

// keyFor is the key of the pool serving cfg, and false when the
// environment cannot be compared (a test's ad hoc upstream), in which
// case the factory keeps a pool of its own.
func keyFor(sha, config string, o Options, env filters.Env) (poolKey, bool) {
	k := poolKey{sha256: sha, config: config, opts: o, upstream: env.Upstream, stats: env.Stats}
	if ms, ok := env.Stats.(filters.MetricStats); ok {
		k.stats = ms.Root()
	}
	for _, v := range []any{k.upstream, k.stats} {
		if v != nil && !reflect.TypeOf(v).Comparable() {
			return poolKey{}, false
		}
	}
	return k, true
}

// acquire returns the pool for key, building it with build when there is
// none, with the plugin pkey (configured by cfg) loaded in it, and
// counts the caller as one of the plugin's users. joined reports that
// the plugin was loaded now into a pool already serving others.
func acquire(key poolKey, shared bool, pkey string, cfg *pluginConfig, build func() (*pool, error)) (p *pool, pl *plugin, joined bool, err error) {
	pools.Lock()
	defer pools.Unlock()
	p = pools.m[key]
	if !shared || p == nil {
		// Building under the lock makes two factories of one VM, built
		// at once, share one pool; builds of other plugins wait
		// meanwhile, which happens only while a config is compiled.
		if p, err = build(); err != nil {
			return nil, nil, false, err
		}
		p.byKey = map[string]*plugin{}
		if shared {
			p.key, p.registered = key, true
			pools.m[key] = p
		}
	}
	pl = p.byKey[pkey]
	if pl == nil {
		joined = len(p.byKey) > 0
		pl = &plugin{cfg: cfg, key: pkey}
		pl.vmFailures = counter(p.env.Stats, "wasm."+statName(cfg)+".vm_failures")
		pl.vmCreated = counter(p.env.Stats, "wasm."+statName(cfg)+".vm_created")
		p.byKey[pkey] = pl
		p.attach(pl)
	}
	pl.refs++
	p.refs++
	return p, pl, joined, nil
}

// release drops one user of pl; its last one unloads it, and the pool's
// last one stops the pool and frees its code.
func (p *pool) release(pl *plugin) {
	pools.Lock()
	pl.refs--
	p.refs--
	unload := pl.refs == 0
	if unload {
		delete(p.byKey, pl.key)
	}
	last := p.refs == 0
	if last && p.registered {
		delete(pools.m, p.key)
	}
	pools.Unlock()
	if last {
		p.close()
		p.engine.close(context.Background())
		return
	}
	if unload {
		p.detach(pl)
	}
}
