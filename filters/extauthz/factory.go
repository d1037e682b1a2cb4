package extauthz

import (
	"fmt"

	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/filters"
)

// TypeURL is the config type this filter is registered under.
const TypeURL = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"

// PerRouteTypeURL is the per-route override, in typed_per_filter_config.
const PerRouteTypeURL = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute"

// FilterName is Envoy's conventional name of the filter: the key its
// per-route config is read under and the dynamic metadata namespace the
// service's dynamic_metadata is written to.
const FilterName = "envoy.filters.http.ext_authz"

func init() {
	filters.Register(TypeURL, build)
	filters.RegisterRouteConfig(PerRouteTypeURL, buildRoute)
}

func build(cfg proto.Message, env filters.Env) (filters.Factory, error) {
	pb, ok := cfg.(*extauthzv3.ExtAuthz)
	if !ok {
		return nil, fmt.Errorf("ext_authz: config is %T, want ExtAuthz", cfg)
	}
	return New(pb, env)
}

func buildRoute(cfg proto.Message) (any, error) {
	pb, ok := cfg.(*extauthzv3.ExtAuthzPerRoute)
	if !ok {
		return nil, fmt.Errorf("ext_authz: per-route config is %T, want ExtAuthzPerRoute", cfg)
	}
	return CompileRoute(pb)
}

// Factory asks the configured authorization service about every stream.
// It owns the gRPC connection to an envoy_grpc cluster and closes it when
// the gateway drops the factory.
type Factory struct {
	cfg    *Config
	env    filters.Env
	dialer filters.Dialer
	grpc   grpcClient
	st     counters
}

// New compiles the config. Counters are named as Envoy names them under
// the HTTP connection manager's scope: ext_authz.[<stat_prefix>.]ok,
// denied, error, failure_mode_allowed, disabled.
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/ext_authz_filter#statistics
func New(pb *extauthzv3.ExtAuthz, env filters.Env) (*Factory, error) {
	cfg, err := Compile(pb)
	if err != nil {
		return nil, err
	}
	f := &Factory{cfg: cfg, env: env, st: newCounters(env.Stats, pb.GetStatPrefix())}
	f.dialer, _ = env.Upstream.(filters.Dialer)
	if cfg.grpc != nil && f.dialer == nil && env.Upstream != nil {
		return nil, fmt.Errorf("grpc_service.envoy_grpc: the gateway's upstream cannot dial cluster %q", cfg.grpc.cluster)
	}
	return f, nil
}

// Close closes the gRPC connection, if one was opened.
func (f *Factory) Close() error { return f.grpc.close() }

// NewFilter returns nil when the route disables the filter. A filter
// that buffers the body (with_request_body, unless the route turns
// buffering off) also takes part in the request body phase.
func (f *Factory) NewFilter(x *filters.Exchange) any {
	var rc *RouteConfig
	if r := x.MatchedRoute(); r != nil {
		rc, _ = r.PerFilterConfig(FilterName).(*RouteConfig)
	}
	fl := &filter{f: f, cfg: f.cfg, body: f.cfg.body}
	if rc != nil {
		if rc.disabled {
			return nil
		}
		fl.ctxExt = rc.contextExtensions
		if rc.body != nil {
			fl.body = rc.body
		}
		if rc.noBody {
			fl.body = nil
		}
	}
	if fl.body != nil {
		return &bodyFilter{filter: fl}
	}
	return fl
}

// counters are the filter's stats.
type counters struct {
	ok, denied, error, failureModeAllowed, disabled filters.Counter
}

func newCounters(s filters.Stats, prefix string) counters {
	if prefix != "" {
		prefix += "."
	}
	c := func(name string) filters.Counter {
		if s == nil {
			return nopCounter{}
		}
		return s.Counter("ext_authz." + prefix + name)
	}
	return counters{ok: c("ok"), denied: c("denied"), error: c("error"), failureModeAllowed: c("failure_mode_allowed"), disabled: c("disabled")}
}

type nopCounter struct{}

func (nopCounter) Inc()       {}
func (nopCounter) Add(uint64) {}
