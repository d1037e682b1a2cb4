package headers

import (
	"fmt"

	hmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/filters"
)

// TypeURL is the filter's config type; PerRouteTypeURL the per-route one.
const (
	TypeURL         = "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation"
	PerRouteTypeURL = "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutationPerRoute"
)

// FilterName is the name the filter reads its per-route config under: a
// builder does not learn its name in the chain, so the filter uses
// Envoy's conventional one.
const FilterName = "envoy.filters.http.header_mutation"

func init() {
	filters.Register(TypeURL, build)
	filters.RegisterRouteConfig(PerRouteTypeURL, buildRoute)
}

// Config is a compiled Mutations message.
type Config struct {
	request, response mutations
}

func (c *Config) empty() bool {
	return c == nil || len(c.request)+len(c.response) == 0
}

func compileConfig(m *hmv3.Mutations) (*Config, error) {
	if len(m.GetQueryParameterMutations()) > 0 {
		return nil, fmt.Errorf("mutations.query_parameter_mutations: not supported")
	}
	// The filter API has no trailer phase to apply these in.
	if len(m.GetRequestTrailersMutations()) > 0 {
		return nil, fmt.Errorf("mutations.request_trailers_mutations: not supported")
	}
	if len(m.GetResponseTrailersMutations()) > 0 {
		return nil, fmt.Errorf("mutations.response_trailers_mutations: not supported")
	}
	if len(m.GetFormatters()) > 0 {
		return nil, fmt.Errorf("mutations.formatters: formatter extensions are not supported")
	}
	c := &Config{}
	var err error
	if c.request, err = compileMutations(m.GetRequestMutations(), "mutations.request_mutations"); err != nil {
		return nil, err
	}
	if c.response, err = compileMutations(m.GetResponseMutations(), "mutations.response_mutations"); err != nil {
		return nil, err
	}
	return c, nil
}

func build(cfg proto.Message, _ filters.Env) (filters.Factory, error) {
	pb, ok := cfg.(*hmv3.HeaderMutation)
	if !ok {
		return nil, fmt.Errorf("header_mutation: config is %T, want HeaderMutation", cfg)
	}
	return New(pb)
}

func buildRoute(cfg proto.Message) (any, error) {
	pb, ok := cfg.(*hmv3.HeaderMutationPerRoute)
	if !ok {
		return nil, fmt.Errorf("header_mutation: per-route config is %T, want HeaderMutationPerRoute", cfg)
	}
	return compileConfig(pb.GetMutations())
}

// Factory holds the listener-level mutations.
type Factory struct {
	cfg          *Config
	specificWins bool
}

// New compiles the listener-level config.
func New(pb *hmv3.HeaderMutation) (*Factory, error) {
	c, err := compileConfig(pb.GetMutations())
	if err != nil {
		return nil, err
	}
	return &Factory{cfg: c, specificWins: pb.GetMostSpecificHeaderMutationsWins()}, nil
}

// NewFilter returns nil when neither the listener nor the route has a
// mutation, so an empty filter costs nothing.
func (f *Factory) NewFilter(x *filters.Exchange) any {
	var route *Config
	if r := x.MatchedRoute(); r != nil {
		route, _ = r.PerFilterConfig(FilterName).(*Config)
	}
	if f.cfg.empty() && route.empty() {
		return nil
	}
	return &filter{f: f, route: route}
}
