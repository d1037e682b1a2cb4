package fault

import (
	"fmt"
	"sync/atomic"

	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/filters"
)

// TypeURL is the config type this filter is registered under, for the
// listener's http_filters entry and for typed_per_filter_config.
const TypeURL = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"

// FilterName is the key the filter reads its per-route config under. A
// builder does not learn the name the filter has in its chain, so the
// filter looks up Envoy's conventional name, the one istiod uses both in
// the chain and in typed_per_filter_config.
const FilterName = "envoy.filters.http.fault"

func init() {
	filters.Register(TypeURL, build)
	filters.RegisterRouteConfig(TypeURL, buildRoute)
}

func build(cfg proto.Message, env filters.Env) (filters.Factory, error) {
	pb, ok := cfg.(*faultv3.HTTPFault)
	if !ok {
		return nil, fmt.Errorf("fault: config is %T, want HTTPFault", cfg)
	}
	return New(pb, env)
}

func buildRoute(cfg proto.Message) (any, error) {
	pb, ok := cfg.(*faultv3.HTTPFault)
	if !ok {
		return nil, fmt.Errorf("fault: per-route config is %T, want HTTPFault", cfg)
	}
	return Compile(pb)
}

// Factory creates the per-stream fault filter. It owns the count of
// active faults that max_active_faults bounds: one count per factory,
// shared by the listener config and every route override it applies, as
// Envoy shares its active_faults gauge per filter config.
type Factory struct {
	cfg    *Config
	active atomic.Int64

	stats      filters.Stats // nil when the gateway keeps no stats
	delays     filters.Counter
	aborts     filters.Counter
	rateLimits filters.Counter
	overflow   filters.Counter
}

// New compiles the listener-level config into a Factory. Its counters are
// named as Envoy names them under the HTTP connection manager's scope
// (http.<stat_prefix>.), which is the scope env.Stats is expected to have:
// fault.delays_injected, fault.aborts_injected, fault.response_rl_injected,
// fault.faults_overflow, and fault.<downstream-cluster>.delays_injected /
// aborts_injected.
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/fault_filter#statistics
func New(pb *faultv3.HTTPFault, env filters.Env) (*Factory, error) {
	cfg, err := Compile(pb)
	if err != nil {
		return nil, err
	}
	f := &Factory{cfg: cfg, stats: env.Stats}
	f.delays = f.counter("fault.delays_injected")
	f.aborts = f.counter("fault.aborts_injected")
	f.rateLimits = f.counter("fault.response_rl_injected")
	f.overflow = f.counter("fault.faults_overflow")
	return f, nil
}

func (f *Factory) counter(name string) filters.Counter {
	if f.stats == nil {
		return nopCounter{}
	}
	return f.stats.Counter(name)
}

type nopCounter struct{}

func (nopCounter) Inc()         {}
func (nopCounter) Add(n uint64) {}

// ActiveFaults is the number of streams a fault is injected into right
// now: Envoy's fault.active_faults gauge.
func (f *Factory) ActiveFaults() int64 { return f.active.Load() }

// NewFilter returns nil, taking no part in the stream, when the config
// that applies to it injects nothing: the empty HTTPFault of istiod's
// gateway chains costs no allocation. A route re-matched later (after
// ClearRouteCache) is read again in OnRequestHeaders.
func (f *Factory) NewFilter(x *filters.Exchange) any {
	c := f.settings(x)
	if c.empty() {
		return nil
	}
	fl := &filter{f: f}
	if c.rateLimit != nil {
		return &throttledFilter{filter: fl}
	}
	return fl
}

// settings is the config for the stream: the route's override when it
// has one, else the listener's. Envoy does not merge the two.
func (f *Factory) settings(x *filters.Exchange) *Config {
	if r := x.MatchedRoute(); r != nil {
		if c, ok := r.PerFilterConfig(FilterName).(*Config); ok && c != nil {
			return c
		}
	}
	return f.cfg
}

// tryActivate takes one active-fault slot under max (-1 for no limit).
// Unlike Envoy's fuzzy check it never lets the count pass the limit.
func (f *Factory) tryActivate(max int64) bool {
	if max < 0 {
		f.active.Add(1)
		return true
	}
	for {
		n := f.active.Load()
		if n >= max {
			f.overflow.Inc()
			return false
		}
		if f.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// countDownstream bumps fault.<cluster>.<stat>, the per downstream
// cluster stat Envoy keeps unless disable_downstream_cluster_stats.
func (f *Factory) countDownstream(cluster, stat string) {
	if f.stats == nil || cluster == "" {
		return
	}
	f.stats.Counter("fault." + cluster + "." + stat).Inc()
}
