package wasm

import (
	"context"
	"reflect"
	"sync"

	"github.com/waygate/waygate/filters"
)

// pools shares instances between factories of the same plugin: the same
// code, PluginConfig and host options, in the same gateway (the same
// upstreams and stats store). A gateway builds one factory per HTTP
// connection manager, so without sharing every listener port would run
// its own pool of the same plugin; Envoy likewise keeps one VM per
// vm_id and code for all its listeners.
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
// none, and counts the caller as one of its users.
func acquire(key poolKey, shared bool, build func() (*pool, error)) (*pool, error) {
	if !shared {
		p, err := build()
		if err == nil {
			p.refs = 1
		}
		return p, err
	}
	pools.Lock()
	defer pools.Unlock()
	if p := pools.m[key]; p != nil {
		p.refs++
		return p, nil
	}
	// Building under the lock makes two factories of one plugin, built
	// at once, share one pool; builds of other plugins wait meanwhile,
	// which happens only while a config is compiled.
	p, err := build()
	if err != nil {
		return nil, err
	}
	p.key, p.registered, p.refs = key, true, 1
	pools.m[key] = p
	return p, nil
}

// release drops one user; the last one stops the pool and frees its code.
func (p *pool) release() {
	pools.Lock()
	p.refs--
	last := p.refs == 0
	if last && p.registered {
		delete(pools.m, p.key)
	}
	pools.Unlock()
	if last {
		p.close()
		p.engine.close(context.Background())
	}
}
