package authz

import (
	"fmt"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/filters"
)

// TypeURL is the config type this filter is registered under.
const TypeURL = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"

// PerRouteTypeURL is the per-route override, in typed_per_filter_config.
const PerRouteTypeURL = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute"

// FilterName is Envoy's conventional name of the filter: the key its
// per-route config is read under and the dynamic metadata namespace its
// shadow results are written to, as istiod expects for its
// istio_dry_run_* tracing tags.
const FilterName = "envoy.filters.http.rbac"

func init() {
	filters.Register(TypeURL, build)
	filters.RegisterRouteConfig(PerRouteTypeURL, buildRoute)
}

func build(cfg proto.Message, env filters.Env) (filters.Factory, error) {
	pb, ok := cfg.(*rbacv3.RBAC)
	if !ok {
		return nil, fmt.Errorf("rbac: config is %T, want RBAC", cfg)
	}
	return New(pb, env)
}

func buildRoute(cfg proto.Message) (any, error) {
	pb, ok := cfg.(*rbacv3.RBACPerRoute)
	if !ok {
		return nil, fmt.Errorf("rbac: per-route config is %T, want RBACPerRoute", cfg)
	}
	return CompileRoute(pb)
}

// Config is a compiled RBAC filter config: the enforced engine, the
// shadow (dry-run) engine, and the metadata keys the shadow result goes
// under. Either engine may be nil.
type Config struct {
	engine *engine
	shadow *engine

	shadowIDKey     string // <shadow_rules_stat_prefix>shadow_effective_policy_id
	shadowResultKey string // <shadow_rules_stat_prefix>shadow_engine_result
}

// Compile validates and compiles an RBAC config. The xDS matcher API
// forms (matcher, shadow_matcher) are refused: Waygate evaluates the
// rules form, which is what istiod generates.
func Compile(pb *rbacv3.RBAC) (*Config, error) {
	if pb.GetMatcher() != nil {
		return nil, fmt.Errorf("matcher: the xDS matcher API form of RBAC is not supported; use rules")
	}
	if pb.GetShadowMatcher() != nil {
		return nil, fmt.Errorf("shadow_matcher: the xDS matcher API form of RBAC is not supported; use shadow_rules")
	}
	c := &Config{
		shadowIDKey:     pb.GetShadowRulesStatPrefix() + "shadow_effective_policy_id",
		shadowResultKey: pb.GetShadowRulesStatPrefix() + "shadow_engine_result",
	}
	if r := pb.GetRules(); r != nil {
		e, err := compileEngine(r)
		if err != nil {
			return nil, fmt.Errorf("rules.%w", err)
		}
		c.engine = e
	}
	if r := pb.GetShadowRules(); r != nil {
		e, err := compileEngine(r)
		if err != nil {
			return nil, fmt.Errorf("shadow_rules.%w", err)
		}
		c.shadow = e
	}
	return c, nil
}

// RouteConfig is a compiled RBACPerRoute. A nil Config disables the
// filter on the route: Envoy documents an RBACPerRoute without rbac as
// turning the filter off there.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/http/rbac/v3/rbac.proto#extensions-filters-http-rbac-v3-rbacperroute
type RouteConfig struct {
	Config *Config
}

// CompileRoute compiles a per-route override.
func CompileRoute(pb *rbacv3.RBACPerRoute) (*RouteConfig, error) {
	if pb.GetRbac() == nil {
		return &RouteConfig{}, nil
	}
	c, err := Compile(pb.GetRbac())
	if err != nil {
		return nil, fmt.Errorf("rbac.%w", err)
	}
	return &RouteConfig{Config: c}, nil
}

// Factory evaluates the listener's RBAC config, or a route's override,
// for every stream. It keeps no per-stream state, so NewFilter hands out
// the factory's one filter value and a stream costs no allocation.
type Factory struct {
	cfg *Config
	st  counters
	one *filter
}

// New compiles the listener-level config. Counters are named as Envoy
// names them under the HTTP connection manager's scope
// (http.<stat_prefix>.), which env.Stats is expected to have:
// rbac.<rules_stat_prefix>allowed / denied, and
// rbac.<shadow_rules_stat_prefix>shadow_allowed / shadow_denied.
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/rbac_filter#statistics
func New(pb *rbacv3.RBAC, env filters.Env) (*Factory, error) {
	cfg, err := Compile(pb)
	if err != nil {
		return nil, err
	}
	f := &Factory{cfg: cfg, st: newCounters(env.Stats, pb.GetRulesStatPrefix(), pb.GetShadowRulesStatPrefix())}
	if pb.GetTrackPerRuleStats() && env.Log != nil {
		env.Log.Warn("rbac: track_per_rule_stats is not supported; only the filter's totals are counted", "filter", FilterName)
	}
	if (pb.GetRules().GetAuditLoggingOptions() != nil || pb.GetShadowRules().GetAuditLoggingOptions() != nil) && env.Log != nil {
		env.Log.Warn("rbac: audit_logging_options are not supported; decisions are counted but not audit-logged", "filter", FilterName)
	}
	f.one = &filter{f: f}
	return f, nil
}

// NewFilter returns nil when the route turns the filter off or the
// config that applies has neither rules nor shadow rules.
func (f *Factory) NewFilter(x *filters.Exchange) any {
	if c := f.settings(x); c == nil || (c.engine == nil && c.shadow == nil) {
		return nil
	}
	return f.one
}

// settings is the config for the stream: the route's override when it
// has one (nil when it disables the filter), else the listener's. Envoy
// does not merge the two.
func (f *Factory) settings(x *filters.Exchange) *Config {
	if r := x.MatchedRoute(); r != nil {
		if rc, ok := r.PerFilterConfig(FilterName).(*RouteConfig); ok && rc != nil {
			return rc.Config
		}
	}
	return f.cfg
}
