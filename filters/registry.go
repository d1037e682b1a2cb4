package filters

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"
)

// Env is what a factory may use while it is built and while it runs.
type Env struct {
	// Log is the gateway's logger, with the listener and filter keys set.
	Log *slog.Logger
	// Node is the identity the gateway presents to its xDS server.
	Node *corev3.Node
	// Upstream sends requests to clusters of the current snapshot, for
	// filters that call out (remote JWKS, ext_authz, rate limit service,
	// Wasm http_call). It may be nil in tests of a single filter.
	Upstream Upstream
	// Stats creates counters in the gateway's stats store, named as Envoy
	// names them (for example "http.ingress.rbac.denied").
	Stats Stats
}

// Upstream reaches clusters by name. The cluster set is the one of the
// snapshot current at call time, not at build time.
type Upstream interface {
	// RoundTrip sends req to the cluster named cluster.
	RoundTrip(ctx context.Context, cluster string, req *http.Request) (*http.Response, error)
}

// Stats is the part of the stats store filters use.
type Stats interface {
	Counter(name string) Counter
}

// Counter is a monotonically increasing stat.
type Counter interface {
	Inc()
	Add(n uint64)
}

// MetricStats is implemented by a Stats that also holds gauges and
// histograms and reaches the store's root scope, for filters whose
// stats are named at run time outside the connection manager's scope
// (Wasm plugins define wasmcustom.<name> metrics, as in Envoy). Filters
// find it by type assertion on Env.Stats.
type MetricStats interface {
	Stats
	Gauge(name string) Gauge
	Histogram(name string) Histogram
	// Root is the scope with no name prefix.
	Root() MetricStats
}

// Gauge is a stat that goes up and down.
type Gauge interface {
	Set(v int64)
	Add(d int64)
	Value() int64
}

// Histogram records a distribution of values.
type Histogram interface {
	RecordValue(v float64)
}

// Builder compiles a filter's typed config into its Factory. cfg is the
// unpacked proto of the type URL the builder is registered for. Errors
// should name the field path ("providers.p1.issuer: must not be empty").
type Builder func(cfg proto.Message, env Env) (Factory, error)

// RouteConfigBuilder compiles a typed_per_filter_config entry into the
// value the filter later finds with Route.PerFilterConfig.
type RouteConfigBuilder func(cfg proto.Message) (any, error)

var registry struct {
	sync.RWMutex
	builders map[string]Builder
	perRoute map[string]RouteConfigBuilder
	noop     map[string]string
}

// Register makes the filter whose config has typeURL (for example
// "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router")
// known to the gateway. Call it from init; registering a type URL twice
// panics, since two packages claiming one config is a build error.
func Register(typeURL string, b Builder) {
	registry.Lock()
	defer registry.Unlock()
	if registry.builders == nil {
		registry.builders = make(map[string]Builder)
	}
	if _, dup := registry.builders[typeURL]; dup {
		panic("filters: duplicate registration of " + typeURL)
	}
	registry.builders[typeURL] = b
}

// RegisterRouteConfig registers the compiler of a per-route config type
// (which may equal the filter's own type, as for fault and cors).
func RegisterRouteConfig(typeURL string, b RouteConfigBuilder) {
	registry.Lock()
	defer registry.Unlock()
	if registry.perRoute == nil {
		registry.perRoute = make(map[string]RouteConfigBuilder)
	}
	if _, dup := registry.perRoute[typeURL]; dup {
		panic("filters: duplicate per-route registration of " + typeURL)
	}
	registry.perRoute[typeURL] = b
}

// RegisterNoop records a config type the gateway accepts and ignores,
// with the reason logged once when a listener uses it: Istio sends
// filters (istio.metadata_exchange, istio.alpn, grpc_stats) that carry
// nothing a gateway needs, and refusing them would refuse istiod's config.
func RegisterNoop(typeURL, reason string) {
	registry.Lock()
	defer registry.Unlock()
	if registry.noop == nil {
		registry.noop = make(map[string]string)
	}
	registry.noop[typeURL] = reason
}

// Lookup returns the builder for typeURL.
func Lookup(typeURL string) (Builder, bool) {
	registry.RLock()
	defer registry.RUnlock()
	b, ok := registry.builders[typeURL]
	return b, ok
}

// LookupRouteConfig returns the per-route config compiler for typeURL.
func LookupRouteConfig(typeURL string) (RouteConfigBuilder, bool) {
	registry.RLock()
	defer registry.RUnlock()
	b, ok := registry.perRoute[typeURL]
	return b, ok
}

// LookupNoop reports whether typeURL is accepted as a no-op, and why.
func LookupNoop(typeURL string) (reason string, ok bool) {
	registry.RLock()
	defer registry.RUnlock()
	reason, ok = registry.noop[typeURL]
	return reason, ok
}

// Registered lists the registered filter type URLs, sorted.
func Registered() []string {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]string, 0, len(registry.builders))
	for k := range registry.builders {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ErrUnknown is wrapped by errors for config types nobody registered.
var ErrUnknown = fmt.Errorf("unknown filter config type")

// Disabled is the per-route config value of a filter that the route turns
// off (FilterConfig.disabled in typed_per_filter_config). A filter whose
// PerFilterConfig is Disabled takes no part in the stream; the chain
// checks this before calling the factory.
type Disabled struct{}

// ClusterSet is implemented by an Upstream that can tell whether a
// cluster is in the current snapshot, so a filter can refuse a call to
// one that is not at once, as Envoy refuses a Wasm http_call to an
// unknown cluster with BAD_ARGUMENT, rather than learn it when sending.
// Filters find it by type assertion on Env.Upstream.
type ClusterSet interface {
	HasCluster(name string) bool
}

// ClusterMissing tells whether up says cluster is not in the current
// snapshot; an Upstream that cannot tell says nothing is missing.
func ClusterMissing(up Upstream, cluster string) bool {
	cs, ok := up.(ClusterSet)
	return ok && !cs.HasCluster(cluster)
}
