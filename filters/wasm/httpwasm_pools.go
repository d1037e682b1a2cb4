package wasm

import (
	"context"
	"reflect"
	"sync"

	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/filters"
)

// hwPools shares the instances of an http-wasm plugin between the
// factories built from the same code, PluginConfig and host options in
// one gateway: a gateway builds one factory per connection manager, and
// rebuilds it when anything in the listener changes, so without sharing
// every listener would run its own instances and every push would start
// new ones.
var hwPools = struct {
	sync.Mutex
	m map[hwPoolKey]*hwPool
}{m: map[hwPoolKey]*hwPool{}}

type hwPoolKey struct {
	sha256, config string
	opts           Options
	upstream       filters.Upstream
	stats          filters.Stats
}

// hwKeyFor is the key of the pool serving pc, and false when the
// environment cannot be compared (then the factory keeps its own pool).
func hwKeyFor(sha string, pc *wasmv3.PluginConfig, o Options, env filters.Env) (hwPoolKey, bool) {
	pc = proto.Clone(pc).(*wasmv3.PluginConfig)
	if vc := pc.GetVmConfig(); vc != nil {
		vc.Code = nil // the code's sha256 stands for it
	}
	cfg, _ := proto.MarshalOptions{Deterministic: true}.Marshal(pc)
	k := hwPoolKey{sha256: sha, config: string(cfg), opts: o, upstream: env.Upstream, stats: env.Stats}
	if ms, ok := env.Stats.(filters.MetricStats); ok {
		k.stats = ms.Root()
	}
	for _, v := range []any{k.upstream, k.stats} {
		if v != nil && !reflect.TypeOf(v).Comparable() {
			return hwPoolKey{}, false
		}
	}
	return k, true
}

// hwAcquire returns the pool for key, building it when there is none,
// and counts the caller as one of its users.
func hwAcquire(key hwPoolKey, shared bool, build func() (*hwPool, error)) (*hwPool, error) {
	if !shared {
		p, err := build()
		if err == nil {
			p.refs = 1
		}
		return p, err
	}
	hwPools.Lock()
	defer hwPools.Unlock()
	if p := hwPools.m[key]; p != nil {
		p.refs++
		return p, nil
	}
	p, err := build()
	if err != nil {
		return nil, err
	}
	p.key, p.registered, p.refs = key, true, 1
	hwPools.m[key] = p
	return p, nil
}

// release drops one user; the last one stops the instances and frees
// the code.
func (p *hwPool) release() {
	hwPools.Lock()
	p.refs--
	last := p.refs == 0
	if last && p.registered {
		delete(hwPools.m, p.key)
	}
	hwPools.Unlock()
	if last {
		p.close()
		p.engine.close(context.Background())
	}
}
