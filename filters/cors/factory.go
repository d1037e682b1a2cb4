package cors

import (
	"fmt"

	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/filters"
)

const (
	// TypeURL is the filter's config type, for the listener's
	// http_filters entry.
	TypeURL = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"
	// PolicyTypeURL is the per-route config type, for
	// typed_per_filter_config.
	PolicyTypeURL = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"
	// FilterName is the key the filter reads its policy under. A builder
	// does not learn the name its filter has in the chain, so the filter
	// uses Envoy's conventional name, the one istiod uses.
	FilterName = "envoy.filters.http.cors"
)

func init() {
	filters.Register(TypeURL, build)
	filters.RegisterRouteConfig(PolicyTypeURL, buildPolicy)
}

func build(cfg proto.Message, env filters.Env) (filters.Factory, error) {
	if _, ok := cfg.(*corsv3.Cors); !ok {
		return nil, fmt.Errorf("cors: config is %T, want Cors", cfg)
	}
	return New(env), nil
}

func buildPolicy(cfg proto.Message) (any, error) {
	pb, ok := cfg.(*corsv3.CorsPolicy)
	if !ok {
		return nil, fmt.Errorf("cors: per-route config is %T, want CorsPolicy", cfg)
	}
	return Compile(pb)
}

// Factory creates the per-stream CORS filter. The Cors config has no
// fields, so a factory holds only its counters.
type Factory struct {
	valid, invalid filters.Counter
}

// New returns a factory whose counters are named as Envoy names them
// under the HTTP connection manager's scope (http.<stat_prefix>.), the
// scope env.Stats is expected to have: cors.origin_valid and
// cors.origin_invalid, counting requests with an Origin header only.
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/cors_filter#statistics
func New(env filters.Env) *Factory {
	f := &Factory{valid: nopCounter{}, invalid: nopCounter{}}
	if env.Stats != nil {
		f.valid = env.Stats.Counter("cors.origin_valid")
		f.invalid = env.Stats.Counter("cors.origin_invalid")
	}
	return f
}

type nopCounter struct{}

func (nopCounter) Inc()         {}
func (nopCounter) Add(n uint64) {}

// NewFilter returns nil, taking no part in the stream, for a route
// without a policy or a request without an Origin header: neither is a
// CORS request, and Envoy leaves both untouched.
func (f *Factory) NewFilter(x *filters.Exchange) any {
	p := policyFor(x)
	if p == nil || x.Request.Header.Get("Origin") == "" {
		return nil
	}
	return &filter{f: f, policy: p}
}

func policyFor(x *filters.Exchange) *Policy {
	r := x.MatchedRoute()
	if r == nil {
		return nil
	}
	p, _ := r.PerFilterConfig(FilterName).(*Policy)
	return p
}
